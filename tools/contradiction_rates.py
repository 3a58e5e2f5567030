"""Measure the contradiction check's two tiers on real text: false alarms among honest neighbours, lies caught.

Prints JSON with, for the first tier (:func:`~hopmem.memory.trust.contradiction.contradiction`, cosine >= 0.8) and
the paraphrase tier (:func:`~hopmem.memory.trust.contradiction.paraphrase_contradiction`, cosine >= 0.7):

* honest: among ``--texts`` honest texts of the concurrency benchmark's corpus (``generate_memories``, seed 0), the
  pairs of close neighbours and how many each tier flags (what the gate would hold among honest writers);
* lies: over the trust benchmark's facts (``--seeds``), the share of plain and paraphrased false versions
  (``hopmem bench attack``'s paraphraser) that each tier flags against their true sentence, and of true-fact pairs.

    python tools/contradiction_rates.py --texts 3000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np

from hopmem.bench.attacks.paraphrase import paraphrase
from hopmem.bench.corpus import generate_memories, load_corpus, resolve_data_root
from hopmem.bench.trust_bench import build_facts
from hopmem.memory.embeddings import load_embedder
from hopmem.memory.trust.contradiction import contradiction, paraphrase_contradiction
from hopmem.settings import get_settings

FIRST, SEMANTIC = 0.8, 0.7


def _verdict(new: str, old: str, cos: float) -> str | None:
    if cos >= FIRST and contradiction(new, old):
        return "first"
    if cos >= SEMANTIC and paraphrase_contradiction(new, old, cos):
        return "paraphrase"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--facts", type=int, default=200)
    args = parser.parse_args()
    settings = get_settings()
    embedder = load_embedder(settings.embedder)
    root = resolve_data_root(None)
    texts = [m["content"] for m in generate_memories(args.texts, load_corpus(root), seed=0)]
    vectors = embedder.embed(texts)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, 0.0)
    honest = {"pairs_0.8": 0, "pairs_0.7": 0, "first": 0, "paraphrase": 0, "examples": []}
    for i, j in zip(*np.nonzero(np.triu(sims >= SEMANTIC)), strict=True):
        cos = float(sims[i, j])
        if texts[i].strip() == texts[j].strip():
            continue
        honest["pairs_0.7"] += 1
        honest["pairs_0.8"] += cos >= FIRST
        verdict = _verdict(texts[j], texts[i], cos) or _verdict(texts[i], texts[j], cos)
        if verdict:
            honest[verdict] += 1
    lies = {"facts": 0, "plain": {"first": 0, "paraphrase": 0}, "paraphrased": {"first": 0, "paraphrase": 0}}
    for seed in args.seeds:
        facts = build_facts(root, args.facts, random.Random(f"facts-{seed}"))
        rng = random.Random(f"evasion-{seed}")
        for fact in facts:
            lies["facts"] += 1
            for kind, text in (("plain", fact.false), ("paraphrased", paraphrase(fact.false, rng))):
                v = embedder.embed([text, fact.true])
                verdict = _verdict(text, fact.true, float(v[0] @ v[1]))
                if verdict:
                    lies[kind][verdict] += 1
    n = max(1, lies["facts"])
    for kind in ("plain", "paraphrased"):
        lies[kind]["caught"] = round((lies[kind]["first"] + lies[kind]["paraphrase"]) / n, 4)
    honest.pop("examples")
    print(json.dumps({"honest": honest, "lies": lies, "texts": args.texts, "seeds": args.seeds}, indent=1))


if __name__ == "__main__":
    main()
