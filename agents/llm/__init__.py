"""LLM backends behind one interface (:class:`ChatLLM`): llama.cpp and transformers (+ LoRA adapters) in-process,
and OpenAI-compatible servers."""

from __future__ import annotations

from hopmem.agents.llm.base import ChatLLM, Completion, Message
from hopmem.agents.llm.factory import load_llm

__all__ = ["ChatLLM", "Completion", "Message", "load_llm"]
