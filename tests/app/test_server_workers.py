"""``hopmem serve --workers 2``: two processes on one store serve writes and reads, and every write is there."""

from __future__ import annotations

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
