"""The examples of docs/server.md marked ``<!-- test: run -->`` work against a live server, as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.app.server_helpers import start_server
from tests.conftest import REPO

DOC = REPO / "docs" / "server.md"


def doc_blocks() -> list[tuple[str, str]]:
    """(language, code) of every fenced block right after a ``<!-- test: run -->`` line."""
    pattern = re.compile(r"<!-- test: run -->\n```(\w+)\n(.*?)\n```", re.S)
    return [(m.group(1), m.group(2)) for m in pattern.finditer(DOC.read_text(encoding="utf-8"))]


def test_server_doc_examples_run(tmp_path: Path) -> None:
    blocks = doc_blocks()
    assert sorted(lang for lang, _ in blocks) == ["bash", "python"]
    live = start_server(tmp_path / "docs")
    try:
        env = {**live.env, "HOPMEM_URL": live.url, "HOPMEM_KEY": live.key("docs")}
        for lang, code in blocks:
            command = [sys.executable, "-c", code] if lang == "python" else ["bash", "-euo", "pipefail", "-c", code]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
            assert done.returncode == 0, (lang, done.stdout[-2000:], done.stderr[-2000:])
            if lang == "python":
                assert "Thursdays" in done.stdout and "Meetings" in done.stdout
            else:
                assert '"added"' in done.stdout and "data: [DONE]" in done.stdout and "tomatoes" not in done.stderr
    finally:
        live.stop()
