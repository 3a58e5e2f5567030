"""A real ``hopmem ui`` process on a free loopback port, over a store seeded through the SDK (no mocks of the app).

The seed: the bundled sample documents, one memory written on behalf of the agent ``scout`` (so that feedback on it
moves a trust), and two writes of the agent ``newcomer`` held in quarantine (written under a stricter trust threshold
than the app's, which the gate then holds for review).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.server_helpers import free_port, server_env
from tests.conftest import HOPMEM

SCOUT_FACT = "The Cape Wrath lighthouse flashes white four times every thirty seconds."
HELD_FACTS = (
    "Honeybees forage up to twelve kilometres from the hive on calm days.",
    "Sourdough starters kept in the fridge need feeding only once a week.",
)


@dataclass
class LiveUI:
    """A running app: its URL, data root, process and log."""

    url: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    seed: dict[str, Any]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def seed_store(root: Path, sample_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Write the seed through the SDK with the app's settings (``env``); returns the ids it made."""
    from hopmem import Memory
    from hopmem.settings import get_settings

    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("HOPMEM_")]:
            patch.delenv(key)
        for key, value in env.items():
            if key.startswith("HOPMEM_"):
                patch.setenv(key, value)
        settings = get_settings()
        with Memory(settings) as memory:
            memory.ingest([sample_dir], progress=False)
            scout = memory.add(SCOUT_FACT, title="Cape Wrath light", agent="scout", source_class="agent")
        strict = get_settings(trust_threshold=0.9)
        with Memory(strict) as memory:
            held = [memory.add(text, agent="newcomer", source_class="agent") for text in HELD_FACTS]
    assert all(h.quarantined for h in held)
    return {"scout": scout.id, "held": [h.id for h in held]}


def start_ui(
    root: Path,
    sample_dir: Path,
    *args: str,
    seed: bool = True,
    wait_s: float = 120.0,
    extra_env: dict[str, str] | None = None,
    **settings: Any,
) -> LiveUI:
    """Start ``hopmem ui`` over ``root/data`` (seeded) and wait until the page answers."""
    root.mkdir(parents=True, exist_ok=True)
    env = server_env(root, **{"treehop_hops": 2, **settings})
    env.update(GRADIO_TEMP_DIR=str(root / "gradio-tmp"), GRADIO_ANALYTICS_ENABLED="False", **(extra_env or {}))
    seeded = seed_store(root, sample_dir, env) if seed else {}
    port = free_port()
    log = root / "ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [HOPMEM, "ui", "--port", str(port), *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    app = LiveUI(f"http://127.0.0.1:{port}/", root, proc, log, env, seeded)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hopmem ui exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(app.url + "gradio_api/info", timeout=2).status_code in (200, 401):
                return app
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    app.stop()
    raise RuntimeError(f"hopmem ui did not start in {wait_s} s: {log.read_text()[-2000:]}")
