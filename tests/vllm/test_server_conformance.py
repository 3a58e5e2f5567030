"""One conformance suite for hopmem's OpenAI-compatible backend against two real servers: vLLM and llama.cpp's.

Each case is a running server process (``tests/vllm/conftest.py``) and hopmem's client for it,
:class:`hopmem.agents.llm.openai_compat.OpenAICompatLLM`. Every case passes:

- the chat-model contract of ``tests/agents/test_llm_conformance.py`` (its ``check_*`` functions, unchanged: chat,
  max tokens, determinism at temperature 0, streaming joins to the reply, stop strings, JSON schema, a JSON reply cut
  off, a prompt over the context, token counts);
- streaming that arrives in pieces; output constrained by ``response_format`` (a schema the model would not follow
  unconstrained); the planner's JSON plan through the server;
- the adapter by name (vLLM: the same server chats with the base model and ranks with the ``prorank`` adapter; its
  scores equal transformers + peft within 1e-3), log-prob scoring (vLLM: ``logprob_token_ids``; llama.cpp's server
  has none, and the reranker says so in one sentence);
- a server killed mid-reply: hopmem raises its one-sentence :class:`LLMError`, then again for the dead server.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hopmem.agents.llm.openai_compat import OpenAICompatLLM
from hopmem.memory.errors import LLMError
from tests.agents.test_llm_conformance import CHECKS, STORY, assert_one_sentence
from tests.conftest import wait_for_openai_server
from tests.vllm.conftest import BASE, VLLMServer, free_port

pytestmark = pytest.mark.vllm
log = logging.getLogger(__name__)

QUERY = "What is the boiling point of water at sea level?"
DOCS = [
    "Water boils at 100 degrees Celsius (212 Fahrenheit) at sea level.",
    "The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
    "At high altitude water boils at a lower temperature because the air pressure is lower. " * 8,
    "Cats sleep for twelve to sixteen hours a day.",
    "Sea level is the average height of the ocean's surface.",
]
TOLERANCE = 1e-3
"""Largest |served - transformers| pointwise score allowed (float32 both; the issue measured ~2e-5)."""


@dataclass
class Case:
    """A server under test: its kind, root URL and model name, and the client for it."""

    kind: str
    base_url: str
    model: str
    llm: OpenAICompatLLM
    vllm: VLLMServer | None = None


@pytest.fixture(scope="module", params=["vllm", "llamacpp"])
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    if request.param == "vllm":
        server: VLLMServer = request.getfixturevalue("vllm_server")
        llm = OpenAICompatLLM(BASE, base_url=server.base_url, timeout_s=120)
        yield Case("vllm", server.base_url, BASE, llm, server)
    else:
        base_url: str = request.getfixturevalue("llama_server")
        yield Case("llamacpp", base_url, "smollm2", OpenAICompatLLM("smollm2", base_url=base_url, timeout_s=120))


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_the_chat_contract(case: Case, check: Callable[[OpenAICompatLLM], None]) -> None:
    check(case.llm)


def test_streaming_arrives_in_pieces(case: Case) -> None:
    """Pieces as they are generated, not one at the end (the contract checks that they join to the reply)."""
    pieces = list(case.llm.stream([{"role": "user", "content": "Name three colours."}], max_tokens=24))
    assert len(pieces) > 3 and "".join(pieces).strip(), f"{case.kind} streamed {pieces!r}"


def test_response_format_constrains_the_output(case: Case) -> None:
    """A value no model would say about France unless the server enforces the schema's enum."""
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "enum": ["zq-7319"]}, "n": {"type": "integer", "minimum": 40}},
        "required": ["code", "n"],
        "additionalProperties": False,
    }
    ask = [{"role": "user", "content": "What is the capital of France?"}]
    value, _ = case.llm.complete_json(ask, schema, max_tokens=40)
    assert isinstance(value, dict) and value["code"] == "zq-7319" and value["n"] >= 40
    # vLLM takes OpenAI's json_schema form (``auto`` keeps it); llama-cpp-python's server refuses it and is asked
    # with json_object + schema from then on
    assert case.llm.json_format == ("auto" if case.kind == "vllm" else "json_object")


def test_the_planner_plans_through_the_server(case: Case) -> None:
    from hopmem.agents.planner import plan_question

    plan = plan_question(case.llm, "Who directed the film in which the actress who played Ripley starred in 1979?")
    assert plan.source == "llm", f"{case.kind}: the plan fell back ({plan.warning})"
    assert plan.mode in ("whole", "parallel", "sequential") and 1 <= len(plan.queries) <= 3


