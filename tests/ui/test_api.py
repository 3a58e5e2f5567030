"""Every action of the app through gradio_client, against a real ``hopmem ui`` process (no LLM: extractive answers).

Each test names the endpoint it drives; together they cover the chat (streamed steps, citations, threads, thumbs),
the documents (upload with a corrupt PDF and an oversize file, list, remove), the memory browser (filters, card,
erase, quarantine review, trust plot) and the session settings, including an unreachable LLM.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui.ui_helpers import HELD_FACTS, LiveUI

Make = Callable[..., Any]


def _text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _choices(update: dict[str, Any]) -> dict[str, str]:
    """A radio or dropdown update's choices as {value: label}."""
    return {str(value): str(label) for label, value in update["choices"]}


def _rows(update: dict[str, Any]) -> list[list[Any]]:
    return list(update["value"]["data"])


def _ask(client: Any, question: str) -> tuple[list[dict[str, Any]], str, dict[str, str], str]:
    chat, reasoning, citations, _question_box, status = client.predict(question, [], api_name="/ask")
    return chat, reasoning, _choices(citations), status


def test_whoami_names_the_tenant_and_counts(ui_app: LiveUI, client: Make) -> None:
    header = client().predict(api_name="/whoami")
    assert "tenant 'default' as the user" in header
    assert "4 documents" in header and "2 held for review" in header


def test_ask_streams_the_steps_then_the_answer_with_clickable_citations(client: Make) -> None:
    session = client()
    job = session.submit("How often does the Cape Wrath lighthouse flash?", [], api_name="/ask")
    job.result(timeout=120)
    updates = job.outputs()
    reasonings = [u[1] for u in updates if isinstance(u[1], str)]
    # Live: the reasoning view grew step by step before the answer came.
    assert any("**Plan**" in r and "**Answer**" not in r for r in reasonings), reasonings
    chat, reasoning, citations, _box, status = updates[-1]
    assert _text(chat[0]) == "How often does the Cape Wrath lighthouse flash?"
    answer = _text(chat[-1])
    assert "four times" in answer and "[1]" in answer
    for step in ("Plan", "Retrieve", "Hop", "Fuse", "Rerank", "Answer", "Remember"):
        assert f"**{step}**" in reasoning, step
    assert "ms" in reasoning and "no LLM configured" in reasoning  # the trace's warning is shown
    assert status.startswith("Answered with")
    choices = _choices(citations)
    cited = next(v for v, label in choices.items() if label.startswith("★"))
    card = session.predict(cited, api_name="/show_citation")
    assert "Cape Wrath" in card and "**trust**" in card and "**Provenance**" in card and "scout" in card


def test_threads_are_listed_resumed_and_continued(client: Make) -> None:
    session = client()
    session.predict("What causes the tides?", [], api_name="/ask")
    picker = session.predict(api_name="/list_threads")
    threads = _choices(picker)
    thread_id = next(v for v, label in threads.items() if label.startswith("What causes the tides?"))
    other = client()
    chat, _reasoning, _citations, _last_status = other.predict(thread_id, api_name="/open_thread")[:4]
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert _text(chat[0]) == "What causes the tides?"
    other.predict("And what are spring tides?", chat, api_name="/ask")
    again = _choices(other.predict(api_name="/list_threads"))
    assert "(2 turns)" in again[thread_id]


def test_thumbs_down_on_evidence_lowers_the_writers_trust_and_is_shown(client: Make, ui_app: LiveUI) -> None:
    session = client()
    _chat, _reasoning, choices, _status = _ask(session, "How often does the Cape Wrath lighthouse flash?")
    scout = str(ui_app.seed["scout"])
    assert scout in choices
    session.predict(scout, api_name="/show_citation")
    status, card = session.predict(scout, api_name="/evidence_down")
    before, after = (float(x) for x in status.split("memory trust ")[1].split(";")[0].split(" → "))
    assert after < before, status
    assert "trust of its writer 'scout' is now" in status
    assert f"**trust**: {after:.3f}" in card
    table, _found = session.predict("", "scout", "any", 0, 0, api_name="/find_memories")
    assert [row[4] for row in _rows(table)] == [pytest.approx(after, abs=0.002)]
    _plot, trust_table = session.predict(api_name="/trust_plot")
    assert "**scout**" in trust_table


