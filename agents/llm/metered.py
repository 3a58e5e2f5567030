"""An LLM wrapper that reports what every call cost to the running step's trace.

Each call adds one entry to the step's ``llm_calls`` (:func:`hopmem.agents.trace.record_llm_call`): its kind
(``complete``, ``json``, ``stream``), prompt and generated tokens, milliseconds, generated tokens per second of the
whole call and, for a stream, the time to its first piece and the writing speed after it. The agent wraps its LLM in
one, so ``hopmem bench agent`` and the UI can show where a run's time went without a profiler.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from hopmem.agents.llm.base import ChatLLM, Completion, Message
from hopmem.agents.trace import record_llm_call


def _entry(kind: str, prompt: int, generated: int, ms: float, **extra: Any) -> dict[str, Any]:
    rate = generated / (ms / 1000) if ms > 0 and generated else 0.0
    return {
        "kind": kind,
        "prompt_tokens": prompt,
        "completion_tokens": generated,
        "ms": round(ms, 2),
        "tokens_per_s": round(rate, 1),
        **extra,
    }


class MeteredLLM:
    """``inner`` with each call's figures recorded; behaves as ``inner`` in every other way.

    Args:
        inner: the LLM to measure.
    """

    def __init__(self, inner: ChatLLM) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_window = inner.context_window

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def _prompt_tokens(self, messages: list[Message]) -> int:
        return sum(self.inner.count_tokens(m.get("content", "")) for m in messages)

    def complete(self, messages: list[Message], **kwargs: Any) -> Completion:
        completion: Completion = self._measured(
            "complete", messages, kwargs, lambda: self.inner.complete(messages, **kwargs)
        )
        return completion

    def complete_json(self, messages: list[Message], schema: dict[str, Any], **kwargs: Any) -> Any:
        return self._measured("json", messages, kwargs, lambda: self.inner.complete_json(messages, schema, **kwargs))

    def _measured(self, kind: str, messages: list[Message], kwargs: dict[str, Any], call: Any) -> Any:
        """Run ``call`` (a completion, or a JSON reply with its completion) and record what it cost, failed or not."""
        start = time.perf_counter()
        try:
            result = call()
        except Exception as exc:
            self._failed(kind, messages, start, exc, kwargs)
            raise
        completion = result[1] if kind == "json" else result
        ms = (time.perf_counter() - start) * 1000
        entry = _entry(kind, completion.prompt_tokens, completion.completion_tokens, ms)
        record_llm_call({**entry, "max_tokens": kwargs.get("max_tokens")})
        return result

    def _failed(self, kind: str, messages: list[Message], start: float, exc: Exception, kwargs: dict[str, Any]) -> None:
        """A failed call costs time too (a reply cut off by ``max_tokens`` is the usual one): record it."""
        ms = (time.perf_counter() - start) * 1000
        call = _entry(kind, self._prompt_tokens(messages), 0, ms, max_tokens=kwargs.get("max_tokens"))
        record_llm_call({**call, "error": type(exc).__name__})

    def stream(self, messages: list[Message], **kwargs: Any) -> Iterator[str]:
        """The inner stream, timed: ``first_token_ms`` is the wait for the first piece (prompt processing)."""
        start = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        try:
            for piece in self.inner.stream(messages, **kwargs):
                if first is None:
                    first = (time.perf_counter() - start) * 1000
                pieces.append(piece)
                yield piece
        finally:
            ms = (time.perf_counter() - start) * 1000
            generated = self.inner.count_tokens("".join(pieces)) if pieces else 0
            entry = _entry("stream", self._prompt_tokens(messages), generated, ms, max_tokens=kwargs.get("max_tokens"))
            entry["first_token_ms"] = round(first, 2) if first is not None else None
            if first is not None and generated > 1 and ms > first:  # the writing speed, without the prompt's wait
                entry["generation_tokens_per_s"] = round((generated - 1) / ((ms - first) / 1000), 1)
            entry["prompt_tokens_counted"] = "message contents (no chat template)"
            record_llm_call(entry)
