"""A real memory for the integration tests: a SQLite store in the test's folder, the packaged embedder, the bundled
sample documents, no LLM (the agent answers extractively) and no reranker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hopmem import Memory
from hopmem.settings import Settings, get_settings


def settings_for(root: Path, **overrides: object) -> Settings:
    """Settings over ``root``, without an LLM or a reranker unless ``overrides`` name them."""
    return get_settings(**{"data_dir": root / "data", "llm_backend": "none", "reranker": "none", **overrides})


@pytest.fixture()
def memory(tmp_path: Path, sample_dir: Path) -> Iterator[Memory]:
    """The sample ingested into a fresh memory (tenant ``default``)."""
    opened = Memory(settings_for(tmp_path))
    opened.ingest([sample_dir], progress=False)
    yield opened
    opened.close()
