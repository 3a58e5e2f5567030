"""Request limits of ``hopmem serve``: body size (JSON and uploads) and a rate per API key.

The body limit is an ASGI middleware, so an oversized body is refused before any route reads it: by its
``Content-Length`` when the client sends one, else while it streams in (chunked bodies). Uploads (``/v1/ingest``)
get their own, larger limit. The rate limit is a token bucket per key, held in the worker process: with N workers a
key may make up to N times the rate, which the setting's description says.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hopmem.app.server.errors import error_body

UPLOAD_PATHS = ("/v1/ingest",)


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answer 413 (OpenAI error shape) to a body above ``max_body`` (``max_upload`` on upload paths)."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int) -> None:
        self.app, self.max_body, self.max_upload = app, max_body, max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"] in UPLOAD_PATHS
        limit = self.max_upload if upload else self.max_body
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _refuse(send, limit, upload)
                return
        seen = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _TooLarge  # the framework may turn this into its own error: tracking_send drops that
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, tracking_send)
        if exceeded and not started:
            await _refuse(send, limit, upload)


async def _refuse(send: Send, limit: int, upload: bool) -> None:
    what, setting = (
        ("upload", "HOPMEM_SERVER_MAX_UPLOAD_BYTES") if upload else ("request body", "HOPMEM_SERVER_MAX_BODY_BYTES")
    )
    body = json.dumps(
        error_body(
            413,
            f"The {what} is larger than the server's limit of {limit:,} bytes ({setting}); send less.",
            "body_too_large",
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute on average, bursts up to the same number.

    Args:
        per_minute: the rate; 0 turns the limit off.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key_id: str) -> float:
        """0.0 when the request may go ahead, else the seconds to wait before the next one."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                return (1.0 - tokens) / rate
            self._buckets[key_id] = (tokens - 1.0, now)
            return 0.0

    def snapshot(self) -> dict[str, Any]:
        return {"per_minute": self.per_minute, "keys": len(self._buckets)}
