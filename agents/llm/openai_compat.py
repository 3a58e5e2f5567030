"""Any OpenAI-compatible chat server (vLLM, llama.cpp's server) over HTTP, with httpx."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from hopmem.agents.llm.base import Completion, Message
from hopmem.memory.errors import LLMError


class OpenAICompatLLM:
    """Talks to ``{base_url}/chat/completions``.

    Args:
        model: the model name the server knows (for vLLM, a LoRA adapter name works too).
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        api_key: sent as a bearer token.
        timeout_s: per request.
        retries: extra attempts on connection errors and 5xx answers.
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
    ) -> None:
        import httpx

        self.name = model
        self.base_url = base_url.rstrip("/")
        self.context_window = context_window
        self.retries = retries
        self._client = httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {api_key}"})

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(f"{self.base_url}/chat/completions", json=payload)
                if response.status_code >= 500:
                    last = LLMError(f"server answered {response.status_code}")
                elif response.status_code >= 400:
                    raise LLMError(
                        f"The LLM server at {self.base_url} refused the request ({response.status_code}: "
                        f"{response.text[:200]}); check HOPMEM_LLM_MODEL."
                    )
                else:
                    return dict(response.json())
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(min(2.0, 0.25 * 2**attempt))
        raise LLMError(
            f"The LLM server at {self.base_url} is unreachable after {self.retries + 1} attempts ({last}); "
            "start it or fix HOPMEM_LLM_BASE_URL."
        )

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
        data = self._post(payload)
        try:
            text = data["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(
                f"The LLM server at {self.base_url} sent a malformed reply: {json.dumps(data)[:200]}."
            ) from exc
        usage = data.get("usage") or {}
        return Completion(
            text=str(text),
            model=str(data.get("model", self.name)),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            ms=(time.perf_counter() - start) * 1000,
        )

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        # Token streaming over SSE arrives with the agent work; until then the whole reply is one piece.
        yield self.complete(messages, max_tokens=max_tokens, temperature=temperature, stop=stop).text
