"""Notebook displays: search results as an escaped HTML table and a short repr; an answer's short repr."""

from __future__ import annotations

from pathlib import Path

from hopmem import Agent, Memory
from hopmem.displays import SearchResults
from hopmem.settings import get_settings


def test_search_results_render_as_an_escaped_table(tmp_path: Path) -> None:
    memory = Memory(get_settings(data_dir=tmp_path / "data", llm_backend="none", reranker="none"))
    memory.add("The ferry leaves at nine <script>alert('x')</script> from pier 4.", title="Ferry <b>times</b>")
    memory.add("Bins go out on Monday.")
    results = memory.search("ferry pier", k=5)
    assert isinstance(results, SearchResults) and isinstance(results, list) and results.query == "ferry pier"
    assert repr(results).startswith("<SearchResults for 'ferry pier': ") and f"best #{results[0].id}" in repr(results)
    page = results._repr_html_()
    assert page.count("<tr>") == len(results) + 1  # a header row and one row per memory
    assert "<script>" not in page and "&lt;script&gt;" in page and "Ferry &lt;b&gt;times&lt;/b&gt;" in page
    assert f"<td>{results[0].id}</td>" in page and "lexical 1" in page
    assert [r.to_dict() for r in results] == [r.to_dict() for r in memory.search("ferry pier", k=5)]
    memory.close()


def test_an_answer_has_a_short_repr(tmp_path: Path, sample_dir: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none", reranker="none", remember_answers=False)
    memory = Memory(settings)
    memory.ingest([sample_dir], progress=False)
    agent = Agent(memory, settings=settings)
    answer = agent.ask("How do honeybees share directions?")
    text = repr(answer)
    assert text.startswith("<Answer '") and "cites [1] of 3 passages" in text and f"{len(answer.trace)} steps" in text
    assert len(text) < 260 and "<b>Q:</b>" in answer._repr_html_()
    agent.close()


def test_trust_per_agent_renders_with_a_bar_each(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none", reranker="none")
    user = Memory(settings)
    fact = "The Cranfield wind tunnel reached Mach 3.5 in its first supersonic test run in 1952."
    user.add(fact)
    for name, text in (
        ("honest", "The tunnel's first run was in 1952 at Cranfield."),
        ("liar", fact.replace("3.5", "1.5")),
    ):
        with Memory(settings, agent=name) as bot:
            bot.add(text)
    table = user.trust_of()
    assert [t.agent for t in table] == ["honest", "liar"] and table[0].mean > 0.5 > table[1].mean
    assert repr(table).startswith("<TrustTable of 2 agents: honest ")
    page = table._repr_html_()
    assert page.count("<tr>") == 3 and "#e76f51" in page and "#2a9d8f" in page  # the liar's bar is red
    user.close()
