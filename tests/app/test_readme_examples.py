"""The README's examples of the HTTP server and the MCP server run as written, against live servers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.app.server_helpers import start_server
from tests.conftest import HOPMEM, REPO


def readme_blocks(tag: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block of README.md right after a ``<!-- test: TAG -->`` line."""
    pattern = re.compile(rf"<!-- test: {tag} -->\n```(\w+)\n(.*?)\n```", re.S)
    return [(m.group(1), m.group(2)) for m in pattern.finditer((REPO / "README.md").read_text(encoding="utf-8"))]


def test_readme_server_examples_run(tmp_path: Path) -> None:
    blocks = readme_blocks("server")
    assert [lang for lang, _ in blocks] == ["bash", "python"]
    live = start_server(tmp_path / "readme")
    try:
        env = {**live.env, "HOPMEM_URL": live.url, "HOPMEM_KEY": live.key("me")}
        outputs = []
        for lang, code in blocks:
            command = [sys.executable, "-c", code] if lang == "python" else ["bash", "-euo", "pipefail", "-c", code]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
            assert done.returncode == 0, (lang, done.stdout[-2000:], done.stderr[-2000:])
            outputs.append(done.stdout)
        curl, chat = outputs
        decoder = json.JSONDecoder()
        added, end = decoder.raw_decode(curl)
        found, _ = decoder.raw_decode(curl[end:].lstrip())
        assert "The boiler is serviced every October." in json.dumps(found)  # the search finds what was added
        assert json.dumps(added) != json.dumps(found)
        assert "October" in chat
    finally:
        live.stop()


def test_readme_mcp_example_runs(tmp_path: Path) -> None:
    ((lang, code),) = readme_blocks("mcp")
    assert lang == "python"
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{Path(HOPMEM).parent}{os.pathsep}{os.environ['PATH']}"}
    for key in [k for k in env if k.startswith(("HOPMEM_", "XDG_"))]:
        del env[key]
    env["HOPMEM_LLM_BACKEND"] = "none"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "The spare key is under the blue pot."
