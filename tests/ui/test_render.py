"""The UI's gradio-free parts: the reasoning view from a real trace, citation choices, a memory's card, and the
session settings (validated like any settings, limited to what a session may change)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hopmem import Agent, ConfigError, InputError, Memory
from hopmem.settings import get_settings
from hopmem.ui import render
from hopmem.ui.sessions import session_settings


def test_the_reasoning_view_shows_every_step_of_a_real_trace_with_times_and_warnings(
    tmp_path: Path, sample_dir: Path
) -> None:
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none")
    memory = Memory(settings)
    memory.ingest([sample_dir], progress=False)
    agent = Agent(memory, settings=settings)
    answer = agent.ask("How do honeybees share directions?")
    text = render.reasoning_markdown(answer.trace)
    for step in ("Plan", "Retrieve", "Hop", "Fuse", "Rerank", "Answer", "Remember"):
        assert f"**{step}**" in text
    assert text.count(" ms") >= len(answer.trace)
    assert "**Warnings**" in text and "answer: no LLM configured: extractive answer" in text
    assert f"{len(answer.trace)} steps" in text
    assert render.reasoning_markdown(answer.trace[:2], running=True).rstrip().endswith("ms in all_")
    assert "running…" in render.reasoning_markdown(answer.trace[:2], running=True)
    choices = render.citation_choices(answer.citations)
    assert [value for _label, value in choices] == [str(c["id"]) for c in answer.citations]
    assert choices[0][0].startswith("★ [1] ")  # the first passage is the one cited
    record = memory.get(answer.citations[0]["id"])
    card = render.memory_card(record, 0.5)
    assert "**trust**: 0.500" in card and "**Provenance**" in card and "**ingest**" in card
    assert all(line.startswith(">") for line in card.split("\n\n")[2].splitlines())  # the passage, quoted
    agent.close()  # closes its memory too


def test_the_reasoning_view_renders_a_split_plan_a_hop_tree_and_setwise_reasoning() -> None:
    steps = [
        {"step": "plan", "mode": "sequential", "queries": ["who built X", "where did {1} live"], "source": "rules",
         "standalone": "where did the builder of X live", "ms": 1.0},
        {"step": "hop", "method": "treehop", "ms": 2.0, "trees": [
            {"n": 1, "hops": [[{"id": 4, "hop": 1, "score": 0.9, "parent": None}],
                              [{"id": 7, "hop": 2, "score": 0.5, "parent": 4}]], "added": [7]}]},
        {"step": "rerank", "reranker": "rank-r1", "n_candidates": 2, "ms": 3.0, "warning": "slow",
         "ranking": [{"id": 7, "score": 0.8, "rerank_score": 0.9, "trust": 0.7}],
         "reasoning": [{"place": 1, "window": [4, 7], "chosen": 7, "reasoning": "passage 7 <names> the city"}]},
    ]  # fmt: skip
    text = render.reasoning_markdown(steps)
    assert "chained (sequential)" in text and "sub-query 2: where did {1} live" in text
    assert "hop 2: #7 (0.500 ← #4)" in text and "new beside retrieval: #7" in text
    assert "by `rank-r1`" in text and "reranker 0.900, trust 0.70" in text
    assert "place 1: chose #7: passage 7 &lt;names&gt; the city" in text  # text from the run is escaped
    assert "- ⚠ rerank: slow" in text
    answer = {"step": "answer", "mode": "llm", "n_evidence": 3, "cited": [1], "ms": 1500.0, "llm_calls": [
        {"kind": "stream", "prompt_tokens": 415, "completion_tokens": 24, "ms": 1440.4, "first_token_ms": 1012.2},
        {"kind": "json", "prompt_tokens": 90, "completion_tokens": 0, "ms": 80.0, "error": "LLMError"}]}  # fmt: skip
    text = render.reasoning_markdown([answer])
    assert "- LLM stream: 415 prompt tokens, 24 generated in 1440 ms, first token after 1012 ms" in text
    assert "- LLM json: 90 prompt tokens, 0 generated in 80 ms, failed (LLMError)" in text


def test_session_settings_change_only_what_a_session_may(tmp_path: Path) -> None:
    base = get_settings(data_dir=tmp_path / "data")
    assert session_settings(base, {}) is base
    changed = session_settings(base, {"top_k": 5, "llm_backend": "none"})
    assert (changed.top_k, changed.llm_backend, changed.data_dir) == (5, "none", base.data_dir)
    with pytest.raises(ConfigError, match="top_k"):
        session_settings(base, {"top_k": 0})
    with pytest.raises(InputError, match="may not change data_dir"):
        session_settings(base, {"data_dir": "/elsewhere"})
