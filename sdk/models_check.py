"""Check that the configured models load offline and work, for ``make install`` and ``hopmem models check``."""

from __future__ import annotations

import time

from hopmem.agents.llm import load_llm
from hopmem.memory.embeddings import load_embedder
from hopmem.memory.model_paths import resolve_embedder_path
from hopmem.settings import Settings


def check_models(settings: Settings) -> list[str]:
    """Load and run the embedder and the LLM once; return one line per model.

    Raises:
        ModelNotAvailableError: when a model is not available offline.
    """
    lines = []
    start = time.perf_counter()
    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    vector = embedder.embed(["hopmem checks its embedder"])[0]
    query = embedder.embed_query("hopmem checks its embedder")  # prepares the query runtime (ONNX export, once)
    runtime = "onnx" if getattr(embedder, "_onnx", None) is not None else "torch"
    lines.append(
        f"embedder ok: {settings.embedder} from {resolve_embedder_path(settings.embedder)} "
        f"(dim {embedder.dim}, |v|={float((vector**2).sum()) ** 0.5:.3f}, query runtime {runtime}, "
        f"query/batch max diff {float(abs(query - vector).max()):.1e}, {time.perf_counter() - start:.1f} s)"
    )
    start = time.perf_counter()
    llm = load_llm(
        settings.llm_backend,
        settings.llm_model,
        context_window=settings.llm_context,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
    )
    if llm is None:
        lines.append("llm: none configured (answers are extractive)")
    else:
        reply = llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=8)
        lines.append(
            f"llm ok: {settings.llm_backend} {llm.name} ({reply.completion_tokens} tokens generated, "
            f"{time.perf_counter() - start:.1f} s)"
        )
    return lines
