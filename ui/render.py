"""Plain text renderings of what the SDK returns: the trace as the reasoning view, citations, a memory's card.

No gradio here and no decisions: these functions only turn the SDK's records (``Answer.trace`` steps, citations,
``MemoryRecord``) into Markdown and table rows, so that they can be tested alone and every view shows the same words.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

PLAN_WORDS = {"whole": "kept whole", "parallel": "split (parallel)", "sequential": "chained (sequential)"}


def when(seconds: float | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS`` (UTC), or an empty string."""
    if not seconds:
        return ""
    return dt.datetime.fromtimestamp(float(seconds), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _text(value: object, limit: int = 300) -> str:
    """One line of escaped text, cut to ``limit`` characters."""
    flat = " ".join(str(value or "").split())
    return html.escape(flat[:limit] + ("…" if len(flat) > limit else ""), quote=False)


def _ids(results: Sequence[Mapping[str, Any]], limit: int = 8) -> str:
    shown = [f"#{r['id']} ({float(r.get('score', 0.0)):.3f})" for r in results[:limit]]
    more = f" … {len(results) - limit} more" if len(results) > limit else ""
    return ", ".join(shown) + more if shown else "nothing"


def warnings_of(steps: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every warning of a trace, as ``step: warning`` (the planner's, the reranker's, the answer's, ...)."""
    return [f"{step.get('step')}: {step['warning']}" for step in steps if step.get("warning")]


def _plan(step: Mapping[str, Any]) -> list[str]:
    lines = [f"**Plan** ({step.get('source', '?')}): {PLAN_WORDS.get(str(step.get('mode')), step.get('mode'))}"]
    if step.get("standalone"):
        lines.append(f"- standalone question: {_text(step['standalone'])}")
    for n, query in enumerate(step.get("queries") or [], start=1):
        lines.append(f"- sub-query {n}: {_text(query)}")
    return lines


def _retrieve(step: Mapping[str, Any]) -> list[str]:
    lines = [f"**Retrieve** round {step.get('round')} ({step.get('mode')}, k={step.get('k')})"]
    for sub in step.get("subqueries") or []:
        line = f"- q{sub['n']} {_text(sub['query'], 120)} → {_ids(sub.get('results') or [], 5)}"
        if sub.get("bridge_answer"):
            line += f"; bridge answer: {_text(sub['bridge_answer'], 120)}"
        lines.append(line)
    hyde = step.get("hyde") or {}
    if hyde.get("query"):
        lines.append(
            f"- hyde (the LLM's guess searched) {_text(hyde['query'], 160)} → {_ids(hyde.get('results') or [], 5)}"
        )
    elif hyde.get("skipped"):
        lines.append(f"- hyde: skipped, {_text(hyde['skipped'], 160)}")
    return lines


def _hop(step: Mapping[str, Any]) -> list[str]:
    if step.get("skipped"):
        return [f"**Hop** ({step.get('method')}): skipped, {step['skipped']}"]
    lines = [f"**Hop** ({step.get('method')})"]
    for tree in step.get("trees") or []:
        lines.append(f"- tree of q{tree['n']}:")
        for depth, layer in enumerate(tree.get("hops") or [], start=1):
            nodes = ", ".join(
                f"#{n['id']} ({float(n['score']):.3f}" + (f" ← #{n['parent']})" if n.get("parent") else ")")
                for n in layer
            )
            lines.append(f"  - hop {depth}: {nodes or 'nothing'}")
        if tree.get("added"):
            lines.append(f"  - new beside retrieval: {', '.join(f'#{i}' for i in tree['added'])}")
    return lines


def _fuse(step: Mapping[str, Any]) -> list[str]:
    lists = ", ".join(step.get("lists") or [])
    return [
        f"**Fuse** ({step.get('fusion')}, trust-weighted) of {lists or 'no lists'}",
        f"- candidates: {_ids(step.get('results') or [])}",
    ]


def _rerank(step: Mapping[str, Any]) -> list[str]:
    lines = [f"**Rerank** by `{step.get('reranker')}` over {step.get('n_candidates', 0)} candidates"]
    ranking = step.get("ranking") or []
    for r in ranking[:8]:
        extra = f", reranker {float(r['rerank_score']):.3f}" if "rerank_score" in r else ""
        trust = f", trust {float(r['trust']):.2f}" if r.get("trust") is not None else ""
        lines.append(f"- #{r['id']}: score {float(r.get('score', 0.0)):.3f}{extra}{trust}")
    for choice in step.get("reasoning") or []:
        lines.append(f"- place {choice['place']}: chose #{choice['chosen']}: {_text(choice.get('reasoning'), 400)}")
    if "sufficient" in step:
        lines.append(f"- {'enough evidence' if step['sufficient'] else 'search more'}: {_text(step.get('reason'))}")
    return lines


def _answer(step: Mapping[str, Any]) -> list[str]:
    mode = step.get("mode", "?")
    model = f" by `{step['model']}`" if step.get("model") else ""
    cited = ", ".join(f"[{n}]" for n in step.get("cited") or []) or "none"
    return [f"**Answer** ({mode}{model}) from {step.get('n_evidence', 0)} passages; cites {cited}"]


def _remember(step: Mapping[str, Any]) -> list[str]:
    if step.get("skipped"):
        return [f"**Remember**: skipped, {step['skipped']}"]
    if step.get("id") is not None:
        held = " (quarantined for review)" if step.get("quarantined") else ""
        return [f"**Remember**: stored as memory #{step['id']}{held}, derived from {step.get('derived_from')}"]
    return ["**Remember**"]


def _llm_call(call: Mapping[str, Any]) -> str:
    """One LLM call of a step: what it read and wrote, and how long it took (where a slow step's time went)."""
    first = f", first token after {float(call['first_token_ms']):.0f} ms" if call.get("first_token_ms") else ""
    failed = f", failed ({call['error']})" if call.get("error") else ""
    return (
        f"- LLM {call.get('kind')}: {call.get('prompt_tokens', 0)} prompt tokens, "
        f"{call.get('completion_tokens', 0)} generated in {float(call.get('ms', 0.0)):.0f} ms{first}{failed}"
    )


RENDERERS = {
    "plan": _plan,
    "retrieve": _retrieve,
    "hop": _hop,
    "fuse": _fuse,
    "rerank": _rerank,
    "answer": _answer,
    "remember": _remember,
}


def reasoning_markdown(steps: Sequence[Mapping[str, Any]], *, running: bool = False) -> str:
    """The reasoning view: each finished step (plan, hops, evidence, ...) with its time, then every warning."""
    if not steps:
        return "_Working…_" if running else "_Ask a question: the agent's steps appear here as they end._"
    parts = []
    for step in steps:
        render = RENDERERS.get(str(step.get("step")))
        lines = render(step) if render else [f"**{step.get('step')}**"]
        lines[0] += f" · {float(step.get('ms', 0.0)):.0f} ms"
        lines += [_llm_call(call) for call in step.get("llm_calls") or []]
        parts.append("\n".join(lines))
    total = sum(float(s.get("ms", 0.0)) for s in steps)
    parts.append(f"_{'running… ' if running else ''}{len(steps)} steps, {total:.0f} ms in all_")
    warnings = warnings_of(steps)
    if warnings:
        parts.append("**Warnings**\n" + "\n".join(f"- ⚠ {_text(w, 600)}" for w in warnings))
    return "\n\n".join(parts)


def citation_choices(citations: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The citations as radio choices: label ``[n] title`` (★ when the answer cites it), value the memory id."""
    return [
        (
            f"{'★ ' if c.get('cited') else ''}[{c['n']}] {c.get('title') or '(untitled)'} · #{c['id']}",
            str(c["id"]),
        )
        for c in citations
    ]


def provenance_lines(provenance: Sequence[Mapping[str, Any]]) -> list[str]:
    """A memory's provenance chain, oldest first, one line per event."""
    lines = []
    for event in provenance:
        rest = {k: v for k, v in event.items() if k not in ("at", "action")}
        detail = ", ".join(f"{k}: {v}" for k, v in rest.items())
        lines.append(f"- {when(event.get('at'))} **{event.get('action', '?')}** {_text(detail, 300)}")
    return lines or ["- (no events recorded)"]


def memory_card(record: Any, trust: float | None, *, score: float | None = None) -> str:
    """A memory as Markdown: its title, text, source, class, writer, trust and provenance chain."""
    head = f"### #{record.id} {html.escape(record.title or '(untitled)', quote=False)}"
    facts = [
        f"**source**: {html.escape(record.source or '(written, not ingested)', quote=False)}",
        f"**class**: {record.source_class}",
        f"**agent**: {record.agent_id or ('(none: ingested)' if record.source_class == 'document' else '(user)')}",
        f"**trust**: {trust:.3f}" if trust is not None else "**trust**: n/a",
        f"**created**: {when(record.created_at)}",
    ]
    if score is not None:
        facts.append(f"**score**: {score:.3f}")
    if record.quarantined:
        facts.append("**quarantined** (held for review)")
    body = "\n".join(
        f"> {line}" if line.strip() else ">" for line in html.escape(record.content, quote=False).splitlines()
    )
    return "\n\n".join(
        [head, " · ".join(facts), body, "**Provenance**", "\n".join(provenance_lines(record.provenance))]
    )


MEMORY_HEADERS = ["id", "title", "class", "agent", "trust", "created", "text"]


def memory_rows(pairs: Iterable[tuple[Any, float | None]]) -> list[list[Any]]:
    """Rows of the memory table (:data:`MEMORY_HEADERS`) from (record, trust) pairs."""
    return [
        [
            r.id,
            r.title or "",
            r.source_class,
            r.agent_id or "",
            None if t is None else round(float(t), 3),
            when(r.created_at),
            " ".join(r.content.split())[:160],
        ]
        for r, t in pairs
    ]
