"""The state that flows through the agent's graph, and the shapes of what it holds.

Everything here is JSON-ready (plain dicts, lists, strings, numbers) so that a conversation can be checkpointed in
SQLite: the passages are :class:`Passage` typed dicts, the shape of
:meth:`hopmem.memory.records.SearchResult.to_dict`, and the trace is a list of step records
(:func:`hopmem.agents.trace.timed_step`) that the CLI prints as JSON.

Two fields accumulate through LangGraph reducers instead of being rebuilt by every node: ``history`` over a
conversation (each answer adds its two turns) and ``trace`` over one question (each node returns only its own step,
:func:`add_steps` appends it, and the plan step, the first of every run, starts a new trace).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Required, TypedDict

Step = dict[str, Any]
"""One trace record: ``{"step": name, ..., "ms": duration}`` (see :func:`hopmem.agents.trace.timed_step`)."""

FIRST_STEP = "plan"
"""The step every run of the graph starts with; it starts a new trace."""


class Passage(TypedDict, total=False):
    """A memory as the graph carries it: a search result's JSON form, or only ``id`` and ``score`` (a hop tree's).

    After fusion ``score`` is the fused, trust-weighted score and ``ranks`` the 1-based rank in every list it came
    from, by list name; after reranking ``rerank_score`` is the reranker's own score.
    """

    id: Required[int]
    score: Required[float]
    title: str | None
    text: str
    source: str | None
    external_id: str | None
    ranks: dict[str, int]
    source_class: str
    agent: str | None
    trust: float | None
    rerank_score: float


class Citation(TypedDict):
    """One numbered evidence passage of the answer, and whether the answer cites it."""

    n: int
    id: int
    title: str | None
    text: str | None
    score: float
    cited: bool


def add_steps(trace: list[Step] | None, steps: list[Step]) -> list[Step]:
    """The trace reducer: ``steps`` appended to ``trace``, or a new trace when they begin with the plan step.

    A conversation's state persists between questions; starting over at the plan step keeps each answer's trace
    to its own question.
    """
    if steps and steps[0].get("step") == FIRST_STEP:
        return list(steps)
    return [*(trace or []), *steps]


class AgentState(TypedDict, total=False):
    """What flows through the graph. ``history`` accumulates over a conversation; the rest is per question.

    ``lists`` holds every ranked list of the current question by name: ``q0`` (the whole question, when it was
    split), ``q1``... (the sub-queries), ``hyde`` (the question followed by the LLM's guess at its answer, when
    ``hyde`` is on; the query itself is ``hyde_query``, written once per question) and ``treehop:q1``... (the
    passages each sub-query's hop tree added).
    """

    question: str
    tenant: str
    history: Annotated[list[dict[str, str]], operator.add]
    plan: dict[str, Any]
    round: int
    queries: list[str]
    lists: dict[str, list[Passage]]
    hyde_query: str
    candidates: list[Passage]
    ranking: list[int]
    evidence: list[Passage]
    sufficient: bool
    answer: str
    citations: list[Citation]
    trace: Annotated[list[Step], add_steps]
