"""Processes and the store: two workers on one store, and a server killed (SIGKILL) in the middle of a batch add."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.app.server_helpers import start_server


def test_two_workers_share_one_store(tmp_path: Path) -> None:
    live = start_server(tmp_path / "w2", "--workers", "2", wait_s=120)
    try:
        key = live.key("shared")

        def write(n: int) -> tuple[int, int]:
            # A new connection per request, so that the kernel hands requests to both workers.
            with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
                pid = c.get("/health").json()["pid"]
                reply = c.post("/v1/memories", json={"content": f"Shared fact number {n} about worker processes."})
                assert reply.status_code == 200, reply.text
                return pid, int(reply.json()["id"])

        with ThreadPoolExecutor(6) as pool:
            done = list(pool.map(write, range(36)))
        pids = {pid for pid, _ in done}
        ids = [mid for _, mid in done]
        assert len(pids) == 2, pids
        assert len(set(ids)) == 36
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            for _ in range(4):  # both workers see every write
                assert c.get("/v1/stats").json()["memories"] == 36
            for mid in ids[::6]:
                assert c.get(f"/v1/memories/{mid}").status_code == 200
            for _ in range(2):
                for mode in ("lexical", "dense"):  # each worker's vector index catches up with the other's writes
                    found = c.post(
                        "/v1/memories/search", json={"query": "Shared fact number 17", "k": 36, "mode": mode}
                    )
                    assert len(found.json()["results"]) == 36
    finally:
        live.stop()


def test_sigkill_during_batch_add_keeps_acknowledged_writes(tmp_path: Path) -> None:
    root = tmp_path / "kill"
    live = start_server(root)
    key = live.key("crash")
    acked: list[list[int]] = []
    size = 40

    def batches() -> None:
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            for b in range(1000):
                items = [{"content": f"Batch {b} item {i}: a durable note about crash safety."} for i in range(size)]
                try:
                    reply = c.post("/v1/memories/batch", json={"items": items})
                except httpx.HTTPError:
                    return
                assert reply.status_code == 200, reply.text
                acked.append([r["id"] for r in reply.json()["results"]])

    writer = threading.Thread(target=batches)
    writer.start()
    deadline = time.monotonic() + 120
    while len(acked) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.15)  # the next batch is being embedded or written
    live.proc.send_signal(signal.SIGKILL)
    live.proc.wait()
    writer.join(timeout=60)
    assert len(acked) >= 3
    with sqlite3.connect(root / "data" / "hopmem.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = start_server(root, keys=False)
    try:
        with again.client(key) as c:
            count = c.get("/v1/stats").json()["memories"]
            assert count in (len(acked) * size, (len(acked) + 1) * size)  # a batch is one transaction: all or none
            for ids in acked:
                assert c.get(f"/v1/memories/{ids[0]}").status_code == 200
                assert c.get(f"/v1/memories/{ids[-1]}").status_code == 200
            found = c.post("/v1/memories/search", json={"query": "durable note crash", "k": 1000, "mode": "dense"})
            assert len(found.json()["results"]) == count  # every stored memory has its vector
    finally:
        again.stop()
