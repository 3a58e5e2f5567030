"""The trace of one answer as a notebook object: the plan, the hop tree, a bar per step with its time, the warnings.

The trace itself stays what the graph writes (:mod:`hopmem.agents.trace`: a list of JSON-ready step records, the
``--json`` output of ``hopmem ask``); :class:`Trace` is that list with views over it. It reads:

- ``plan``: ``mode`` (``whole``, ``parallel``, ``sequential``), ``queries``, ``standalone``, ``source``, ``warning``;
- ``retrieve`` (one per round): ``subqueries``, each ``{"n", "query", "results", "bridge_answer"?}``, and ``hyde``
  (``{"query", "results", "ms"}`` or ``{"skipped"}``) when the LLM's guess at the answer was searched too;
- ``hop``: ``trees``, each ``{"n", "hops": [[{"id", "hop", "score", "parent"}, ...], ...], "added"}`` (TreeHop's
  passages layer by layer; a node's ``parent`` is the passage whose next query found it), or ``skipped``;
- ``fuse``, ``rerank``, ``answer``, ``remember``: their settings, ``warning`` or ``skipped``;
- every step: ``ms`` and, when it called the LLM, ``llm_calls``.

Text from the question and the memory is escaped everywhere.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

STEP_COLOURS = {
    "plan": "#8e7cc3",
    "retrieve": "#3b6ea5",
    "hop": "#5aa469",
    "fuse": "#e1b12c",
    "rerank": "#d08c60",
    "answer": "#b5525c",
    "remember": "#7f8c8d",
}


def _e(value: Any, limit: int = 300) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return html.escape(text[:limit] + ("…" if len(text) > limit else ""))


class Trace(list[dict[str, Any]]):
    """An answer's trace (:attr:`hopmem.Answer.trace`, a list of step records) shown as plan, hop tree and timings.

    Build one with :meth:`hopmem.Answer.trace_view` or ``Trace(steps)`` from any saved trace (``hopmem ask --json``).

    Examples:
        >>> from hopmem import Trace
        >>> trace = Trace([
        ...     {"step": "plan", "mode": "parallel", "queries": ["bee dance", "hive <script>"], "source": "rules",
        ...      "ms": 0.4},
        ...     {"step": "retrieve", "round": 1, "subqueries": [], "ms": 12.0},
        ...     {"step": "hop", "method": "treehop", "ms": 3.5, "trees": [{"n": 1, "hops": [
        ...         [{"id": 7, "hop": 1, "score": 0.61, "parent": None}],
        ...         [{"id": 9, "hop": 2, "score": 0.42, "parent": 7}]], "added": [9]}]},
        ...     {"step": "answer", "mode": "extractive", "warning": "no LLM configured: extractive answer", "ms": 0.5},
        ... ])
        >>> trace
        <Trace 4 steps, 16 ms: plan parallel (2 queries) → retrieve 12 ms → hop 4 ms → answer 0 ms; 1 warning>
        >>> trace.plan["queries"]
        ['bee dance', 'hive <script>']
        >>> trace.timings()
        [('plan', 0.4), ('retrieve', 12.0), ('hop', 3.5), ('answer', 0.5)]
        >>> trace.hop_edges()
        [(1, None, 7, 1, 0.61), (1, 7, 9, 2, 0.42)]
        >>> trace.warnings()
        [('answer', 'no LLM configured: extractive answer')]
        >>> page = trace._repr_html_()
        >>> "&lt;script&gt;" in page and "<script>" not in page
        True
    """

    def __init__(self, steps: Iterable[dict[str, Any]] = (), *, question: str = "") -> None:
        super().__init__(steps)
        self.question = question

    @property
    def plan(self) -> dict[str, Any]:
        """The plan step (mode, queries, standalone, source, warning), or an empty dict."""
        return next((s for s in self if s.get("step") == "plan"), {})

    @property
    def total_ms(self) -> float:
        """The steps' time added up."""
        return sum(float(s.get("ms") or 0.0) for s in self)

    def timings(self) -> list[tuple[str, float]]:
        """``(step, ms)`` in the order the steps ran (a retrieval of round 2 is ``retrieve #2``)."""
        out = []
        for step in self:
            name = str(step.get("step", "?"))
            if step.get("round") and int(step["round"]) > 1:
                name = f"{name} #{step['round']}"
            out.append((name, float(step.get("ms") or 0.0)))
        return out

    def warnings(self) -> list[tuple[str, str]]:
        """``(step, text)`` for every warning or skipped step, in order."""
        found = []
        for step in self:
            for key in ("warning", "skipped"):
                if step.get(key):
                    found.append((str(step.get("step", "?")), str(step[key])))
        return found

    def hop_edges(self) -> list[tuple[int, int | None, int, int, float]]:
        """Every hop-tree node as ``(sub-query n, parent id or None, passage id, hop, score)``, tree by tree."""
        edges = []
        for step in self:
            if step.get("step") != "hop":
                continue
            for tree in step.get("trees") or []:
                for layer in tree.get("hops") or []:
                    for node in layer:
                        edges.append(
                            (int(tree.get("n", 0)), node.get("parent"), node["id"], node["hop"], node["score"])
                        )
        return edges

    def __repr__(self) -> str:
        parts = []
        for step, (name, ms) in zip(self, self.timings(), strict=True):
            if step.get("step") == "plan":
                queries = len(step.get("queries") or [])
                parts.append(f"plan {step.get('mode', '?')} ({queries} {'query' if queries == 1 else 'queries'})")
            else:
                parts.append(f"{name} {ms:.0f} ms")
        shown = " → ".join(parts[:8]) + (" → …" if len(parts) > 8 else "")
        n = len(self.warnings())
        warned = f"; {n} warning{'s' if n != 1 else ''}" if n else ""
        return f"<Trace {len(self)} steps, {self.total_ms:.0f} ms: {shown}{warned}>"

    # --- HTML -----------------------------------------------------------------------------------------------------

    def _plan_html(self) -> str:
        plan = self.plan
        if not plan:
            return ""
        queries = "".join(f"<li>{_e(q)}</li>" for q in plan.get("queries") or [])
        bridges = [
            f"<li>{_e(sub.get('query'))} → <i>{_e(sub.get('bridge_answer'))}</i> ({_e(sub.get('bridge_by'))})</li>"
            for step in self
            if step.get("step") == "retrieve"
            for sub in step.get("subqueries") or []
            if sub.get("bridge_answer")
        ]
        chain = f"<p>Chain answers:</p><ul>{''.join(bridges)}</ul>" if bridges else ""
        guessed = [
            str(s["hyde"]["query"]) for s in self if s.get("step") == "retrieve" and (s.get("hyde") or {}).get("query")
        ]
        if guessed:
            chain += f"<p>Also searched, with the LLM's guess at the answer (hyde): <i>{_e(guessed[0], 300)}</i></p>"
        kept = {"whole": "kept whole", "parallel": "split (parallel)", "sequential": "chained (sequential)"}
        mode = str(plan.get("mode", "?"))
        return (
            f"<p><b>Plan:</b> {_e(kept.get(mode, mode))}, by {_e(plan.get('source', '?'))}"
            f"{' (' + _e(plan['warning']) + ')' if plan.get('warning') else ''}</p><ol>{queries}</ol>{chain}"
        )

    def _hop_html(self) -> str:
        hops = [s for s in self if s.get("step") == "hop"]
        if not hops:
            return ""
        if all(s.get("skipped") for s in hops):
            return f"<p><b>Hop tree:</b> skipped ({_e(hops[0]['skipped'])})</p>"
        planned = self.plan.get("queries") or []
        searched: dict[int, str] = {}  # a tree's n is its sub-query as the last retrieval searched it (a chain's
        trees = []  # later queries carry the earlier answers there, not the plan's {1} placeholders)
        for step in self:
            if step.get("step") == "retrieve":
                searched = {int(s["n"]): str(s.get("query", "")) for s in step.get("subqueries") or [] if s.get("n")}
            if step.get("step") != "hop":
                continue
            for tree in step.get("trees") or []:
                nodes = [node for layer in tree.get("hops") or [] for node in layer]
                added = set(tree.get("added") or [])
                n = int(tree.get("n", 0))
                label = searched.get(n) or (planned[n - 1] if 0 < n <= len(planned) else f"query {n}")
                trees.append(f"<li>q{n}: {_e(label, 120)}{self._children(nodes, None, added)}</li>")
        legend = "(passage id, score; <b>new</b>: not found by the query itself)"
        return f"<p><b>Hop tree</b> {legend}:</p><ul>{''.join(trees)}</ul>"

    def _children(self, nodes: list[dict[str, Any]], parent: int | None, added: set[int], depth: int = 0) -> str:
        kids = [n for n in nodes if n.get("parent") == parent and (parent is not None or n.get("hop") == 1)]
        if not kids or depth > 8:
            return ""
        items = []
        for node in kids:
            new = " <b>new</b>" if node["id"] in added else ""
            below = self._children(nodes, node["id"], added, depth + 1)
            items.append(f"<li>hop {node['hop']}: #{node['id']} ({float(node['score']):.3f}){new}{below}</li>")
        return f"<ul>{''.join(items)}</ul>"

    def _timing_html(self) -> str:
        timings = self.timings()
        top = max((ms for _, ms in timings), default=0.0) or 1.0
        rows = []
        for step, (name, ms) in zip(self, timings, strict=True):
            colour = STEP_COLOURS.get(str(step.get("step")), "#999")
            width = max(1, round(240 * ms / top))
            calls = len(step.get("llm_calls") or [])
            extra = f" ({calls} LLM call{'s' if calls != 1 else ''})" if calls else ""
            rows.append(
                f"<tr><td>{_e(name)}</td><td><div style='background:{colour};width:{width}px;height:10px'></div></td>"
                f"<td style='text-align:right'>{ms:.1f} ms{extra}</td></tr>"
            )
        return f"<p><b>Steps</b> ({self.total_ms:.0f} ms in all):</p><table>{''.join(rows)}</table>"

    def _warnings_html(self) -> str:
        items = "".join(f"<li>{_e(step)}: {_e(text)}</li>" for step, text in self.warnings())
        return f"<p style='color:#b5525c'><b>Warnings</b></p><ul style='color:#b5525c'>{items}</ul>" if items else ""

    def compact_html(self) -> str:
        """One stacked bar of the steps' times with the plan in a line (for :meth:`hopmem.Answer._repr_html_`)."""
        total = self.total_ms or 1.0
        segments = "".join(
            f"<span title='{_e(name)} {ms:.1f} ms' style='display:inline-block;height:10px;"
            f"width:{max(1, round(300 * ms / total))}px;background:{STEP_COLOURS.get(str(s.get('step')), '#999')}'>"
            "</span>"
            for s, (name, ms) in zip(self, self.timings(), strict=True)
        )
        plan = self.plan
        n = len(self.warnings())
        return (
            f"<span style='color:#666'>{segments} {self.total_ms:.0f} ms; plan {_e(plan.get('mode', '?'))} "
            f"({len(plan.get('queries') or [])} queries){f'; {n} warnings' if n else ''}</span>"
        )

    def _repr_html_(self) -> str:
        question = f"<p><b>Q:</b> {_e(self.question, 400)}</p>" if self.question else ""
        return f"<div>{question}{self._plan_html()}{self._hop_html()}{self._timing_html()}{self._warnings_html()}</div>"
