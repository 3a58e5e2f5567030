"""Training data for rerankers from any BEIR folder: query splits without leakage, positives, mined hard negatives.

Splits are by query, so no question is both trained on and evaluated on; the rule lives in
:mod:`hopmem.memory.datasets.splits`, shared with ``hopmem eval rerank`` so evaluation splits exactly as training did.

Positives come from the qrels with their grades kept (label = grade / the data set's top grade). Hard negatives are
mined with the memory's own hybrid search over the indexed corpus (bm25 + dense, fused): passages that rank near the
top for the query without being judged relevant, drawn at random (seeded) from the top ``mine_depth`` documents.
Judged passages with grade 0 are negatives too. Unjudged passages are not known to be irrelevant (Cranfield's
judgements are incomplete), which is why negatives are sampled from the top ranks instead of always taking the top.
For data in HotpotQA's distractor setting, ``own_distractors`` adds each question's own distractor paragraphs
(:mod:`hopmem.finetune.distractors`) as further negatives.

Several folders train together (``datasets``); with more than one, every pair's and held-out query's id is prefixed
with its data set's name (``cranfield:12``), so queries of different folders never merge into one group. The query
splits recorded in ``data.json`` keep the folders' own ids (evaluations read them per folder).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.agents.rerank import passage_text
from hopmem.finetune.distractors import own_distractors
from hopmem.memory.datasets.beir import iter_corpus
from hopmem.memory.datasets.splits import query_splits
from hopmem.memory.datasets.store_loader import BEIR_TENANT, open_indexed_corpus
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import HybridSearcher

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RerankPair:
    """One training example: a query, a passage and its label in [0, 1]."""

    query_id: str
    query: str
    doc_id: str
    text: str
    label: float
    kind: str  # "positive", "judged-negative", "hard-negative", "own-distractor", "title-positive/-negative"


def corpus_texts(root: Path | str) -> dict[str, str]:
    """Document id -> the text a reranker reads (:func:`hopmem.agents.rerank.passage_text`)."""
    return {d.id: passage_text(d.title, d.text) for d in iter_corpus(Path(root) / "corpus.jsonl")}


def ranked_candidates(
    root: Path | str,
    queries: dict[str, str],
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    depth: int = 30,
    progress: bool = True,
    desc: str = "hybrid candidates",
) -> dict[str, list[str]]:
    """Per query, the ids of the top ``depth`` documents of the memory's hybrid search, best first."""
    from tqdm.auto import tqdm

    store = open_indexed_corpus(
        Path(root), embedder, cache_dir=cache_dir, chunk_size=chunk_size, chunk_overlap=chunk_overlap, progress=progress
    )
    try:
        searcher = HybridSearcher(store, embedder, depth=max(depth * 2, 30))
        ranked: dict[str, list[str]] = {}
        for qid, text in tqdm(queries.items(), desc=desc, unit="q", disable=not progress, leave=False):
            hits = searcher.search(BEIR_TENANT, text, k=depth * 3, mode="hybrid")
            ranked[qid] = list(dict.fromkeys(h.record.external_id for h in hits if h.record.external_id))[:depth]
    finally:
        store.close()
    return ranked


def mine_negatives(
    root: Path | str,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    depth: int = 30,
    progress: bool = True,
) -> dict[str, list[str]]:
    """Per query, the documents hybrid search ranks in its top ``depth`` that are not judged relevant, in rank order."""
    ranked = ranked_candidates(
        root,
        queries,
        embedder,
        cache_dir=cache_dir,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        depth=depth,
        progress=progress,
        desc="mining negatives",
    )
    return _unjudged(ranked, qrels)


def _unjudged(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, list[str]]:
    """Each query's ranked documents that are not judged relevant (its negative candidates), in rank order."""
    return {q: [d for d in docs if qrels.get(q, {}).get(d, 0) <= 0] for q, docs in ranked.items()}


def strip_title(title: str | None, body: str) -> str:
    """``body`` without a leading copy of ``title`` (Cranfield's abstracts begin with their title)."""
    title = (title or "").strip()
    body = body.strip()
    if title and body.lower().startswith(title.lower()):
        return body[len(title) :].strip()
    return body


