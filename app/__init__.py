"""hopmem.app: the ``hopmem`` command line (the HTTP and MCP servers will live here too)."""

from __future__ import annotations
