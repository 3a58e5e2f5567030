"""tools/install.sh's Chromium stage: it must run when no chromium is on PATH, whatever shell functions exist."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _guard() -> str:
    lines = [ln for ln in (REPO / "tools" / "install.sh").read_text().splitlines() if 'stage "chromium' in ln]
    assert len(lines) == 1, lines
    return lines[0]


def _runs_stage(path: str) -> bool:
    # The script's own function names (and one called chromium) are defined, as a shell function once shadowed
    # `command -v chromium` and the browser was never installed on a fresh machine.
    script = f"stage() {{ echo STAGE; }}; browser() {{ :; }}; chromium() {{ :; }}; {_guard()}"
    env = {**os.environ, "PATH": path}
    out = subprocess.run(["/bin/bash", "-c", script], env=env, capture_output=True, text=True, check=False)
    return "STAGE" in out.stdout


def test_the_chromium_stage_runs_when_chromium_is_not_on_path(tmp_path: Path) -> None:
    assert _runs_stage(str(tmp_path))
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "chromium").write_text("#!/bin/sh\n")
    (fake / "chromium").chmod(0o755)
    assert not _runs_stage(str(fake))
