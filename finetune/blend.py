"""The blend of a reranker's scores with the candidates' order, its weight chosen on held-out training queries.

A small reranker trained on little data ranks worse than hybrid search alone but still knows things the fused order
does not; :func:`hopmem.agents.rerank.cross_encoder.blend_with_order` mixes both. Its weight is chosen here, on
training-split queries no model was trained on (never on dev): each query's hybrid candidates are scored once by the
model alone and every weight of a grid reorders them; the weight with the best mean nDCG@10 wins (ties: the smaller).
The cross-encoder recipe saves it in ``hopmem_cross_encoder.json``, the LLM recipes as ``blend`` in
``hopmem_reranker.json``; the rerankers apply it.

:func:`choose_adapter_blend` does the same for an adapter that is already trained (``hopmem finetune blend``): its
held-out queries are the training-split queries of the given folders that its ``data.json`` does not list as
trained on.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hopmem.agents.rerank import rank_by_scores
from hopmem.agents.rerank.cross_encoder import blend_with_order
from hopmem.finetune.reranker_data import HoldoutQuery, corpus_texts, ranked_candidates
from hopmem.memory.datasets.metrics import ndcg_at_k
from hopmem.memory.datasets.splits import query_splits
from hopmem.memory.errors import InputError

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)

BLEND_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class BlendableReranker(Protocol):
    """A reranker whose ``blend`` attribute sets the weight of the given order in its scores."""

    blend: float

    def score(self, query: str, docs: list[str]) -> list[float]: ...


def choose_blend(
    reranker: BlendableReranker, holdout: list[HoldoutQuery], grid: tuple[float, ...] = BLEND_GRID
) -> dict[str, Any]:
    """The blend weight with the best nDCG@10 on held-out training queries (ties: the smaller weight).

    Each held-out query's hybrid candidates are scored once (the model alone); every weight of ``grid`` reorders
    them. Without held-out queries the weight is 0 (the model alone), and the report says so.
    """
    if not holdout or not grid:
        return {"weight": 0.0, "chosen_on": NO_HOLDOUT, "ndcg@10": {}}
    saved, reranker.blend = reranker.blend, 0.0
    try:
        raw = [reranker.score(q.query, q.texts) for q in holdout]
    finally:
        reranker.blend = saved
    table: dict[str, float] = {}
    for weight in grid:
        values = []
        for q, scores in zip(holdout, raw, strict=True):
            mixed = blend_with_order(scores, weight)
            order = [q.doc_ids[i] for i, _ in rank_by_scores(mixed)]
            values.append(ndcg_at_k(order, q.qrels, 10))
        table[f"{weight:g}"] = round(sum(values) / len(values), 4)
    best = max(grid, key=lambda w: (table[f"{w:g}"], -w))
    return {
        "weight": float(best),
        "chosen_on": f"{len(holdout)} held-out training queries (their hybrid top {len(holdout[0].doc_ids)})",
        "ndcg@10": table,
    }


NO_HOLDOUT = "nothing held out: the model alone"


def describe_blend(blend: dict[str, Any]) -> str:
    """One phrase for a training summary: the chosen weight and what it was chosen on, or that no weight was chosen
    (a run without held-out queries uses the model alone and never meant to blend)."""
    if blend.get("chosen_on") == NO_HOLDOUT:
        return "no blend weight chosen (nothing held out: the model's own scores are used)"
    return f"blend weight {blend['weight']} (chosen on {blend['chosen_on']})"


def untrained_holdout(
    adapter: Path,
    datasets: list[Path],
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    per_dataset: int,
    depth: int = 30,
    seed: int = 0,
    progress: bool = True,
) -> list[HoldoutQuery]:
    """Up to ``per_dataset`` (seeded sample) training-split queries of each folder that ``adapter`` never trained on
    (its ``data.json``), with their hybrid top ``depth`` candidates: the held-out queries of an existing adapter."""
    trained: dict[str, set[str]] = {}
    record = Path(adapter) / "data.json"
    if record.is_file():
        for entry in json.loads(record.read_text(encoding="utf-8")).get("datasets", []):
            trained[str(entry.get("dataset"))] = set(entry.get("train_ids", [])) | set(entry.get("dev_ids", []))
    held: list[HoldoutQuery] = []
    for folder in datasets:
        splits = query_splits(folder)
        free = [q for q in splits.train if q not in trained.get(splits.dataset, set())]
        chosen = sorted(random.Random(seed).sample(free, min(per_dataset, len(free))))
        if not chosen:
            continue
        texts = corpus_texts(folder)
        ranked = ranked_candidates(
            folder,
            {q: splits.texts[q] for q in chosen},
            embedder,
            cache_dir=cache_dir,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            depth=depth,
            progress=progress,
            desc="held-out candidates",
        )
        prefix = f"{splits.dataset}:"
        for q in chosen:
            docs = [d for d in ranked.get(q, []) if d in texts]
            held.append(HoldoutQuery(prefix + q, splits.texts[q], docs, [texts[d] for d in docs], splits.train[q]))
    return held


def record_blend(adapter: Path, blend: dict[str, Any], command: str | None = None) -> None:
    """Save ``blend`` into the adapter's ``hopmem_reranker.json`` (``blend``, ``blend_chosen_on``) and, when it has
    one, its ``metrics.json`` (``blend``, with the command), where the card's figures come from."""
    from hopmem.agents.rerank.model_paths import RECORD_FILE

    path = Path(adapter) / RECORD_FILE
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    record["blend"] = blend["weight"]
    record["blend_chosen_on"] = blend["chosen_on"]
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    metrics = Path(adapter) / "metrics.json"
    if metrics.is_file():
        report = json.loads(metrics.read_text(encoding="utf-8"))
        report["blend"] = {**blend, **({"command": command} if command else {})}
        metrics.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def blend_card_lines(blend: dict[str, Any]) -> list[str]:
    """The model card's section on the blend with the candidates' order."""
    table = ", ".join(f"{w}: {v}" for w, v in blend.get("ndcg@10", {}).items())
    lines = [
        "",
        "## Blend with the candidates' order",
        f"Score = (1 - w) * z(model score) + w * z(-log(1 + rank)); w = {blend['weight']} chosen on "
        f"{blend['chosen_on']} (nDCG@10 per w: {table or 'none'}). It is saved as `blend` in "
        "`hopmem_reranker.json` and applied by the reranker (the agent's rerank step); `prorank-alone` in "
        "`hopmem eval rerank` is the model without it.",
    ]
    if blend.get("command"):
        lines.append(f"Chosen by: `{blend['command']}`")
    return lines


