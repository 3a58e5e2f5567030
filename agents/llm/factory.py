"""Pick and load an LLM backend by name."""

from __future__ import annotations

from hopmem.agents.llm.base import ChatLLM
from hopmem.memory.errors import ConfigError

_CACHE: dict[tuple[object, ...], ChatLLM] = {}


def load_llm(
    backend: str,
    model: str,
    *,
    context_window: int = 2048,
    threads: int = 0,
    seed: int = 0,
    base_url: str = "",
    api_key: str = "",
    timeout_s: float = 120.0,
    repeat_penalty: float = 1.3,
    adapter: str = "",
    flash_attn: bool = True,
) -> ChatLLM | None:
    """The backend ``backend`` serving ``model`` (loaded once per process), or None for ``none``.

    ``adapter`` is a local peft LoRA adapter folder, applied by the ``transformers`` backend only (the others reject
    it rather than silently answering without it).
    """
    key = (backend, model, context_window, threads, seed, base_url, timeout_s, repeat_penalty, adapter, flash_attn)
    if key in _CACHE:
        return _CACHE[key]
    llm: ChatLLM
    if backend == "none":
        return None
    if adapter and backend != "transformers":
        raise ConfigError(f"A LoRA adapter is applied by the transformers backend only, not {backend!r}; set both.")
    if backend == "llamacpp":
        from hopmem.agents.llm.llamacpp import LlamaCppLLM

        llm = LlamaCppLLM(
            model,
            context_window=context_window,
            threads=threads,
            seed=seed,
            repeat_penalty=repeat_penalty,
            flash_attn=flash_attn,
        )
    elif backend == "openai":
        from hopmem.agents.llm.openai_compat import OpenAICompatLLM

        llm = OpenAICompatLLM(
            model, base_url=base_url, api_key=api_key, timeout_s=timeout_s, context_window=context_window
        )
    elif backend == "transformers":
        from hopmem.agents.llm.transformers_llm import TransformersLLM

        llm = TransformersLLM(
            model,
            adapter=adapter,
            context_window=context_window,
            threads=threads,
            seed=seed,
            repeat_penalty=repeat_penalty,
        )
    else:
        raise ConfigError(f"Unknown LLM backend {backend!r}; use llamacpp, openai, transformers or none.")
    _CACHE[key] = llm
    return llm
