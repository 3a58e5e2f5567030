"""The interface every LLM backend implements, and its result type."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

Message = dict[str, str]


@dataclass
class Completion:
    """One generated reply."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ms: float = 0.0

    def usage(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


class ChatLLM(Protocol):
    """A chat model: messages in, text out.

    Backends raise :class:`hopmem.memory.errors.LLMError` (one sentence, what to do) when they fail; they never
    return an empty string to hide an error.
    """

    name: str
    context_window: int

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Completion: ...

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]: ...

    def complete_json(
        self,
        messages: list[Message],
        schema: dict[str, Any],
        *,
        max_tokens: int,
        temperature: float = 0.0,
    ) -> tuple[dict[str, Any] | list[Any], Completion]:
        """A reply constrained to the JSON schema ``schema``, parsed and validated, with its :class:`Completion`.

        Generation is constrained where the backend can (llama.cpp grammar, a server's ``json_schema`` response
        format), and the reply is always parsed and checked against ``schema`` afterwards: a reply cut off by
        ``max_tokens``, not JSON, or breaking the schema raises :class:`hopmem.memory.errors.LLMError`, so callers
        never receive unchecked structure.
        """
        ...

    def count_tokens(self, text: str) -> int: ...
