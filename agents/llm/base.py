"""The interface every LLM backend implements, and its result type.

``tests/agents/test_llm_conformance.py`` checks every backend (llama.cpp, transformers, an OpenAI-compatible server)
against the promises written here.
"""

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

    Backends raise :class:`hopmem.memory.errors.LLMError` (one sentence, what to do) when they fail, a prompt longer
    than the context window included; they never return an empty string to hide an error.
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
    ) -> Completion:
        """A reply of at most ``max_tokens`` generated tokens (``completion_tokens`` counts them), cut before the first
        of ``stop`` (which is not included); greedy at temperature 0, so the same messages give the same reply."""
        ...

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        """The reply of :meth:`complete` in pieces; at temperature 0 they join to the text :meth:`complete` gives."""
        ...

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

    def count_tokens(self, text: str) -> int:
        """The tokens ``text`` takes (the model's tokenizer, or an estimate where the backend has none: a server)."""
        ...
