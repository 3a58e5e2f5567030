"""The reranker backends by name, imported only when one is built, and :func:`load_reranker`, the settings' factory.

:data:`BACKENDS` maps a backend's name to ``"module:attribute"``; :func:`backend_class` imports that module on
first use, so naming a backend (or listing them) loads no model library. The factory lives here and not in the base
module: the backends import the base, and the base imports none of them.

:data:`RERANKERS` are the names ``HOPMEM_RERANKER`` accepts. ``served`` is not one of them: it is chosen by
``prorank`` together with a server (``HOPMEM_RERANKER_SERVER``). With a server, ``rank-r1`` reasons there too: its
chat requests name the adapter ``rank-r1`` (the name ``make serve-vllm`` serves it under).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from hopmem.agents.rerank.base import Reranker
from hopmem.agents.rerank.model_paths import find_adapter, find_cross_encoder, read_reranker_record
from hopmem.memory.errors import ConfigError

RERANKERS: tuple[str, ...] = ("prorank", "prorank-base", "rank-r1", "cross-encoder", "none")

BACKENDS: dict[str, str] = {
    "none": "hopmem.agents.rerank.base:PassThroughReranker",
    "cross-encoder": "hopmem.agents.rerank.cross_encoder:CrossEncoderReranker",
    "prorank": "hopmem.agents.rerank.pointwise:PointwiseLLMReranker",
    "prorank-base": "hopmem.agents.rerank.pointwise:PointwiseLLMReranker",
    "rank-r1": "hopmem.agents.rerank.setwise:SetwiseLLMReranker",
    "served": "hopmem.agents.rerank.served:ServedPointwiseReranker",
}
"""Backend name -> ``"module:class"`` of the class that implements it."""


def backend_class(name: str) -> Any:
    """The class of backend ``name`` (its module is imported now, not before).

    Raises:
        ConfigError: for a name that is not in :data:`BACKENDS`.
    """
    target = BACKENDS.get((name or "").strip().lower())
    if target is None:
        raise ConfigError(f"Unknown reranker backend {name!r}; use one of {', '.join(BACKENDS)}.")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def load_reranker(
    name: str,
    location: str | Path | None,
    *,
    cache_dir: Path,
    batch_size: int = 16,
    server: str = "",
    served_model: str = "prorank",
) -> Reranker:
    """The reranker called ``name``.

    - ``none``: pass-through; ``cross-encoder``: the MiniLM cross-encoder (``location``, else the user's trained one
      in the cache, else the shipped one);
    - ``prorank``: the pointwise LLM reranker with its LoRA adapter (``location``, else the user's trained one in the
      cache, else the shipped one); ``prorank-base``: that adapter's base model (and prompt budget) without it;
    - ``rank-r1``: the setwise reasoning reranker with its adapter (found like ``prorank``).

    Args:
        name: the backend (``HOPMEM_RERANKER``).
        location: the model's folder (``HOPMEM_RERANKER_MODEL``); empty or None means the default for ``name``.
        cache_dir: hopmem's cache folder (``HOPMEM_CACHE_DIR``).
        batch_size: pairs per forward pass.
        server: the OpenAI-compatible root of a vLLM server (``HOPMEM_RERANKER_SERVER``); when set, ``prorank``
            is scored there (:class:`hopmem.agents.rerank.served.ServedPointwiseReranker`) under ``served_model``
            and ``rank-r1`` generates its reasoning there under the name ``rank-r1``.
        served_model: the name the server serves the adapter under (``--lora-modules NAME=folder``).

    Raises:
        ConfigError: for an unknown name, or when the model is not on disk (the message says how to train it).
    """
    key = (name or "").strip().lower()
    if key == "prorank" and server:
        try:
            adapter: str | Path = find_adapter("prorank", location, cache_dir)
        except ConfigError:
            adapter = ""  # the server has the adapter; only its record (prompt budget) is read here
        served_class = backend_class("served")
        served: Reranker = served_class(served_model, base_url=server, adapter=adapter, batch_size=batch_size)
        return served
    if key == "rank-r1" and server:
        return _served_setwise(location, cache_dir, server)
    if key not in RERANKERS:
        raise ConfigError(f"Unknown reranker {name!r}; use one of {', '.join(RERANKERS)}.")
    cls = backend_class(key)
    if key == "none":
        reranker: Reranker = cls()
    elif key == "cross-encoder":
        reranker = cls(find_cross_encoder(location, cache_dir), batch_size=batch_size)
    elif key == "prorank":
        reranker = cls(adapter=find_adapter("prorank", location, cache_dir), batch_size=batch_size)
    elif key == "prorank-base":
        try:  # the base an adapter was trained on, so "prorank-base" is the tuned model minus its adapter
            record = read_reranker_record(find_adapter("prorank", location, cache_dir))
        except ConfigError:
            record = {}
        reranker = cls(
            str(record.get("base_model") or ""),
            batch_size=batch_size,
            passage_tokens=record.get("passage_tokens"),
            query_tokens=record.get("query_tokens"),
            name=key,
        )
    else:  # rank-r1
        reranker = cls(adapter=find_adapter("rank-r1", location, cache_dir), name=key)
    return reranker


SERVED_SETWISE_NAME = "rank-r1"
"""The name a server serves the rank-r1 adapter under (``make serve-vllm``'s ``--lora-modules rank-r1=...``)."""


def _served_setwise(location: str | Path | None, cache_dir: Path, server: str) -> Reranker:
    """The setwise reranker whose replies come from the server's ``rank-r1`` adapter; its prompts are clipped with
    the adapter's base tokenizer and budgets, as in training and in process."""
    from hopmem.agents.llm.openai_compat import OpenAICompatLLM
    from hopmem.agents.rerank.served import load_tokenizer

    try:
        adapter: str | Path = find_adapter("rank-r1", location, cache_dir)
    except ConfigError:
        adapter = ""  # the server has the adapter; only its record (budgets, set size) is read here
    record = read_reranker_record(Path(adapter)) if adapter else {}
    tokenizer = load_tokenizer(
        str(record.get("base_model") or "SmolLM2-135M-Instruct"), cache_dir=cache_dir / "transformers"
    )
    llm = OpenAICompatLLM(SERVED_SETWISE_NAME, base_url=server)
    reranker: Reranker = backend_class("rank-r1")(adapter=adapter, llm=llm, tokenizer=tokenizer, name="rank-r1")
    return reranker
