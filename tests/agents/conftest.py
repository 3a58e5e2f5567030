"""Fixtures of the agent tests: a real OpenAI-compatible server (llama-cpp-python's) serving the packaged SmolLM2,
SmolLM2 in process, and a hybrid searcher over the bundled sample in a real SQLite file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import wait_for_openai_server

if TYPE_CHECKING:
    from hopmem.agents.llm import ChatLLM
    from hopmem.memory.embeddings import SentenceTransformerEmbedder
    from hopmem.memory.hybrid import HybridSearcher

SAMPLE_TENANT = "nodes"
"""The tenant of :func:`searcher`'s store."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``base_url`` of ``python -m llama_cpp.server`` serving SmolLM2-135M on a free port (model name ``smollm2``).

    Started once per session, killed after; skipped with the reason when the server extra is not installed.
    """
    pytest.importorskip("sse_starlette", reason="llama-cpp-python's server extra is not installed (make install)")
    pytest.importorskip("starlette_context", reason="llama-cpp-python's server extra is not installed (make install)")
    from hopmem.memory.model_paths import resolve_gguf_path

    model = resolve_gguf_path("SmolLM2-135M-Instruct")
    port = _free_port()
    log_path = Path(tmp_path_factory.mktemp("llama-server")) / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "1", "--seed", "0", "--verbose", "False",
    ]  # fmt: skip
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for_openai_server(proc, base_url, log_path, name="llama_cpp.server", timeout_s=120)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@pytest.fixture(scope="session")
def smollm2() -> ChatLLM:
    """The packaged SmolLM2-135M-Instruct run in-process by llama.cpp (one thread: the test machine is shared)."""
    from hopmem.agents.llm import load_llm

    llm = load_llm("llamacpp", "SmolLM2-135M-Instruct", threads=1, seed=0)
    assert llm is not None
    return llm


@pytest.fixture(scope="module")
def searcher(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder, sample_dir: Path
) -> Iterator[HybridSearcher]:
    """A hybrid searcher over the bundled sample's 4 documents (tenant :data:`SAMPLE_TENANT`), one store a module."""
    from hopmem.memory.hybrid import HybridSearcher
    from hopmem.memory.ingest import Ingestor
    from hopmem.memory.store import MemoryStore

    with MemoryStore(tmp_path_factory.mktemp("sample") / "store.sqlite") as store:
        assert Ingestor(store, embedder).ingest(SAMPLE_TENANT, [sample_dir], progress=False).added == 4
        yield HybridSearcher(store, embedder)
