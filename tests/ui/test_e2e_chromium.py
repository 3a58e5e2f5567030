"""End to end in headless Chromium: Debian's ``chromium`` driven by Playwright (the system browser, never a
downloaded one), against a real ``hopmem ui`` process over a seeded store.

Each test saves a screenshot of what it checked: into ``UI_SCREENSHOT_DIR`` (relative to the repository) when set,
else into the test's temporary folder; ``UI_SCREENSHOT_DIR=docs/img .venv/bin/pytest tests/ui -m chromium``
regenerates the README's pictures (not a ``HOPMEM_`` variable: the tests' isolation clears those). ``make install``
installs chromium (tools/install_chromium.sh) and playwright (the dev extra).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.ui.ui_helpers import HELD_FACTS, LiveUI, start_ui

pytestmark = pytest.mark.chromium

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 90_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # In CI these tests must run: a missing browser or driver fails there instead of skipping.
    missing = pytest.fail if os.environ.get("CI") else pytest.skip
    if not Path(CHROMIUM).exists():
        missing("Debian's chromium is not installed; run tools/install_chromium.sh (make install does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed; pip install -e '.[dev]' (make install does)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def e2e_app(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Iterator[LiveUI]:
    app = start_ui(tmp_path_factory.mktemp("ui-e2e"), sample_dir, max_file_bytes=1_000_000)
    yield app
    app.stop()


@pytest.fixture()
def page(browser: Any, e2e_app: LiveUI) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    opened.goto(e2e_app.url)
    opened.wait_for_selector("#question textarea")
    opened.wait_for_function("document.querySelector('#header').innerText.includes('Acting for')")
    yield opened
    context.close()


def shot(page: Any, name: str, tmp_path: Path) -> Path:
    """Save a full-page screenshot as ``name``.png (in UI_SCREENSHOT_DIR when set)."""
    folder = REPO / os.environ["UI_SCREENSHOT_DIR"] if os.environ.get("UI_SCREENSHOT_DIR") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def pick(page: Any, dropdown: str, value: str) -> None:
    """Choose ``value`` in a dropdown by clicking it open and clicking the option."""
    page.click(f"{dropdown} input")
    page.locator(f"{dropdown} [role=option][aria-label='{value}']").click()
    page.wait_for_function("([d, v]) => document.querySelector(d + ' input').value === v", arg=[dropdown, value])


def tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def ask(page: Any, question: str) -> str:
    """Ask in the Chat tab; returns the last answer's text once its citations are shown."""
    tab(page, "Chat")
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_function(
        "q => document.querySelector('#chat-status').innerText.startsWith('Answered') "
        "&& document.querySelector('#chat').innerText.includes(q)",
        arg=question,
    )
    page.wait_for_selector("#citations label")
    bubbles = page.locator("#chat .message.bot, #chat [data-testid='bot']")
    return str(bubbles.last.inner_text()) if bubbles.count() else str(page.inner_text("#chat"))


def citation(page: Any, contains: str) -> Any:
    return page.locator("#citations label", has_text=contains).first


def test_ask_shows_the_streamed_answer_and_its_citations(page: Any, tmp_path: Path) -> None:
    # This session answers with the bundled SmolLM2 through llama.cpp, so that the answer streams token by token.
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make install builds it)")
    tab(page, "Settings")
    pick(page, "#set-llm-backend", "llamacpp")
    page.click("#set-apply")
    page.wait_for_function("document.querySelector('#set-status').innerText.includes('llm_backend')")
    shot(page, "ui-settings", tmp_path)
    tab(page, "Chat")
    page.evaluate(
        """() => { window.__seen = []; const chat = document.querySelector('#chat');
        new MutationObserver(() => window.__seen.push(chat.innerText)).observe(chat, {subtree: true,
        childList: true, characterData: true});
        window.__steps = []; const r = document.querySelector('#reasoning');
        new MutationObserver(() => window.__steps.push(r.innerText)).observe(r, {subtree: true, childList: true,
        characterData: true}); }"""
    )
    ask(page, "What causes the tides?")
    seen = page.evaluate("window.__seen")
    steps = page.evaluate("window.__steps")
    partial = {s for s in seen if "What causes the tides?" in s}
    assert len(partial) >= 3, "the answer did not arrive in pieces"
    assert any("Plan" in s and "Answer (" not in s for s in steps), "the reasoning view was not live"
    reasoning = page.inner_text("#reasoning")
    for step in ("Plan", "Retrieve", "Hop", "Fuse", "Rerank", "Answer", "Remember"):
        assert step in reasoning
    assert "(llm by" in reasoning
    citation(page, "tides").click()
    page.wait_for_function("document.querySelector('#citation-card').innerText.includes('Provenance')")
    card = page.inner_text("#citation-card")
    assert "trust" in card and "tides.md" in card and "ingest" in card
    shot(page, "ui-chat", tmp_path)


def test_an_uploaded_document_is_found_cited(page: Any, tmp_path: Path) -> None:
    doc = tmp_path / "okapi.md"
    doc.write_text("# The okapi\n\nThe okapi is a forest giraffe of the Ituri rainforest in the Congo basin.\n")
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 1_500_000)
    tab(page, "Documents")
    page.wait_for_function("document.querySelector('#sources').innerText.includes('tides.md')")  # listed on load
    page.set_input_files("#upload-files input[type=file]", str(big))
    toast = page.locator("[data-testid='toast-body']", has_text="exceed the maximum allowed size")
    toast.wait_for()
    assert "big.txt" in toast.inner_text()
    shot(page, "e2e-oversize", tmp_path)
    page.set_input_files("#upload-files input[type=file]", str(doc))
    page.wait_for_selector("#upload-files :text('okapi.md')")
    page.click("#ingest")
    page.wait_for_function("document.querySelector('#ingest-report').innerText.includes('okapi.md: new')")
    page.wait_for_function("document.querySelector('#sources').innerText.includes('okapi.md')")
    assert "big.txt" not in page.inner_text("#sources")
    shot(page, "ui-documents", tmp_path)
    answer = ask(page, "Where does the okapi live?")
    assert "Ituri" in answer
    cited = citation(page, "The okapi")
    assert cited.inner_text().startswith("★")
    shot(page, "e2e-okapi-cited", tmp_path)


