"""The trace display: a real answer's trace (plan, hop tree, step times, warnings), escaping, and the hop tree's
nesting and a chain's answers on hand-written traces in the shape the graph writes (agents/nodes.py)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from hopmem import Agent, Memory, Trace
from hopmem.settings import get_settings

HOSTILE = "How do honeybees share directions? <script>alert('x')</script>"


def test_a_real_answer_shows_its_plan_hop_tree_timings_and_warnings(tmp_path: Path, sample_dir: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none", reranker="none", remember_answers=False)
    memory = Memory(settings)
    memory.ingest([sample_dir], progress=False)
    agent = Agent(memory, settings=settings)
    answer = agent.ask(HOSTILE)
    agent.close()
    assert isinstance(answer.trace, list) and type(answer.trace) is list  # the JSON shape stays a plain list
    view = answer.trace_view()
    assert isinstance(view, Trace) and list(view) == answer.trace and view.question == answer.question
    names = [step["step"] for step in answer.trace]
    assert [name for name, _ in view.timings()] == names
    assert view.total_ms == sum(step["ms"] for step in answer.trace)

    plan = view.plan
    assert plan is answer.trace[0] and plan["step"] == "plan"
    text = repr(view)
    assert text.startswith(f"<Trace {len(names)} steps, ") and f"plan {plan['mode']} (" in text and len(text) < 300
    assert "2 warnings" in text  # the extractive answer, and the write-back that is off

    page = view._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    shown = {"whole": "kept whole", "parallel": "split (parallel)", "sequential": "chained (sequential)"}
    assert f"{shown[plan['mode']]}, by {plan['source']}" in page
    assert all(f"<li>{html.escape(query)}</li>" in page for query in plan["queries"])
    for step in answer.trace:
        assert f"{step['ms']:.1f} ms" in page
    hop = next(step for step in answer.trace if step["step"] == "hop")
    nodes = [node for tree in hop["trees"] for layer in tree["hops"] for node in layer]
    assert nodes and all(f"#{n['id']} ({n['score']:.3f})" in page for n in nodes)
    assert "no LLM configured: extractive answer" in page and "write-back is off" in page

    card = answer._repr_html_()
    assert "<details>" in card and view.compact_html() in card and "&lt;script&gt;" in card and "<script>" not in card
    assert Trace(json.loads(json.dumps(answer.to_dict()))["trace"])._repr_html_() == Trace(answer.trace)._repr_html_()


def test_the_hop_tree_nests_each_passage_under_the_one_whose_next_query_found_it() -> None:
    trace = Trace(
        [
            {"step": "plan", "mode": "whole", "queries": ["who rebuilt the bridge"], "source": "llm", "ms": 1.0},
            {
                "step": "hop",
                "method": "treehop",
                "ms": 4.0,
                "trees": [
                    {
                        "n": 1,
                        "hops": [
                            [{"id": 7, "hop": 1, "score": 0.61, "parent": None}],
                            [{"id": 9, "hop": 2, "score": 0.42, "parent": 7}],
                            [{"id": 12, "hop": 3, "score": 0.3, "parent": 9}],
                        ],
                        "added": [9, 12],
                    }
                ],
            },
        ]
    )
    page = trace._repr_html_()
    nested = (
        "<li>hop 1: #7 (0.610)<ul><li>hop 2: #9 (0.420) <b>new</b><ul><li>hop 3: #12 (0.300) <b>new</b></li></ul>"
        "</li></ul></li>"
    )
    assert nested in page and "q1: who rebuilt the bridge" in page
    assert trace.hop_edges() == [(1, None, 7, 1, 0.61), (1, 7, 9, 2, 0.42), (1, 9, 12, 3, 0.3)]
    assert trace.warnings() == []


def test_a_chain_shows_its_sub_queries_answers_and_a_skipped_hop() -> None:
    trace = Trace(
        [
            {
                "step": "plan",
                "mode": "sequential",
                "queries": ["who directed <b>Heat</b>", "when was {1} born"],
                "source": "fallback",
                "warning": "the LLM's plan was not JSON",
                "ms": 2.0,
            },
            {
                "step": "retrieve",
                "round": 1,
                "ms": 30.0,
                "subqueries": [
                    {"n": 1, "query": "who directed <b>Heat</b>", "results": [], "bridge_answer": "Michael Mann",
                     "bridge_by": "extractive"},
                    {"n": 2, "query": "when was Michael Mann born", "results": []},
                ],
            },
            {"step": "retrieve", "round": 2, "ms": 45.0, "subqueries": []},
            {"step": "hop", "method": "none", "skipped": "no TreeHop model", "ms": 0.0},
        ]
    )  # fmt: skip
    page = trace._repr_html_()
    assert "chained (sequential)" in page and "by fallback (the LLM&#x27;s plan was not JSON)" in page
    assert "<li>who directed &lt;b&gt;Heat&lt;/b&gt;</li><li>when was {1} born</li>" in page
    assert "who directed &lt;b&gt;Heat&lt;/b&gt; → <i>Michael Mann</i> (extractive)" in page
    assert "Hop tree:</b> skipped (no TreeHop model)" in page
    assert [name for name, _ in trace.timings()] == ["plan", "retrieve", "retrieve #2", "hop"]
    assert trace.warnings() == [("plan", "the LLM's plan was not JSON"), ("hop", "no TreeHop model")]
    assert repr(trace) == (
        "<Trace 4 steps, 77 ms: plan sequential (2 queries) → retrieve 30 ms → retrieve #2 45 ms → hop 0 ms; "
        "2 warnings>"
    )


def test_a_chain_s_hop_tree_is_labelled_with_the_query_as_searched() -> None:
    """A chain's later query is searched with the earlier answer in place of ``{1}``; its tree says so."""
    trace = Trace(
        [
            {"step": "plan", "mode": "sequential", "queries": ["who directed Heat", "when was {1} born"], "ms": 1.0},
            {
                "step": "retrieve",
                "round": 1,
                "ms": 5.0,
                "subqueries": [
                    {"n": 1, "query": "who directed Heat", "results": []},
                    {"n": 2, "query": "when was Michael Mann born", "results": []},
                ],
            },
            {
                "step": "hop",
                "ms": 2.0,
                "trees": [{"n": 2, "hops": [[{"id": 3, "hop": 1, "score": 0.5, "parent": None}]], "added": []}],
            },
        ]
    )
    assert "<li>q2: when was Michael Mann born<ul><li>hop 1: #3 (0.500)</li></ul></li>" in trace._repr_html_()
