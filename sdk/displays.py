"""Notebook renderings of SDK results: an HTML table in Jupyter (``_repr_html_``), a short ``repr`` elsewhere.

Text from the memory is escaped everywhere: a stored passage is data, and a notebook must not run markup from it.
"""

from __future__ import annotations

import html
from typing import Any


def _cell(value: Any, limit: int = 240) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return html.escape(text[:limit] + ("…" if len(text) > limit else ""))


class SearchResults(list[Any]):
    """The results of :meth:`hopmem.Memory.search`: a plain list of ``SearchResult``, shown as a table in a notebook
    (rank, id, score, trust, each retriever's rank, who wrote it, title and text).

    Examples:
        Stored text is data: markup in it is escaped in the table.

        >>> import tempfile, hopmem
        >>> memory = hopmem.Memory(hopmem.get_settings(data_dir=tempfile.mkdtemp(), llm_backend="none"))
        >>> _ = memory.add("Pier 4 <script>alert(1)</script> opens at eight.", title="Pier")
        >>> results = memory.search("pier opens", k=3)
        >>> len(results), results[0].record.title
        (1, 'Pier')
        >>> page = results._repr_html_()
        >>> "&lt;script&gt;" in page, "<script>" in page
        (True, False)
        >>> memory.close()
    """

    query: str = ""

    def __repr__(self) -> str:
        best = f"; best #{self[0].id} ({self[0].score:.3f})" if self else ""
        return f"<SearchResults for {self.query!r}: {len(self)} memories{best}>"

    def _repr_html_(self) -> str:
        rows = []
        for rank, result in enumerate(self, start=1):
            record = result.record
            trust = "" if result.trust is None else f"{result.trust:.2f}"
            ranks = ", ".join(f"{name} {place}" for name, place in sorted(result.ranks.items()))
            writer = record.agent_id or record.source_class or ""
            rows.append(
                f"<tr><td>{rank}</td><td>{record.id}</td><td>{result.score:.3f}</td><td>{trust}</td>"
                f"<td>{_cell(ranks)}</td><td>{_cell(writer)}</td><td>{_cell(record.title, 80)}</td>"
                f"<td>{_cell(record.content)}</td></tr>"
            )
        head = "".join(f"<th>{h}</th>" for h in ("#", "id", "score", "trust", "ranks", "written by", "title", "text"))
        return (
            f"<div><p><b>Search:</b> {_cell(self.query, 400)} ({len(self)} memories)</p>"
            f"<table><tr>{head}</tr>{''.join(rows)}</table></div>"
        )


class TrustTable(list[Any]):
    """The agents' trust from :meth:`hopmem.Memory.trust_of` (a list of ``AgentTrust``, most trusted first), shown in
    a notebook as a table with a bar per agent (its Beta mean, with the number of signals behind it)."""

    def __repr__(self) -> str:
        shown = ", ".join(f"{t.agent} {t.mean:.2f}" for t in self[:5])
        return f"<TrustTable of {len(self)} agents: {shown}{', …' if len(self) > 5 else ''}>"

    def _repr_html_(self) -> str:
        rows = []
        for t in self:
            width = round(100 * t.mean)
            colour = "#2a9d8f" if t.mean >= 0.5 else "#e76f51"
            bar = f"<div style='background:{colour};width:{width}px;height:10px'></div>"
            rows.append(
                f"<tr><td>{_cell(t.agent, 80)}</td><td>{t.mean:.3f}</td><td>{bar}</td>"
                f"<td>{t.signals}</td><td>{t.alpha:.2f} / {t.beta:.2f}</td></tr>"
            )
        head = "".join(f"<th>{h}</th>" for h in ("agent", "trust", "", "signals", "alpha / beta"))
        return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