def title_pairs(
    root: Path | str,
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    min_words: int = 4,
    max_queries: int = 1500,
    n_negatives: int = 3,
    skip_top: int = 2,
    depth: int = 30,
    seed: int = 0,
    progress: bool = True,
) -> list[RerankPair]:
    """Pseudo-queries from the corpus itself: a document's title is the query, its body the positive.

    Descriptive titles (``min_words`` words or more; Cranfield's read like queries) stand in for the questions a
    small training split lacks, as in inverse-cloze and GPL-style domain adaptation; no query or judgement of any
    split is read. Negatives are drawn from the title's hybrid-search top ``depth`` after its first ``skip_top``
    (which may well be relevant too). Titles are stripped from every passage of these pairs, so a positive cannot be
    told by its opening words.
    """
    rng = random.Random(seed)
    docs = [d for d in iter_corpus(Path(root) / "corpus.jsonl") if len((d.title or "").split()) >= min_words]
    docs = [d for d in docs if len(strip_title(d.title, d.text).split()) >= 20]
    if len(docs) > max_queries:
        docs = rng.sample(docs, max_queries)
    if not docs:
        return []
    bodies = {d.id: strip_title(d.title, d.text) for d in iter_corpus(Path(root) / "corpus.jsonl")}
    queries = {d.id: (d.title or "").strip().rstrip(" .") for d in docs}
    ranked = ranked_candidates(
        root,
        queries,
        embedder,
        cache_dir=cache_dir,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        depth=depth,
        progress=progress,
        desc="title queries",
    )
    pairs: list[RerankPair] = []
    for doc_id, title in queries.items():
        pairs.append(RerankPair(f"title:{doc_id}", title, doc_id, bodies[doc_id], 1.0, "title-positive"))
        pool = [d for d in ranked.get(doc_id, []) if d != doc_id][skip_top:]
        for neg in rng.sample(pool, min(n_negatives, len(pool))):
            pairs.append(RerankPair(f"title:{doc_id}", title, neg, bodies[neg], 0.0, "title-negative"))
    return pairs


def build_pairs(
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    negatives: dict[str, list[str]],
    texts: dict[str, str],
    *,
    max_positives: int,
    n_negatives: int,
    seed: int,
    max_grade: int | None = None,
    own: dict[str, list[str]] | None = None,
) -> list[RerankPair]:
    """Labelled pairs: per query the ``max_positives`` best-graded positives and ``n_negatives`` negatives.

    Labels are ``grade / max_grade`` (graded judgements kept), 0 for negatives. Judged grade-0 passages are used as
    negatives before mined ones; mined negatives are drawn at random (seeded) from the query's list. ``own`` adds, per
    query, its own distractor paragraphs (:func:`hopmem.finetune.distractors.own_distractors`) that are not judged
    and not already chosen, as ``own-distractor`` negatives on top of the ``n_negatives``.
    """
    rng = random.Random(seed)
    top = max_grade or max((g for judged in qrels.values() for g in judged.values()), default=1)
    top = max(top, 1)
    pairs: list[RerankPair] = []
    for qid, text in queries.items():
        judged = qrels.get(qid, {})
        positives = [d for d, g in judged.items() if g > 0 and d in texts]
        rng.shuffle(positives)
        positives.sort(key=lambda d: -judged[d])  # stable: equal grades stay in their shuffled order
        for doc in positives[:max_positives]:
            pairs.append(RerankPair(qid, text, doc, texts[doc], min(judged[doc] / top, 1.0), "positive"))
        explicit = [d for d, g in judged.items() if g <= 0 and d in texts]
        mined = [d for d in negatives.get(qid, []) if d in texts and d not in judged]
        rng.shuffle(explicit)
        chosen = explicit[:n_negatives]
        chosen += rng.sample(mined, min(len(mined), n_negatives - len(chosen)))
        for doc in chosen:
            kind = "judged-negative" if doc in judged else "hard-negative"
            pairs.append(RerankPair(qid, text, doc, texts[doc], 0.0, kind))
        for doc in (own or {}).get(qid, []):
            if doc in texts and doc not in judged and doc not in chosen:
                pairs.append(RerankPair(qid, text, doc, texts[doc], 0.0, "own-distractor"))
    return pairs


