"""Any OpenAI-compatible chat server (vLLM, llama.cpp's server) over HTTP, with httpx."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from hopmem.agents.llm.base import Completion, Message
from hopmem.agents.llm.schema import parse_json_reply
from hopmem.memory.errors import LLMError

log = logging.getLogger(__name__)


class _FormatRefused(LLMError):
    """The server rejected the request's ``response_format`` (it speaks another dialect of structured output)."""


class OpenAICompatLLM:
    """Talks to ``{base_url}/chat/completions``.

    Args:
        model: the model name the server knows (for vLLM, a LoRA adapter name works too).
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        api_key: sent as a bearer token (no Authorization header when empty).
        timeout_s: per request.
        retries: extra attempts on connection errors and 5xx answers.
        json_format: how :meth:`complete_json` asks for schema-constrained output: ``json_schema`` (OpenAI's form,
            which vLLM and llama.cpp's C++ server accept), ``json_object`` (llama-cpp-python's server:
            ``{"type": "json_object", "schema": ...}``) or ``auto``: ``json_schema`` first, and ``json_object`` from
            then on if the server refuses it.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str = "not-needed",
        timeout_s: float = 120.0,
        retries: int = 2,
        context_window: int = 2048,
        json_format: str = "auto",
    ) -> None:
        import httpx

        if json_format not in ("auto", "json_schema", "json_object"):
            raise ValueError(f"json_format must be auto, json_schema or json_object, not {json_format!r}")

        self.name = model
        self.base_url = base_url.rstrip("/")
        self.context_window = context_window
        self.retries = retries
        self.json_format = json_format
        # An empty key sends no header: "Bearer " alone is not a valid header value, and httpx refuses to send it.
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def _refusal(self, response: Any, payload: dict[str, Any]) -> LLMError | None:
        """The error a 4xx/5xx answer means: raised at once (a 4xx) or kept to retry (a 5xx); None for a success."""
        status = response.status_code
        if status >= 400 and "response_format" in payload and "response_format" in response.text:
            # a validation error about the format, whatever its status: retrying the same request is useless
            raise _FormatRefused(
                f"The LLM server at {self.base_url} refused the structured-output request "
                f"({status}: {_one_line(response.text)}); use a server with JSON-schema output."
            )
        if status >= 500:
            return LLMError(f"server answered {status}")
        if status >= 400:
            raise LLMError(
                f"The LLM server at {self.base_url} refused the request ({status}: {_one_line(response.text)}); "
                "check HOPMEM_LLM_MODEL."
            )
        return None

    def _unreachable(self, last: Exception | None) -> LLMError:
        return LLMError(
            f"The LLM server at {self.base_url} is unreachable after {self.retries + 1} attempts "
            f"({_one_line(str(last))}); start it or fix HOPMEM_LLM_BASE_URL."
        )

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(f"{self.base_url}/chat/completions", json=payload)
                last = self._refusal(response, payload)
                if last is None:
                    return dict(response.json())
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(min(2.0, 0.25 * 2**attempt))
        raise self._unreachable(last)

    def _parse(self, data: dict[str, Any], start: float) -> Completion:
        try:
            text = data["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMError(
                f"The LLM server at {self.base_url} sent a malformed reply: {_one_line(json.dumps(data))}."
            ) from exc
        usage = data.get("usage") or {}
        return Completion(
            text=str(text),
            model=str(data.get("model", self.name)),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            ms=(time.perf_counter() - start) * 1000,
        )

    def complete_json(
        self,
        messages: list[Message],
        schema: dict[str, Any],
        *,
        max_tokens: int,
        temperature: float = 0.0,
    ) -> tuple[dict[str, Any] | list[Any], Completion]:
        """Ask the server for output constrained to ``schema`` and validate it (see :meth:`ChatLLM.complete_json`).

        The request carries ``response_format`` in the dialect of ``json_format``; vLLM's removed ``guided_json``
        parameter is not used. With ``auto``, a server that refuses ``json_schema`` is asked again with
        ``json_object`` + ``schema`` and remembered.
        """
        start = time.perf_counter()
        formats = ["json_schema", "json_object"] if self.json_format == "auto" else [self.json_format]
        for n, kind in enumerate(formats):
            if kind == "json_schema":
                response_format: dict[str, Any] = {
                    "type": "json_schema",
                    "json_schema": {"name": "reply", "schema": schema, "strict": True},
                }
            else:
                response_format = {"type": "json_object", "schema": schema}
            payload: dict[str, Any] = {
                "model": self.name,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "response_format": response_format,
            }
            try:
                data = self._post(payload)
            except _FormatRefused:
                if n + 1 < len(formats):
                    log.info("%s refuses json_schema output; using json_object + schema", self.base_url)
                    self.json_format = formats[n + 1]
                    continue
                raise
            completion = self._parse(data, start)
            return parse_json_reply(completion.text, schema, source=f"LLM server at {self.base_url}"), completion
        raise AssertionError("unreachable")  # pragma: no cover

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Completion:
        start = time.perf_counter()
        payload: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if stop:
            payload["stop"] = stop
        return self._parse(self._post(payload), start)

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """The reply's text pieces as the server sends them (``stream: true``, server-sent events).

        A connection that fails before the first piece is retried like :meth:`complete`; one that breaks after it
        (the server died mid-reply) raises :class:`LLMError` at once: retrying would repeat what was already given.
        """
        import httpx

        payload: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if stop:
            payload["stop"] = stop
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            started = False
            try:
                with self._client.stream("POST", f"{self.base_url}/chat/completions", json=payload) as response:
                    if response.status_code >= 400:
                        response.read()
                        last = self._refusal(response, payload)
                    else:
                        for piece in self._sse_pieces(response):
                            started = True
                            yield piece
                        return
            except httpx.HTTPError as exc:
                if started:
                    raise LLMError(
                        f"The LLM server at {self.base_url} stopped answering in the middle of a reply "
                        f"({_one_line(str(exc)) or type(exc).__name__}); check that it is still running."
                    ) from exc
                last = exc
            time.sleep(min(2.0, 0.25 * 2**attempt))
        raise self._unreachable(last)

    def _sse_pieces(self, response: Any) -> Iterator[str]:
        """The ``delta.content`` of each ``data:`` event of a streamed chat completion, up to ``[DONE]``."""
        done = False
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                event = json.loads(data)
                if "error" in event:
                    raise LLMError(
                        f"The LLM server at {self.base_url} failed during a streamed reply: "
                        f"{_one_line(json.dumps(event['error']))}."
                    )
                choice = event["choices"][0] if event.get("choices") else {}
                piece = (choice.get("delta") or {}).get("content") or ""
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                raise LLMError(
                    f"The LLM server at {self.base_url} sent a malformed stream event: {_one_line(data)}."
                ) from exc
            if piece:
                yield str(piece)
        if not done:
            raise LLMError(
                f"The LLM server at {self.base_url} ended a streamed reply without [DONE]; check that it is still "
                "running."
            )


def _one_line(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters on one line (server errors go into one-sentence messages)."""
    return " ".join(text.split())[:limit].rstrip(".")