def replace_section(card: str, section: list[str]) -> str:
    """``card`` with its blend section replaced by ``section`` (appended when it has none); other sections stay."""
    heading = "\n" + section[1]
    start = card.find(heading)
    if start < 0:
        return card.rstrip("\n") + "\n" + "\n".join(section) + "\n"
    end = card.find("\n## ", start + len(heading))
    tail = "\n" + card[end:].lstrip("\n") if end >= 0 else ""
    return card[:start] + "\n".join(section) + "\n" + tail


def choose_adapter_blend(
    adapter: Path,
    datasets: list[Path],
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    per_dataset: int = 20,
    depth: int = 30,
    seed: int = 0,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Choose and save the blend weight of an already trained pointwise adapter (see the module docstring).

    Raises:
        InputError: when no training-split query of ``datasets`` is left that the adapter was not trained on.
    """
    from hopmem.agents.rerank.pointwise import PointwiseLLMReranker

    held = untrained_holdout(
        adapter,
        datasets,
        embedder,
        cache_dir=cache_dir,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        per_dataset=per_dataset,
        depth=depth,
        seed=seed,
        progress=progress,
    )
    if not held:
        raise InputError(f"No training query of {', '.join(map(str, datasets))} is left that {adapter} never saw.")
    blend = choose_blend(PointwiseLLMReranker(adapter=adapter, blend=0.0), held)
    if command:
        blend["command"] = command
    record_blend(adapter, blend, command)
    card = Path(adapter) / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8")
        card.write_text(replace_section(text, blend_card_lines(blend)), encoding="utf-8")
    return blend
