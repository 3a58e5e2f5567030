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
    lines.append(check_reranker(settings))
    lines.append(check_treehop(settings, embedder.name, embedder.dim, vector))
    return lines


def check_treehop(settings: Settings, embedder: str, dim: int, vector: object) -> str:
    """Load the TreeHop model of the agent's hop step and compute one next query; a missing model is reported.

    Raises:
        ConfigError: when ``treehop_model`` names a model that is missing or made for other embeddings.
    """
    import numpy as np

    from hopmem.agents.treehop_model import load_treehop, packaged_model_dir

    if settings.treehop_hops < 2:
        return "treehop: off (treehop_hops = 1)"
    if not settings.treehop_model and not (packaged_model_dir() / "config.json").exists():
        return "treehop missing: no TreeHop weights in the package; the hop step is skipped"
    model = load_treehop(settings.treehop_model or None, embedder=embedder, dim=dim)
    q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    nxt = model.next_queries(q, q)
    return (
        f"treehop ok: {settings.treehop_model or packaged_model_dir().name} ({model.n_parameters():,} parameters, "
        f"|q_next|={float(np.linalg.norm(nxt)):.3f})"
    )


def check_reranker(settings: Settings) -> str:
    """Load the configured reranker and score two passages once; a missing cross-encoder is reported, not raised.

    ``make install`` trains the default cross-encoder only where the training data is present, so its absence is a
    state to report (with the command that fixes it), not a failed installation.
    """
    from hopmem.agents.rerank import CrossEncoderReranker, default_cross_encoder_dir, load_reranker
    from hopmem.memory.errors import ConfigError

    start = time.perf_counter()
    folder = settings.reranker_model or default_cross_encoder_dir(settings.cache_dir)
    try:
        reranker = load_reranker(
            settings.reranker,
            settings.reranker_model or None,
            cache_dir=settings.cache_dir,
            batch_size=2,
            server=settings.reranker_server,
            served_model=settings.reranker_served_model,
        )
    except ConfigError as exc:
        return f"reranker missing: {exc}"
    if reranker.name == "none":
        return "reranker: none (the fused order is kept)"
    query = "how do honeybees tell each other where flowers are"
    docs = ["Rain is expected over the weekend.", "Honeybees dance to show the direction of flowers."]
    if isinstance(reranker, CrossEncoderReranker):
        reranker.blend = 0.0  # judge the model itself: with two passages the blend would follow their order
    ranked = reranker.rank(query, docs)
    verdict = "relevant passage first" if ranked[0][0] == 1 else "relevant passage NOT first"
    where = getattr(reranker, "adapter", None) or folder
    return f"reranker ok: {reranker.name} from {where} ({verdict}, {time.perf_counter() - start:.1f} s)"
