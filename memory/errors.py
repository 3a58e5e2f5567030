"""Errors a user can act on. Each message is one sentence: what went wrong and what to do.

They live in the lowest layer so that every part of hopmem raises the same types; ``hopmem`` re-exports them.
"""

from __future__ import annotations


class HopmemError(Exception):
    """Base class of every error hopmem reports to a user (the CLI prints it and exits non-zero)."""

    exit_code = 1


class InputError(HopmemError, ValueError):
    """The caller gave bad input (empty, too large, malformed, wrong type)."""

    exit_code = 2


class ConfigError(HopmemError):
    """A setting or the config file is invalid."""

    exit_code = 2


class ModelNotAvailableError(HopmemError):
    """A model cannot be loaded offline."""


class IngestError(HopmemError):
    """A file could not be read or turned into chunks; nothing of it was stored."""


class StoreError(HopmemError):
    """The store cannot be opened or written (locked, read-only, corrupt)."""


class LLMError(HopmemError):
    """The language model failed or could not be reached."""
