"""The setwise (Rank-R1 style) reranker: repeated selection over windows, fallback, kept reasoning, and a real run.

Most tests drive the reranker with :class:`ScriptedJudge`, a stand-in for the language model: it reads the passages
out of the real setwise prompt and names the one with the highest "grade N" written in it, in the reply format a
trained model gives (or replays scripted replies). That makes the selection logic (tournament, reuse of answered
windows, fallback, trace) testable deterministically; the last test runs a real tiny causal LM through
TransformersLLM."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from hopmem.agents.llm.base import Completion, Message
from hopmem.agents.rerank import Reranker, rank_by_scores
from hopmem.agents.rerank.model_paths import RECORD_FILE
from hopmem.agents.rerank.prompts import SETWISE_SYSTEM
from hopmem.agents.rerank.setwise import SetwiseLLMReranker
from hopmem.memory.errors import ConfigError, LLMError

_LISTED = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)
_GRADE = re.compile(r"grade (\d+)")


class ScriptedJudge:
    """Stands in for the model: names the passage with the highest grade, or replays ``replies`` in order.

    Like :class:`TransformersLLM`, it cuts its reply before the first stop string, so the reranker has to put the
    ``</answer>`` back itself.
    """

    def __init__(self, replies: list[str | Exception] | None = None) -> None:
        self.replies = list(replies or [])
        self.prompts: list[list[str]] = []
        self.calls: list[dict[str, Any]] = []

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0, stop: list[str] | None = None
    ) -> Completion:
        assert messages[0] == {"role": "system", "content": SETWISE_SYSTEM}
        passages = [text for _, text in _LISTED.findall(messages[1]["content"])]
        self.prompts.append(passages)
        self.calls.append({"max_tokens": max_tokens, "temperature": temperature, "stop": stop})
        if self.replies:
            reply = self.replies.pop(0)
            if isinstance(reply, Exception):
                raise reply
        else:
            grades = [int(m.group(1)) if (m := _GRADE.search(p)) else -1 for p in passages]
            best = max(range(len(passages)), key=lambda i: grades[i])
            reply = (
                f"<think>passage {best + 1} has grade {grades[best]}, the highest</think> <answer>[{best + 1}]</answer>"
            )
        for s in stop or []:
            if s in reply:
                reply = reply[: reply.index(s)]
        return Completion(text=reply, model="scripted-judge")


GRADES = [2, 9, 4, 7, 1, 8, 3, 6, 5, 0]
DOCS = [f"passage {i} with grade {g}" for i, g in enumerate(GRADES)]


def test_repeated_selection_fills_the_top_places_and_keeps_the_rest_in_given_order() -> None:
    judge = ScriptedJudge()
    reranker = SetwiseLLMReranker(llm=judge, set_size=3, depth=4, max_tokens=64)
    assert isinstance(reranker, Reranker) and reranker.name == "rank-r1-base"
    ranked = reranker.rank("which passage has the highest grade?", DOCS)
    order = [i for i, _ in ranked]
    # grades 9, 8, 7, 6 selected in that order; the other six below in their given order
    assert order == [1, 5, 3, 7, 0, 2, 4, 6, 8, 9]
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    scores = reranker.score("which passage has the highest grade?", DOCS)
    assert rank_by_scores(scores) == ranked
    assert all(scores[i] > 0 for i in order[:4]) and all(scores[i] <= 0 for i in order[4:])
    assert max(len(p) for p in judge.prompts) == 3  # never more than set_size passages in one prompt
    assert {(c["temperature"], c["max_tokens"]) for c in judge.calls} == {(0.0, 64)}  # greedy, the configured budget


def test_windows_answered_before_are_not_asked_again() -> None:
    judge = ScriptedJudge()
    reranker = SetwiseLLMReranker(llm=judge, set_size=3, depth=10)
    order = reranker.order("q", DOCS)
    assert order == sorted(range(10), key=lambda i: -GRADES[i])
    asked = [tuple(e["window"]) for e in reranker.last_trace]
    assert len(asked) == len(set(asked)) == reranker.stats["calls"] == len(judge.prompts)
    assert reranker.stats["reused"] > 0
    # the first place costs a full tournament (3 leaves + 2 above); the next ones far less than that each
    first = [e for e in reranker.last_trace if e["round"] == 0]
    later = [e for e in reranker.last_trace if e["round"] == 1]
    assert len(first) == 5 and 0 < len(later) < len(first)


def test_top_k_sets_the_depth_and_cuts_the_result() -> None:
    reranker = SetwiseLLMReranker(llm=ScriptedJudge(), set_size=4, depth=10)
    assert reranker.rank("q", DOCS, top_k=2) == [(1, 2.0), (5, 1.0)]
    assert {e["round"] for e in reranker.last_trace} == {0, 1}
    assert reranker.rank("q", DOCS, top_k=0) == []
    assert reranker.rank("q", []) == [] and reranker.score("q", []) == []
    assert reranker.rank("q", ["only one"]) == [(0, 1.0)]


def test_a_reply_without_a_valid_answer_falls_back_to_the_windows_first_candidate() -> None:
    docs = ["grade 1", "grade 5", "grade 3", "grade 2"]
    malformed = "I think the second passage is the best one."
    judge = ScriptedJudge(replies=[malformed, "<think>x</think><answer>[7]</answer>", LLMError("context full")])
    reranker = SetwiseLLMReranker(llm=judge, set_size=4, depth=3)
    order = reranker.order("q", docs)
    assert order == [0, 1, 2, 3]  # three fallbacks in a row: the given order
    assert reranker.stats["fallbacks"] == 3 and reranker.stats["errors"] == 1
    assert [e["fallback"] for e in reranker.last_trace] == [True, True, True]
    assert reranker.last_trace[0]["reply"] == malformed and reranker.last_trace[2]["error"] == "context full"
    assert reranker.last_trace[1]["choice"] == 1  # [7] is out of range for the remaining 3: first of the window
    # with the scripted replies used up, the judge answers properly again, and the stats keep counting
    assert reranker.order("q", docs) == [1, 2, 3, 0] and reranker.stats["fallbacks"] == 3
    assert reranker.stats["rankings"] == 2


def test_the_reasoning_of_each_selection_is_kept() -> None:
    reranker = SetwiseLLMReranker(llm=ScriptedJudge(), set_size=2, depth=2)
    reranker.order("q", ["grade 1", "grade 4", "grade 2"])
    trace = reranker.last_trace
    assert trace[0] == {
        "round": 0,
        "window": [0, 1],
        "choice": 1,
        "reasoning": "passage 2 has grade 4, the highest",
        "reply": "<think>passage 2 has grade 4, the highest</think> <answer>[2]</answer>",
        "well_formed": True,
        "fallback": False,
    }
    assert all(e["reasoning"] and not e["fallback"] for e in trace)
    assert reranker.last_order == [1, 2, 0]
    reranker.order("q", ["grade 3"])
    assert reranker.last_trace == []  # reset per ranking; one passage needs no call


def test_settings_come_from_the_adapters_record_and_passages_are_clipped(tmp_path: Path) -> None:
    (tmp_path / RECORD_FILE).write_text(
        json.dumps({"recipe": "rank-r1", "base_model": "x", "passage_tokens": 3, "query_tokens": 2, "set_size": 2})
    )
    judge = ScriptedJudge()
    reranker = SetwiseLLMReranker(adapter=tmp_path, llm=judge)
    assert (reranker.set_size, reranker.passage_tokens, reranker.query_tokens) == (2, 3, 2)
    assert reranker.name == "rank-r1"
    reranker.order("q", ["grade 1 and many more words", "grade 2 also long"])
    assert judge.prompts[0] == ["grade 1 and", "grade 2 also"]  # no tokenizer on the stand-in: whitespace words
    with pytest.raises(ConfigError, match="at least 2"):
        SetwiseLLMReranker(llm=judge, set_size=1)


def test_a_real_tiny_model_ranks_through_transformers(tiny_causal_lm: Path) -> None:
    reranker = SetwiseLLMReranker(str(tiny_causal_lm), set_size=3, depth=3, max_tokens=4, passage_tokens=16)
    docs = [f"Passage {i} about the river Seine and Paris." for i in range(5)]
    ranked = reranker.rank("Which river flows through Paris?", docs)
    assert sorted(i for i, _ in ranked) == list(range(5))
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    assert reranker.stats["calls"] == len(reranker.last_trace) > 0
    # a random model rarely names a passage; whatever it said is kept with the choice it led to
    assert all(set(e) >= {"window", "choice", "reply", "fallback"} for e in reranker.last_trace)
    assert reranker.stats["fallbacks"] == sum(e["fallback"] for e in reranker.last_trace)