def test_approve_a_quarantined_memory(page: Any, e2e_app: LiveUI, tmp_path: Path) -> None:
    held = e2e_app.seed["held"][0]
    tab(page, "Memory")
    page.click("#q-refresh")
    page.wait_for_function("document.querySelector('#q-summary').innerText.includes('held for review')")
    assert "newcomer" in page.inner_text("#q-table")
    page.fill("#q-id input", str(held))
    page.click("#q-approve")
    page.wait_for_function("document.querySelector('#q-done').innerText.startsWith('Approved')")
    page.wait_for_function("document.querySelector('#q-summary').innerText.startsWith('1 writes')")
    page.fill("#mem-query textarea, #mem-query input", HELD_FACTS[0])
    page.click("#mem-find")
    page.wait_for_function(f"document.querySelector('#mem-table').innerText.includes('{held}')")
    page.click("#trust-refresh")
    page.wait_for_function("document.querySelector('#trust-table').innerText.includes('newcomer')")
    shot(page, "ui-memory", tmp_path)


def test_erase_a_memory_and_see_it_gone_from_search_and_answers(page: Any, tmp_path: Path) -> None:
    tab(page, "Memory")
    page.fill("#mem-query textarea, #mem-query input", "sourdough starter feeding")
    page.click("#mem-find")
    page.wait_for_function("document.querySelector('#mem-table').innerText.includes('sourdough')")
    memory_id = page.inner_text("#mem-table [data-testid='cell-0-0']").strip()
    page.click("#mem-table [data-testid='cell-0-1']")  # selecting a row fills the id and shows the card
    page.wait_for_function(f"document.querySelector('#mem-id input').value === '{memory_id}'")
    page.wait_for_function("document.querySelector('#mem-card').innerText.includes('Provenance')")
    page.click("#mem-erase")
    page.wait_for_selector("#mem-erase-confirm")
    page.click("#mem-erase-confirm")
    page.wait_for_function(f"document.querySelector('#mem-erased').innerText.startsWith('Erased memory #{memory_id}')")
    # The search runs again after the erase: wait until the table holds rows and none is the erased memory.
    page.wait_for_function(
        """m => { const ids = [...document.querySelectorAll("#mem-table [role=gridcell][data-col='0']")]
        .map(c => c.innerText.trim()); return ids.length > 0 && !ids.includes(m); }""",
        arg=memory_id,
    )
    shot(page, "e2e-erased", tmp_path)
    ask(page, "How do you keep a sourdough starter alive?")
    labels = page.locator("#citations label").all_inner_texts()
    assert not [label for label in labels if label.strip().endswith(f"#{memory_id}")], labels


def test_thumbs_down_on_evidence_changes_its_trust(page: Any, e2e_app: LiveUI, tmp_path: Path) -> None:
    scout = e2e_app.seed["scout"]
    ask(page, "How often does the Cape Wrath lighthouse flash?")
    citation(page, f"#{scout}").click()
    page.wait_for_function("document.querySelector('#citation-card').innerText.includes('scout')")
    before = page.inner_text("#citation-card").split("trust: ")[1].split()[0]
    page.click("#evidence-down")
    page.wait_for_function("document.querySelector('#chat-status').innerText.startsWith('Recorded ▼ bad')")
    page.wait_for_function(
        "b => !document.querySelector('#citation-card').innerText.includes('trust: ' + b)", arg=before
    )
    after = page.inner_text("#citation-card").split("trust: ")[1].split()[0]
    assert float(after) < float(before)
    assert f"memory trust {before} → {after}" in page.inner_text("#chat-status")
    shot(page, "e2e-thumbs-down", tmp_path)


def _settings(page: Any, backend: str, url: str, expect: str) -> None:
    tab(page, "Settings")
    pick(page, "#set-llm-backend", backend)
    page.fill("#set-llm-url textarea, #set-llm-url input", url)
    page.click("#set-apply")
    page.wait_for_function("e => document.querySelector('#set-status').innerText === e", arg=expect)
    tab(page, "Chat")


def test_stop_ends_a_running_answer_and_the_next_question_still_runs(page: Any, tmp_path: Path) -> None:
    # An LLM server that accepts the connection and never answers: the run waits in its answer step until stopped.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        _settings(page, "openai", url, "Applied: llm_backend, llm_base_url.")
        page.fill("#question textarea", "Why do lighthouses flash in patterns?")
        page.click("#ask")
        page.wait_for_function("document.querySelector('#reasoning').innerText.includes('Rerank')")
        page.wait_for_timeout(500)
        assert not page.inner_text("#chat-status").startswith("Answered")
        page.click("#stop")
        page.wait_for_function("document.querySelector('#chat-status').innerText === 'Stopped.'")
        assert "Remember" not in page.inner_text("#reasoning")
        shot(page, "e2e-stopped", tmp_path)
        # Another LLM for this session: its agent is free, so the next question runs to its answer at once.
        _settings(page, "none", url, "Applied: llm_base_url.")
        ask(page, "What causes the tides?")