def test_thumbs_on_the_answer_and_without_one(client: Make) -> None:
    session = client()
    assert session.predict(api_name="/answer_up").startswith("Ask a question first")
    assert session.predict(None, api_name="/evidence_up")[0].startswith("Click a citation first")
    _ask(session, "Why do lighthouses flash in patterns?")
    status = session.predict(api_name="/answer_up")
    assert status.startswith("Recorded ▲ good on the remembered answer (#"), status


def test_upload_ingests_good_files_and_refuses_a_corrupt_pdf_and_an_oversize_file(
    client: Make, ui_app: LiveUI, tmp_path: Path
) -> None:
    from gradio_client import handle_file

    session = client()
    before = _rows(session.predict(api_name="/list_sources")[0])
    good = tmp_path / "zebras.md"
    good.write_text("# Zebra migration\n\nZebras of the Okavango delta migrate every November to find fresh grass.\n")
    corrupt = tmp_path / "broken.pdf"
    corrupt.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage without an end")
    report = session.predict([handle_file(str(good)), handle_file(str(corrupt))], None, api_name="/ingest")
    assert report.startswith("Stored 1 new and 0 changed documents (1 chunks); 0 unchanged, 1 failed."), report
    assert "✓ zebras.md: new, 1 chunks" in report
    line = next(x for x in report.splitlines() if "broken.pdf" in x)
    assert "could not be read as PDF" in line and "Nothing was stored from it." in line and "Traceback" not in line
    assert str(ui_app.root) not in report  # no server paths in the message
    # Over the limit: the server refuses the upload before reading it (gradio's max_file_size is the store's).
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 1_500_000)
    with big.open("rb") as fh:
        refused = httpx.post(ui_app.url + "gradio_api/upload", files={"files": ("big.txt", fh)}, timeout=60)
    assert refused.status_code == 413 and "maximum allowed size of 1000000 bytes" in refused.text
    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        session.predict([handle_file(str(big))], None, api_name="/ingest")
    after = _rows(session.predict(api_name="/list_sources")[0])
    assert len(after) == len(before) + 1
    assert next(r for r in after if r[0].endswith("zebras.md"))[2] == 1  # chunk count
    assert not [r for r in after if r[0].endswith(("broken.pdf", "big.txt"))]


def test_an_uploaded_document_is_cited_then_removed_everywhere(client: Make, tmp_path: Path) -> None:
    from gradio_client import handle_file

    session = client()
    doc = tmp_path / "okapi.txt"
    doc.write_text("The okapi is a forest giraffe of the Ituri rainforest whose stripes hide it in the shade.")
    assert "✓ okapi.txt: new" in session.predict([handle_file(str(doc))], None, api_name="/ingest")
    chat, _reasoning, choices, _status = _ask(session, "Where does the okapi live?")
    assert "Ituri" in _text(chat[-1])
    assert any(label.startswith("★") and "okapi" in label.lower() for label in choices.values()), choices
    _table, picker, _summary = session.predict(api_name="/list_sources")
    source = next(v for v in _choices(picker) if v.endswith("okapi.txt"))
    removed = session.predict(source, api_name="/remove_source")
    assert removed.startswith("Removed okapi.txt: 1 chunks"), removed
    assert not [r for r in _rows(session.predict(api_name="/list_sources")[0]) if r[0] == source]
    chat, _reasoning, _choices_after, _status = _ask(client(), "Where does the okapi live?")
    assert "Ituri" not in _text(chat[-1])
    assert session.predict(source, api_name="/remove_source").startswith("⚠ There is no document")


def test_memory_browser_filters_shows_provenance_and_erases(client: Make) -> None:
    session = client()
    table, found = session.predict("", "", "document", 0, 0, api_name="/find_memories")
    assert found.endswith("newest first.") and {r[2] for r in _rows(table)} == {"document"}
    table, found = session.predict("honeybees waggle dance", "", "any", 0, 0, api_name="/find_memories")
    top = _rows(table)[0]
    assert "honeybees" in top[1].lower()
    card = session.predict(top[0], api_name="/show_memory")
    assert "**Provenance**" in card and "**ingest**" in card
    erased = session.predict(top[0], api_name="/erase_memory")
    assert erased.startswith(f"Erased memory #{top[0]}: 1 memory"), erased
    table, _found = session.predict("honeybees waggle dance", "", "any", 0, 0, api_name="/find_memories")
    assert top[0] not in [r[0] for r in _rows(table)]
    assert session.predict(top[0], api_name="/show_memory").startswith("⚠ There is no memory")
    _chat, _reasoning, choices, _status = _ask(session, "How do honeybees share directions?")
    assert str(top[0]) not in choices
    trusted, _found = session.predict("", "", "any", 0.65, 0, api_name="/find_memories")
    everything, _found = session.predict("", "", "any", 0, 0, api_name="/find_memories")
    assert all(r[4] >= 0.65 for r in _rows(trusted)) and len(_rows(trusted)) < len(_rows(everything))


