"""A real ``hopmem serve`` process on a free loopback port, for the server tests (no mocks of the server)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hopmem.keys import KeyStore
from tests.conftest import HOPMEM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(root: Path, **settings: Any) -> dict[str, str]:
    """The environment of a server over ``root/data``: offline, no user config, no reranker, no LLM by default."""
    (root / "empty.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPMEM_")}
    env.update(
        HOPMEM_DATA_DIR=str(root / "data"),
        HOPMEM_CONFIG=str(root / "empty.toml"),
        HOPMEM_RERANKER="none",
        HOPMEM_LLM_BACKEND="none",
        HOPMEM_TREEHOP_HOPS="1",
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    env.update({f"HOPMEM_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@dataclass
class LiveServer:
    """A running server: its base URL, key store, process and log."""

    url: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def keys(self) -> KeyStore:
        return KeyStore(self.root / "data" / "keys.sqlite")

    def key(self, tenant: str, agent: str | None = None) -> str:
        return self.keys.create(tenant, agent)[1]

    def client(self, key: str | None, timeout: float = 120.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(root: Path, *args: str, keys: bool = True, wait_s: float = 90.0, **settings: Any) -> LiveServer:
    """Start ``hopmem serve`` over ``root/data`` and wait until ``/health`` answers.

    Args:
        keys: create a key first, so that the server requires keys (tests of keyless local mode pass False).
    """
    root.mkdir(parents=True, exist_ok=True)
    env = server_env(root, **settings)
    if keys:
        KeyStore(root / "data" / "keys.sqlite").create("bootstrap")
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [HOPMEM, "serve", "--port", str(port), *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    server = LiveServer(f"http://127.0.0.1:{port}", root, proc, log, env)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the server did not start in {wait_s} s: {log.read_text()[-2000:]}")


def one_sentence_error(response: httpx.Response, status: int) -> str:
    """Assert OpenAI's error shape with one sentence; returns the message."""
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}, error
    message = error["message"]
    assert message.endswith((".", "!")) and "\n" not in message and "Traceback" not in message, message
    return str(message)
