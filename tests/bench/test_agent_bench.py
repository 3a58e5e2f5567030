"""``hopmem bench agent``: the per-step and per-LLM-call breakdown of real runs (SmolLM2 through llama.cpp)."""

from __future__ import annotations

import json
from pathlib import Path

from hopmem.agents.llm.metered import MeteredLLM
from hopmem.agents.trace import timed_step
from tests.conftest import run_hopmem


class _Fixed:
    """A stand-in LLM with known token counts: the wrapper's bookkeeping is what is tested here, not generation."""

    name = "fixed"
    context_window = 512

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages: list[dict[str, str]], **kwargs: object) -> object:
        yield from ["one ", "two ", "three"]


def test_metered_calls_land_in_the_running_step_only() -> None:
    llm = MeteredLLM(_Fixed())  # type: ignore[arg-type]
    assert "".join(llm.stream([{"role": "user", "content": "outside any step"}], max_tokens=8)) == "one two three"
    with timed_step("answer") as step:
        assert "".join(llm.stream([{"role": "user", "content": "a b c d"}], max_tokens=3)) == "one two three"
    (call,) = step["llm_calls"]
    assert call["kind"] == "stream" and call["prompt_tokens"] == 4 and call["completion_tokens"] == 3
    assert call["max_tokens"] == 3 and call["first_token_ms"] is not None and call["ms"] >= call["first_token_ms"]
    with timed_step("plan") as quiet:
        pass
    assert "llm_calls" not in quiet


def test_bench_agent_reports_steps_llm_calls_and_targets(
    small_hotpot: Path, tmp_path: Path, hotpot_cache: Path
) -> None:
    out = tmp_path / "agent.json"
    env = {"HOPMEM_CACHE_DIR": str(hotpot_cache), "HOPMEM_DATA_DIR": str(tmp_path / "data")}
    result = run_hopmem(
        "bench", "agent", "--dataset", str(small_hotpot), "--limit", "2", "--json", str(out),
        "--plot", str(tmp_path / "agent.png"), "--quiet", env=env, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "first token p50" in result.stdout and "target p95" in result.stdout
    report = json.loads(out.read_text())
    rows = [json.loads(line) for line in (tmp_path / "agent.queries.jsonl").read_text().splitlines()]
    assert report["n_queries"] == len(rows) == 2
    for row in rows:
        assert row["ms"] >= row["first_token_ms"] > 0
        assert sum(row["steps"].values()) <= row["ms"] * 1.05  # the steps fit in the measured total
        assert {"plan", "retrieve", "fuse", "rerank", "answer"} <= set(row["steps"])
        answer_calls = [c for c in row["llm_calls"] if c["step"] == "answer"]
        assert len(answer_calls) == 1 and answer_calls[0]["kind"] == "stream" and row["streamed"]
        assert answer_calls[0]["prompt_tokens"] > 50 and answer_calls[0]["completion_tokens"] > 0
    assert 0.9 < sum(s["share"] for s in report["steps"].values()) <= 1.0
    assert report["llm"]["answer/stream"]["count"] == 2 and "first_token_ms" in report["llm"]["answer/stream"]
    assert set(report["targets"]) == {"p50", "p95", "max", "first_token_p50"}
    assert 0.0 <= report["metrics"]["recall@10"] <= 1.0 and report["settings"]["llm_backend"] == "llamacpp"
    assert (tmp_path / "agent.png").read_bytes()[:4] == b"\x89PNG"


class _Refusing(_Fixed):
    def complete_json(self, messages: list[dict[str, str]], schema: object, **kwargs: object) -> object:
        raise ValueError("cut off")


def test_a_failed_call_is_recorded_with_its_time_and_error() -> None:
    import pytest

    llm = MeteredLLM(_Refusing())  # type: ignore[arg-type]
    with timed_step("retrieve") as step, pytest.raises(ValueError, match="cut off"):
        llm.complete_json([{"role": "user", "content": "one two"}], {}, max_tokens=32)
    (call,) = step["llm_calls"]
    assert call["kind"] == "json" and call["error"] == "ValueError" and call["prompt_tokens"] == 2 and call["ms"] >= 0
