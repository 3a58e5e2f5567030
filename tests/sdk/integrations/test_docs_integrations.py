"""docs/integrations.md's examples marked ``<!-- test: run -->`` run as written, in order, as one program."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PAGE = REPO / "docs" / "integrations.md"


def marked_blocks() -> list[str]:
    """The code of every Python block right after a ``<!-- test: run -->`` line, in page order."""
    pattern = re.compile(r"<!-- test: run -->\n```python\n(.*?)\n```", re.S)
    return pattern.findall(PAGE.read_text(encoding="utf-8"))


def test_the_pages_examples_run(tmp_path: Path) -> None:
    blocks = marked_blocks()
    assert len(blocks) == 4  # set-up, LlamaIndex, LangChain, the LangGraph store
    env = {**os.environ, "HOPMEM_DATA_DIR": str(tmp_path / "unused")}  # the examples name their own folder
    done = subprocess.run(
        [sys.executable, "-c", "\n\n".join(blocks)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("node ") and "What causes the tides" in lines[0] and lines[0].endswith("trust 1.0")
    assert sum(line.startswith("node ") for line in lines) == 3
    assert next(line for line in lines if line.startswith("answer ")).count("Moon") >= 1
    assert "'What causes the tides'" in next(line for line in lines if line.startswith("cited "))
    assert next(line for line in lines if line.startswith("async ")) == "async Why lighthouses flash in patterns"
    assert "'How honeybees share directions'" in next(line for line in lines if line.startswith("documents "))
    header = next(line for line in lines if line.startswith("[id "))
    assert "title 'How honeybees share directions'; trust 1.00; from " in header and header.endswith("honeybees.md]")
    assert any(line.startswith("Remembered as memory ") for line in lines)
    assert "get {'text': 'Alice likes pizza with olives'}" in lines
    recalled = next(line for line in lines if line.startswith("recalled "))
    assert recalled.startswith("recalled ['Where do my bees live?', 'My hives stand by the orchard wall.']")
    assert lines[-1] == "namespaces [('users', 'alice', 'notes'), ('users', 'alice', 'prefs')]"
    assert not (tmp_path / "unused").exists()