@dataclass(frozen=True)
class PairSampling:
    """How training and dev pairs are drawn from the data sets (the fields every reranker recipe's config has)."""

    datasets: tuple[str, ...]
    max_positives: int
    n_negatives: int
    mine_depth: int
    max_train_pairs: int
    dev_queries: int
    seed: int
    holdout_fraction: float = 0.0
    title_queries: int = 0
    title_min_words: int = 4
    title_negatives: int = 3
    own_distractors: int = 0
    distill_groups: int = 0

    @classmethod
    def of(cls, config: Any) -> PairSampling:
        """The sampling fields of a recipe's config (fields it lacks keep their defaults: off)."""
        fields = {f: getattr(config, f) for f in cls.__dataclass_fields__ if hasattr(config, f)}
        return cls(**fields)


@dataclass(frozen=True)
class HoldoutQuery:
    """A training-split query kept out of training: its hybrid candidates, best first, and its judgements.

    Recipes choose settings on these (the cross-encoder its blend weight) without touching the dev split.
    """

    query_id: str
    query: str
    doc_ids: list[str]
    texts: list[str]
    qrels: dict[str, int]


@dataclass
class TrainingData:
    """Everything one run trains and validates on, with the record of which queries went where."""

    train: list[RerankPair]
    dev: list[RerankPair]
    splits: list[dict[str, Any]]
    counts: dict[str, dict[str, int]]
    holdout: list[HoldoutQuery] = field(default_factory=list)
    pools: list[HoldoutQuery] = field(default_factory=list)
    """With ``distill_groups``: every training query's hybrid candidates (judged or not), for distillation."""


def build_training_data(
    config: PairSampling,
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    progress: bool = True,
) -> TrainingData:
    """Training pairs from every data set's training split and dev pairs from its dev split (no query in both).

    With ``holdout_fraction`` a seeded share of each training split is kept out of the pairs and returned as
    :class:`HoldoutQuery` lists; with ``title_queries`` each corpus adds its title pseudo-queries
    (:func:`title_pairs`), which the ``max_train_pairs`` cap does not count; with ``own_distractors`` each query of a
    distractor-setting folder adds that many of its own distractor paragraphs as negatives. With several data sets,
    pair and held-out query ids are prefixed with the data set's name (the module docstring says why).
    """
    rng = random.Random(config.seed)
    train: list[RerankPair] = []
    dev: list[RerankPair] = []
    holdout: list[HoldoutQuery] = []
    pools: list[HoldoutQuery] = []
    titles: list[RerankPair] = []
    records: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    for folder in config.datasets:
        root = Path(folder)
        splits = query_splits(root)
        texts = corpus_texts(root)
        dev_ids = list(splits.dev)[: config.dev_queries]
        train_ids = list(splits.train)
        n_holdout = round(len(train_ids) * config.holdout_fraction)
        held = sorted(random.Random(config.seed + 2).sample(train_ids, n_holdout)) if n_holdout else []
        fit = {q: splits.train[q] for q in train_ids if q not in set(held)}
        wanted = {q: splits.texts[q] for q in [*train_ids, *dev_ids]}
        judged = {**splits.train, **{q: splits.dev[q] for q in dev_ids}}
        ranked = ranked_candidates(
            root,
            wanted,
            embedder,
            cache_dir=cache_dir,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            depth=config.mine_depth,
            progress=progress,
            desc="mining negatives",
        )
        negatives = _unjudged(ranked, judged)
        own = own_distractors(root, set(wanted), per_query=config.own_distractors) if config.own_distractors > 0 else {}
        top = max((g for j in (*splits.train.values(), *splits.dev.values()) for g in j.values()), default=1)
        common: dict[str, Any] = {
            "max_positives": config.max_positives,
            "n_negatives": config.n_negatives,
            "max_grade": top,
            "own": own,
        }
        tr = build_pairs({q: splits.texts[q] for q in fit}, fit, negatives, texts, seed=config.seed, **common)
        dv = build_pairs(
            {q: splits.texts[q] for q in dev_ids}, splits.dev, negatives, texts, seed=config.seed + 1, **common
        )
        prefix = f"{splits.dataset}:" if len(config.datasets) > 1 else ""
        if prefix:
            tr = [replace(p, query_id=prefix + p.query_id) for p in tr]
            dv = [replace(p, query_id=prefix + p.query_id) for p in dv]
        if config.distill_groups > 0:
            for q in fit:
                docs = [d for d in ranked.get(q, []) if d in texts]
                pools.append(HoldoutQuery(prefix + q, splits.texts[q], docs, [texts[d] for d in docs], dict(fit[q])))
        for q in held:
            docs = [d for d in ranked.get(q, []) if d in texts]
            holdout.append(
                HoldoutQuery(prefix + q, splits.texts[q], docs, [texts[d] for d in docs], dict(splits.train[q]))
            )
        tp: list[RerankPair] = []
        if config.title_queries > 0:
            tp = title_pairs(
                root,
                embedder,
                cache_dir=cache_dir,
                chunk_size=chunk_size,
                chunk_overlap=chunk_overlap,
                min_words=config.title_min_words,
                max_queries=config.title_queries,
                n_negatives=config.title_negatives,
                depth=config.mine_depth,
                seed=config.seed,
                progress=progress,
            )
        train += tr
        dev += dv
        titles += [replace(p, query_id=prefix + p.query_id) for p in tp] if prefix else tp
        records.append(
            {
                **splits.to_dict(),
                "train_ids": list(fit),
                "holdout_ids": held,
                "dev_ids_scored_in_training": dev_ids,
            }
        )
        counts[splits.dataset] = {
            "train_queries": len(fit),
            "holdout_queries": len(held),
            "dev_queries": len(splits.dev),
            "train_pairs": len(tr),
            "train_positives": sum(p.kind == "positive" for p in tr),
            "train_hard_negatives": sum(p.kind == "hard-negative" for p in tr),
            "train_own_distractors": sum(p.kind == "own-distractor" for p in tr),
            "title_queries": sum(p.kind == "title-positive" for p in tp),
            "title_pairs": len(tp),
            "dev_pairs_scored": len(dv),
        }
    if len(train) > config.max_train_pairs:
        by_query: dict[tuple[str, str], list[RerankPair]] = {}
        for pair in train:
            by_query.setdefault((pair.query_id, pair.query), []).append(pair)
        keys = list(by_query)
        rng.shuffle(keys)
        kept: list[RerankPair] = []
        for key in keys:
            if len(kept) + len(by_query[key]) > config.max_train_pairs:
                continue
            kept += by_query[key]
        train = kept
    train += titles
    if not train:
        raise InputError("No training pair could be built: the training queries have no judged passage in the corpus.")
    return TrainingData(train, dev, records, counts, holdout, pools)


