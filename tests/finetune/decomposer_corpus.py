"""A tiny BEIR folder and a plan environment over it, shared by the decomposer's tests (real hybrid search, RSF)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hopmem.finetune.decomposer_reward import PlanEnvironment, RewardWeights
from hopmem.settings import get_settings

DOCS = {
    "aard": ("Aardvark", "The aardvark is a burrowing mammal native to Africa that eats ants and termites."),
    "zeb": ("Zebra", "Zebras are African equines known for their black and white striped coats."),
    "oak": ("Oak", "An oak is a tree or shrub in the genus Quercus, with lobed leaves and acorns."),
    "sal": ("Salmon", "Salmon are fish that hatch in fresh water and migrate to the ocean."),
    "vol": ("Volcano", "A volcano is a rupture in the crust of a planet through which lava escapes."),
}


def write_beir(root: Path, queries: Sequence[Mapping[str, Any]], qrels: Sequence[tuple[str, str]]) -> Path:
    """:data:`DOCS` as ``corpus.jsonl``, ``queries`` as ``queries.jsonl`` and ``qrels`` as ``qrels/train.tsv``."""
    (root / "qrels").mkdir()
    rows = [{"_id": k, "title": t, "text": body} for k, (t, body) in DOCS.items()]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    lines = "".join(f"{q}\t{d}\t1\n" for q, d in qrels)
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + lines)
    return root


def plan_environment(cache_dir: Path, weights: RewardWeights, **options: Any) -> Iterator[PlanEnvironment]:
    """A :class:`PlanEnvironment` with the packaged embedder (for a fixture to yield from; closed afterwards)."""
    from hopmem.memory.embeddings import load_embedder

    settings = get_settings()
    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    environment = PlanEnvironment(
        embedder,
        cache_dir=cache_dir,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        weights=weights,
        **options,
    )
    yield environment
    environment.close()
