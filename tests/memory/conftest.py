"""Fixtures of the memory-layer tests: real SQLite stores in tmp_path, real packaged MiniLM embedder."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from hopmem.memory.engine import MemoryEngine
from hopmem.memory.records import DocumentInput
from hopmem.memory.store import MemoryStore
from hopmem.settings import Settings, get_settings
from tests.memory.engines import open_engine

# The (name, dim) recorded for stores written with synthetic vectors.
FAKE_EMBEDDER = ("test-random", 8)

MakeDoc = Callable[..., DocumentInput]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore(tmp_path / "data" / "store.sqlite") as opened:
        yield opened


@pytest.fixture()
def make_doc() -> MakeDoc:
    """Build a DocumentInput whose content hash is derived from its chunks."""

    def build(source: str, chunks: Sequence[str], *, title: str = "", external_id: str | None = None) -> DocumentInput:
        digest = hashlib.sha256("\x1f".join([title, *chunks]).encode("utf-8")).hexdigest()
        return DocumentInput(source, title, digest, list(chunks), external_id)

    return build


def unit_vectors(n: int, dim: int = FAKE_EMBEDDER[1], *, seed: int = 0) -> np.ndarray:
    """``n`` random float32 rows of unit length."""
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture()
def random_vectors() -> Callable[..., np.ndarray]:
    return unit_vectors


def _check_one_sentence(message: str) -> None:
    assert message, "an error message is empty"
    assert "\n" not in message, f"message spans several lines: {message!r}"
    assert message[-1] in ".?", f"message does not end a sentence: {message!r}"
    # A sentence break is a terminator followed by a space and a capital letter; paths and versions are not.
    assert not re.search(r"[.?!] [A-Z]", message), f"message has more than one sentence: {message!r}"
    assert " at 0x" not in message, f"message leaks an object repr: {message!r}"


@pytest.fixture()
def one_sentence() -> Callable[[str], None]:
    """Assert that a user-facing error message is a single line holding one sentence."""
    return _check_one_sentence


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """Default settings over a fresh data folder (modules that need other settings define their own)."""
    return get_settings(data_dir=tmp_path / "data")


@pytest.fixture()
def user(settings: Settings) -> Iterator[MemoryEngine]:
    """The user's own handle on tenant ``t`` of ``settings``' store."""
    with open_engine(settings, tenant="t") as opened:
        yield opened