def write_model_files(
    out: Path, report: dict[str, Any], splits: list[dict[str, Any]], card: str, record: dict[str, Any] | None = None
) -> None:
    """What every reranker recipe saves beside its weights: ``metrics.json`` (the report), ``data.json`` (the query
    splits, which evaluations read to skip training queries), ``README.md`` (the card) and, for LLM adapters,
    ``hopmem_reranker.json`` (base model and prompt budget, which inference reads)."""
    from hopmem.agents.rerank.model_paths import RECORD_FILE

    out.mkdir(parents=True, exist_ok=True)
    if record is not None:
        (out / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        portable_adapter_config(out, str(record.get("base_model") or ""))
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "data.json").write_text(json.dumps({"datasets": splits}, indent=1) + "\n", encoding="utf-8")
    (out / "README.md").write_text(card, encoding="utf-8")


def portable_adapter_config(folder: Path, base_model: str) -> None:
    """Record the base model in ``adapter_config.json`` as it was named (``SmolLM2-135M-Instruct``), not as the
    machine path peft writes; hopmem loads the base from ``hopmem_reranker.json``, so only the record changes."""
    path = folder / "adapter_config.json"
    if not base_model or not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_model
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def data_card_lines(report: dict[str, Any]) -> list[str]:
    """The model card's lines on each data set: its split rule and the training pairs drawn from it."""
    lines = []
    for split in report["splits"]:
        counts = report["data"][split["dataset"]]
        lines.append(
            f"- `{split['dataset']}` (BEIR layout): {split['rule']}; {counts['train_pairs']} training pairs "
            f"({counts['train_positives']} qrels positives, {counts['train_hard_negatives']} hard negatives mined "
            "with hybrid search"
            + (
                f", {counts['train_own_distractors']} of the questions' own distractor paragraphs"
                if counts.get("train_own_distractors")
                else ""
            )
            + ")"
        )
    return lines
