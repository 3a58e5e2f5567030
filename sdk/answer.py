"""The result of one question, with text, JSON and notebook (HTML) renderings."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from hopmem.trace_view import Trace


@dataclass
class Answer:
    """An answer, the numbered evidence it was given (``citations``) and the trace of the run."""

    question: str
    answer: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    thread_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: ``{"answer", "citations": [{"id","title","text","score",...}], "trace"}``."""
        return {
            "answer": self.answer,
            "citations": self.citations,
            "trace": self.trace,
            "question": self.question,
        }

    def trace_view(self) -> Trace:
        """The trace as a :class:`~hopmem.trace_view.Trace`: in a notebook the plan, the hop tree, a bar per step
        with its time and the warnings (``trace`` itself stays the plain list that ``to_dict`` writes)."""
        return Trace(self.trace, question=self.question)

    def to_text(self, *, snippet_chars: int = 160) -> str:
        lines = [self.answer, "", "Sources (* = cited in the answer):"]
        for c in self.citations:
            mark = "*" if c.get("cited") else " "
            snippet = " ".join(str(c.get("text", "")).split())[:snippet_chars]
            lines.append(f" {mark}[{c['n']}] {c.get('title') or '(untitled)'} (id {c['id']}, score {c['score']:.3f})")
            lines.append(f"      {snippet}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        cited = [c["n"] for c in self.citations if c.get("cited")]
        ms = sum(float(s.get("ms", 0.0)) for s in self.trace)
        text = " ".join(self.answer.split())
        short = text[:100] + ("…" if len(text) > 100 else "")
        return (
            f"<Answer {short!r} cites {cited} of {len(self.citations)} passages; {len(self.trace)} steps, {ms:.0f} ms>"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{'&#9733;' if c.get('cited') else ''}[{c['n']}]</td>"
            f"<td>{html.escape(str(c.get('title') or ''))}</td>"
            f"<td>{c['score']:.3f}</td><td>{html.escape(str(c.get('text', ''))[:240])}</td></tr>"
            for c in self.citations
        )
        view = self.trace_view()
        return (
            f"<div><p><b>Q:</b> {html.escape(self.question)}</p><p><b>A:</b> {html.escape(self.answer)}</p>"
            f"<table><tr><th></th><th>title</th><th>score</th><th>text</th></tr>{rows}</table>"
            f"<details><summary>{view.compact_html()}</summary>{view._repr_html_()}</details></div>"
        )