def test_quarantine_is_listed_approved_and_rejected(client: Make, ui_app: LiveUI) -> None:
    session = client()
    table, summary = session.predict(api_name="/list_quarantine")
    held = ui_app.seed["held"]
    assert summary == "2 writes held for review." and [r[0] for r in _rows(table)] == held
    assert _rows(table)[0][1] == "newcomer"
    _t, found = session.predict(HELD_FACTS[0], "newcomer", "any", 0, 0, api_name="/find_memories")
    assert found.startswith("0 memories")
    assert (
        session.predict(held[0], api_name="/approve")
        == f"Approved #{held[0]}: it is visible to search and answers now."
    )
    table, _found = session.predict(HELD_FACTS[0], "newcomer", "any", 0, 0, api_name="/find_memories")
    assert [r[0] for r in _rows(table)] == [held[0]]
    assert session.predict(held[1], api_name="/reject").startswith(f"Rejected #{held[1]}: erased")
    assert session.predict(api_name="/list_quarantine")[1] == "0 writes held for review."
    assert session.predict(held[1], api_name="/approve").startswith("⚠ ")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_session_settings_are_shown_and_an_unreachable_llm_gives_one_sentence(client: Make) -> None:
    session = client()
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    shown, status = session.predict("openai", "some-model", url, "none", 1, False, 2, api_name="/apply_settings")
    assert status == "Applied: decompose, llm_backend, llm_base_url, llm_model, top_k, treehop_hops."
    assert "| `llm_backend` | `openai` (this session) |" in shown and f"`{url}` (this session)" in shown
    chat, reasoning, _choices_now, status = _ask(session, "What causes the tides?")
    note = _text(chat[-1]).split("\n\n")[-1]
    assert note.startswith("⚠ The LLM server at") and "unreachable" in note, note
    assert note.count(". ") == 0 and "Traceback" not in note and note.endswith("without it.")
    assert "[1]" in _text(chat[-1])  # the extractive answer still cites
    assert "(extractive)" in reasoning
    # Another session keeps the server's settings.
    chat, _r, _c, status = _ask(client(), "What causes the tides?")
    assert status.startswith("Answered with") and "⚠" not in _text(chat[-1])


def test_stop_ends_a_running_answer(client: Make) -> None:
    import time

    session = client()
    with socket.socket() as silent:  # an LLM server that accepts and never answers: the run waits in its answer
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        session.predict("openai", "m", url, "none", 1, True, 3, api_name="/apply_settings")
        assert session.predict(api_name="/stop") == "Nothing is running."
        job = session.submit("Why do lighthouses flash in patterns?", [], api_name="/ask")
        deadline = time.monotonic() + 60
        while not any("**Rerank**" in str(u[1]) for u in job.outputs()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not job.done()
        assert session.predict(api_name="/stop") == "Stopped."
        deadline = time.monotonic() + 10
        while not job.done() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job.done()
        assert not any(str(u[-1]).startswith("Answered") for u in job.outputs())
        session.predict("none", "m", url, "none", 1, True, 3, api_name="/apply_settings")
        _chat, _reasoning, _choices_now, status = _ask(session, "What causes the tides?")
        assert status.startswith("Answered with")


def test_a_folder_upload_ingests_its_supported_files(client: Make, tmp_path: Path) -> None:
    from gradio_client import handle_file

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "kiwi.md").write_text("# Kiwi\n\nThe kiwi is a flightless bird of New Zealand that lays a huge egg.\n")
    (folder / "script.py").write_text("print('not a document')\n")
    session = client()
    files = [handle_file(str(folder / "kiwi.md")), handle_file(str(folder / "script.py"))]
    report = session.predict(None, files, api_name="/ingest")
    assert report.startswith("Stored 1 new and 0 changed documents (1 chunks); 0 unchanged, 1 failed."), report
    assert "✓ kiwi.md: new, 1 chunks" in report and "✗ script.py: unsupported type" in report
    header = session.predict(api_name="/whoami")
    assert "feedback events" in header