def test_the_adapter_by_name_chats_and_scores_like_transformers_and_peft(case: Case) -> None:
    if case.vllm is None:
        pytest.skip("llama.cpp's server serves one model and no LoRA adapter by name")
    from hopmem.agents.rerank.pointwise import PointwiseLLMReranker
    from hopmem.agents.rerank.served import ServedPointwiseReranker

    tuned_chat = OpenAICompatLLM("prorank", base_url=case.base_url, timeout_s=120)
    assert tuned_chat.complete([{"role": "user", "content": "Hello"}], max_tokens=4).text.strip()

    adapter = case.vllm.adapter
    local_tuned = PointwiseLLMReranker(adapter=adapter)
    local_base = PointwiseLLMReranker(
        BASE, passage_tokens=local_tuned.passage_tokens, query_tokens=local_tuned.query_tokens
    )
    served_tuned = ServedPointwiseReranker("prorank", base_url=case.base_url, adapter=adapter, batch_size=8)
    served_base = ServedPointwiseReranker(BASE, base_url=case.base_url, adapter=adapter, batch_size=8)
    got_tuned, got_base = served_tuned.score(QUERY, DOCS), served_base.score(QUERY, DOCS)
    want_tuned, want_base = local_tuned.score(QUERY, DOCS), local_base.score(QUERY, DOCS)
    diffs = [abs(a - b) for a, b in zip(got_tuned + got_base, want_tuned + want_base, strict=True)]
    log.info("adapter by name: max |vLLM - transformers+peft| = %.2e", max(diffs))
    assert got_tuned == pytest.approx(want_tuned, abs=TOLERANCE)
    assert got_base == pytest.approx(want_base, abs=TOLERANCE)
    assert max(abs(a - b) for a, b in zip(got_tuned, got_base, strict=True)) > 50 * TOLERANCE  # the adapter acts


def test_the_setwise_reranker_reasons_through_the_adapter_by_name(case: Case) -> None:
    """``rank-r1`` with a server (the agent's ``load_reranker``) sends each window's prompt to the server's ``rank-r1``
    adapter; greedy replies equal those of the same adapter run in process by transformers + peft."""
    if case.vllm is None:
        pytest.skip("llama.cpp's server serves one model and no LoRA adapter by name")
    from hopmem.agents.rerank.registry import load_reranker
    from hopmem.agents.rerank.setwise import SetwiseLLMReranker
    from hopmem.settings import get_settings

    adapter = case.vllm.setwise_adapter
    served = load_reranker("rank-r1", adapter, cache_dir=get_settings().cache_dir, server=case.base_url)
    assert isinstance(served, SetwiseLLMReranker) and served.set_size == 3 and served.tokenizer is not None
    local = SetwiseLLMReranker(adapter=adapter, max_tokens=40)
    served.max_tokens = 40
    served_order, local_order = served.order(QUERY, DOCS, 1), local.order(QUERY, DOCS, 1)
    served_replies = [entry["reply"] for entry in served.last_trace]
    local_replies = [entry["reply"] for entry in local.last_trace]
    assert len(served_replies) >= 2 and not any("error" in entry for entry in served.last_trace)
    assert served_replies == local_replies
    assert served_order == local_order


def test_logprob_scoring(case: Case) -> None:
    """vLLM returns the judgement tokens' log-probs for a whole batch in one request; llama.cpp's server cannot,
    and the served reranker says so in one sentence instead of returning wrong scores."""
    from hopmem.agents.rerank.served import ServedPointwiseReranker

    model = "prorank" if case.vllm is not None else case.model
    reranker = ServedPointwiseReranker(model, base_url=case.base_url, batch_size=len(DOCS), timeout_s=120)
    if case.vllm is None:
        with pytest.raises(LLMError) as caught:
            reranker.score(QUERY, DOCS)
        assert_one_sentence(str(caught.value))
        return
    batched = reranker.score(QUERY, DOCS)  # one request for the five passages
    one_by_one = ServedPointwiseReranker(model, base_url=case.base_url, batch_size=1).score(QUERY, DOCS)
    assert batched == pytest.approx(one_by_one, abs=TOLERANCE)
    assert len(set(batched)) == len(DOCS)  # five passages, five different scores


@dataclass
class Killable:
    base_url: str
    model: str
    kill: Callable[[], None]


@pytest.fixture
def killable(case: Case, tmp_path: Path) -> Iterator[Killable]:
    """The vLLM case: the session's own server (this test runs last); llama.cpp: a fresh server of its own."""
    if case.vllm is not None:
        pid = case.vllm.pid
        yield Killable(case.base_url, case.model, lambda: os.killpg(pid, signal.SIGKILL))
        return
    from hopmem.memory.model_paths import resolve_gguf_path

    port, log_path = free_port(), tmp_path / "llama.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_gguf_path(BASE)),
        "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        "--n_threads", "1", "--seed", "0", "--verbose", "False",
    ]  # fmt: skip
    with log_path.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for_openai_server(proc, base_url, log_path, name="llama_cpp.server", timeout_s=120)
        yield Killable(base_url, "smollm2", lambda: os.killpg(proc.pid, signal.SIGKILL))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.kills_server
def test_a_server_killed_mid_reply_is_one_clear_llm_error(killable: Killable) -> None:
    llm = OpenAICompatLLM(killable.model, base_url=killable.base_url, timeout_s=60, retries=1)
    pieces: list[str] = []
    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        for piece in llm.stream(STORY, max_tokens=1500):
            pieces.append(piece)
            if len(pieces) == 2:
                killable.kill()
    assert len(pieces) >= 2, f"the stream ended before the kill: {pieces!r}"
    assert "stopped answering in the middle of a reply" in str(caught.value)
    assert_one_sentence(str(caught.value))
    with pytest.raises(LLMError, match="unreachable") as again:
        llm.complete(STORY, max_tokens=8)
    assert_one_sentence(str(again.value))
    assert time.monotonic() - started < 60
