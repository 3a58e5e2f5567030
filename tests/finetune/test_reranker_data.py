"""Reranker training data: query splits without leakage, graded positives, negatives mined by hybrid search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopmem.finetune.reranker_data import build_pairs, mine_negatives
from hopmem.memory.datasets.splits import load_split, query_splits
from hopmem.memory.datasets.store_loader import BEIR_TENANT, open_indexed_corpus
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import HybridSearcher


def make_tiny_hotpot(src: Path, root: Path, *, n_train: int = 6, n_dev: int = 3, spread: int = 2) -> Path:
    """A tiny BEIR folder cut from HotpotQA: ``n_train`` train and ``n_dev`` dev questions, their supporting
    paragraphs and the paragraphs stored within ``spread`` ids of them (mostly the same questions' distractors)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    queries = [json.loads(ln) for ln in (src / "queries.jsonl").read_text().splitlines() if ln.strip()]
    chosen = [q for q in queries if q["metadata"]["split"] == "train"][:n_train]
    chosen += [q for q in queries if q["metadata"]["split"] == "dev"][:n_dev]
    gold = {d for q in chosen for d in q["metadata"]["supporting"]}
    near = {int(d[2:]) + off for d in gold for off in range(-spread, spread + 1)}
    corpus = [json.loads(ln) for ln in (src / "corpus.jsonl").read_text().splitlines() if ln.strip()]
    keep = [d for d in corpus if d["_id"] in gold or (d["_id"][2:].isdigit() and int(d["_id"][2:]) in near)]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in keep))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in chosen))
    ids = {q["_id"] for q in chosen}
    for split in ("dev", "train"):
        lines = (src / "qrels" / f"{split}.tsv").read_text().splitlines()
        rows = [ln for ln in lines[1:] if ln.split("\t")[0] in ids]
        (root / "qrels" / f"{split}.tsv").write_text("\n".join([lines[0], *rows]) + "\n")
    return root


def _write_beir(root: Path, queries: list[str], splits: dict[str, list[tuple[str, str, int]]]) -> Path:
    (root / "qrels").mkdir(parents=True)
    lines = [json.dumps({"_id": q, "text": f"question {q}"}) + "\n" for q in queries]
    (root / "queries.jsonl").write_text("".join(lines))
    (root / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "", "text": "a passage"}) + "\n")
    for name, rows in splits.items():
        body = "".join(f"{q}\t{d}\t{g}\n" for q, d, g in rows)
        (root / "qrels" / f"{name}.tsv").write_text("query-id\tcorpus-id\tscore\n" + body)
    return root


def test_cranfield_is_split_by_query_id_1_to_100_train_and_101_to_150_dev(shared_data: Path) -> None:
    splits = query_splits(shared_data / "cranfield")
    assert list(splits.train) == [str(i) for i in range(1, 101)]
    assert list(splits.dev) == [str(i) for i in range(101, 151)]
    assert not set(splits.train) & set(splits.dev)
    record = splits.to_dict()
    assert record["train_ids"] == list(splits.train) and record["dev_ids"] == list(splits.dev)
    assert "first 100 of 150" in splits.rule
    # The derived dev split is exactly what evaluation reads as --split dev.
    queries, qrels, how = load_split(shared_data / "cranfield", "dev")
    assert [q for q, _ in queries] == list(splits.dev) and set(qrels) == set(splits.dev)
    assert how.startswith("derived")
    assert max(g for j in splits.train.values() for g in j.values()) == 4  # graded judgements are kept


def test_a_train_split_is_used_and_a_query_judged_in_both_is_not_trained_on(tmp_path: Path) -> None:
    root = _write_beir(
        tmp_path / "data",
        ["a", "b", "c", "d"],
        {"train": [("a", "d1", 1), ("b", "d1", 1), ("c", "d1", 1)], "dev": [("c", "d1", 2), ("d", "d1", 1)]},
    )
    splits = query_splits(root)
    assert set(splits.train) == {"a", "b"} and set(splits.dev) == {"c", "d"}
    assert splits.source == {"train": "train", "dev": "dev"}
    assert "kept out of training" in splits.rule


def test_a_folder_with_only_a_train_split_trains_on_all_of_it(tmp_path: Path) -> None:
    # Training data such as hotpotqa-extra: every judged query trains, none is held for dev, nothing is an error.
    root = _write_beir(tmp_path / "data", ["a", "b", "c"], {"train": [("a", "d1", 1), ("b", "d1", 1), ("c", "d1", 1)]})
    splits = query_splits(root)
    assert set(splits.train) == {"a", "b", "c"} and splits.dev == {}
    assert splits.rule == "train: qrels split 'train'; dev: none"
    queries, qrels, _ = load_split(root, "dev")
    assert queries == [] and qrels == {}
    empty = _write_beir(tmp_path / "empty", ["a"], {"train": []})
    with pytest.raises(InputError, match="no judged query"):
        query_splits(empty)


def test_one_split_with_text_ids_is_divided_in_file_order(tmp_path: Path) -> None:
    ids = ["q9", "q1", "q5", "q3", "q7", "q2"]
    root = _write_beir(tmp_path / "data", ids, {"test": [(q, "d1", 1) for q in reversed(ids)]})
    splits = query_splits(root)
    assert list(splits.train) == ids[:4] and list(splits.dev) == ids[4:]


def test_split_errors_are_clear(tmp_path: Path, shared_data: Path) -> None:
    root = _write_beir(tmp_path / "one", ["1"], {"test": [("1", "d1", 1)]})
    with pytest.raises(InputError, match="no judged query"):
        query_splits(root)
    with pytest.raises(InputError, match=r"no qrels/test\.tsv \(splits here: dev, train\)"):
        load_split(shared_data / "hotpotqa", "test")


def test_pairs_keep_grades_and_never_use_a_judged_positive_as_negative() -> None:
    qrels = {"q": {"p4": 4, "p2": 2, "p1": 1, "z": 0}}
    texts = {d: f"text {d}" for d in ("p4", "p2", "p1", "z", "n1", "n2", "n3")}
    negatives = {"q": ["p1", "n1", "n2", "n3"]}  # p1 is judged relevant: never a negative
    pairs = build_pairs({"q": "query"}, qrels, negatives, texts, max_positives=2, n_negatives=3, seed=0)
    positives = [p for p in pairs if p.kind == "positive"]
    assert [(p.doc_id, p.label) for p in positives] == [("p4", 1.0), ("p2", 0.5)]  # best grades first, grade / 4
    negs = [p for p in pairs if p.label == 0.0]
    assert len(negs) == 3 and negs[0].doc_id == "z" and negs[0].kind == "judged-negative"
    assert {p.doc_id for p in negs[1:]} <= {"n1", "n2", "n3"}
    assert all(p.kind == "hard-negative" for p in negs[1:])
    again = build_pairs({"q": "query"}, qrels, negatives, texts, max_positives=2, n_negatives=3, seed=0)
    assert again == pairs  # seeded


def test_negatives_are_mined_with_hybrid_search(shared_data: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    root = make_tiny_hotpot(shared_data / "hotpotqa", tmp_path / "tiny")
    splits = query_splits(root)
    queries = {q: splits.texts[q] for q in splits.train}
    cache = tmp_path / "cache"
    mined = mine_negatives(root, queries, splits.train, embedder, cache_dir=cache, chunk_size=256, chunk_overlap=32)
    assert set(mined) == set(queries)
    store = open_indexed_corpus(root, embedder, cache_dir=cache, chunk_size=256, chunk_overlap=32, progress=False)
    try:
        searcher = HybridSearcher(store, embedder, depth=60)
        for qid, text in queries.items():
            relevant = {d for d, g in splits.train[qid].items() if g > 0}
            assert mined[qid] and not set(mined[qid]) & relevant
            hits = searcher.search(BEIR_TENANT, text, k=90)
            order = [d for d in dict.fromkeys(h.record.external_id for h in hits) if d not in relevant]
            assert mined[qid] == order[: len(mined[qid])]  # the hybrid ranking itself, not a random draw
    finally:
        store.close()


def test_title_pseudo_queries_pair_a_title_with_its_own_body(shared_data: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from hopmem.finetune.reranker_data import strip_title, title_pairs

    root = make_tiny_hotpot(shared_data / "hotpotqa", tmp_path / "tiny")
    common = {"cache_dir": tmp_path / "cache", "chunk_size": 256, "chunk_overlap": 32, "progress": False}
    pairs = title_pairs(root, embedder, min_words=2, n_negatives=2, skip_top=1, **common)
    corpus = {d["_id"]: d for d in map(json.loads, (root / "corpus.jsonl").read_text().splitlines())}
    positives = [p for p in pairs if p.kind == "title-positive"]
    assert positives and all(p.query_id.startswith("title:") for p in pairs)  # no query of any split is read
    for p in positives:
        doc = corpus[p.doc_id]
        assert len(doc["title"].split()) >= 2 and p.text == strip_title(doc["title"], doc["text"])
        negs = [n for n in pairs if n.query_id == p.query_id and n.kind == "title-negative"]
        assert len(negs) <= 2 and all(n.doc_id != p.doc_id and n.label == 0.0 for n in negs)
    assert title_pairs(root, embedder, min_words=2, n_negatives=2, skip_top=1, **common) == pairs  # seeded
    assert title_pairs(root, embedder, min_words=50, **common) == []
    assert strip_title("Wing tests", "wing tests . the wing was") == ". the wing was"


def test_holdout_queries_stay_out_of_training(shared_data: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from hopmem.finetune.reranker_data import PairSampling, build_training_data

    root = make_tiny_hotpot(shared_data / "hotpotqa", tmp_path / "tiny")
    sampling = PairSampling((str(root),), 2, 3, 30, 1000, 2, 0, holdout_fraction=0.34)
    common = {"cache_dir": tmp_path / "cache", "chunk_size": 256, "chunk_overlap": 32, "progress": False}
    data = build_training_data(sampling, embedder, **common)
    held = {q.query_id for q in data.holdout}
    assert len(held) == 2  # a third of the six training questions
    assert not held & {p.query_id for p in data.train} and not held & {p.query_id for p in data.dev}
    record = data.splits[0]
    assert set(record["holdout_ids"]) == held and not held & set(record["train_ids"])
    for q in data.holdout:
        assert q.doc_ids and len(q.doc_ids) == len(q.texts) and q.qrels


def _write_distractor_folder(root: Path) -> Path:
    """Two questions in HotpotQA's distractor layout: each one's gold and distractor paragraphs stored together."""
    (root / "qrels").mkdir(parents=True)
    corpus = [
        ("a0", "river delta silt"),
        ("a1", "the Nile river delta"),  # gold of q1
        ("a2", "Nile river floods"),  # q1's distractor: shares 'nile', 'river'
        ("a3", "Egypt Nile river dams"),  # gold of q1
        ("b0", "Mount Everest climbers"),  # gold of q2
        ("b1", "Everest base camp"),  # q2's distractor
        ("b2", "Everest summit weather climbers"),  # gold of q2
        ("b3", "K2 climbers Everest"),
    ]
    lines = [json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in corpus]
    (root / "corpus.jsonl").write_text("".join(lines))
    queries = [
        {"_id": "q1", "text": "Which dams hold the Nile river?", "metadata": {"supporting": ["a1", "a3"]}},
        {"_id": "q2", "text": "Who climbed Everest first?", "metadata": {"supporting": ["b0", "b2"]}},
    ]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    rows = "".join(f"{q['_id']}\t{d}\t1\n" for q in queries for d in q["metadata"]["supporting"])
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return root


def test_own_distractors_come_from_the_questions_own_paragraphs(tmp_path: Path) -> None:
    from hopmem.finetune.distractors import layout_check, own_distractors

    root = _write_distractor_folder(tmp_path / "d")
    own = own_distractors(root, per_query=2, window=2)
    assert own["q1"][0] == "a2"  # the nearby paragraph sharing most of the question's words
    assert own["q2"][0] in {"b1", "b3"} and "b0" not in own["q2"] and "b2" not in own["q2"]  # never a gold paragraph
    assert not {"b0", "b2", "a1", "a3"} & {d for ds in own.values() for d in ds}
    assert own_distractors(root, {"q2"}, per_query=1, window=2).keys() == {"q2"}
    assert layout_check(root, per_query=1)["queries"] == 2
    # Gold paragraphs far apart: not a distractor layout, so nothing is guessed.
    assert own_distractors(root, per_query=2, window=0) == {}
    cranfield_like = _write_beir(tmp_path / "c", ["x"], {"test": [("x", "d1", 1)]})
    assert own_distractors(cranfield_like) == {}


def test_own_distractors_are_extra_negatives_never_judged_ones() -> None:
    qrels = {"q": {"p": 1, "z": 0}}
    texts = {d: d for d in ("p", "z", "n1", "o1", "o2")}
    own = {"q": ["p", "o1", "n1", "o2"]}
    pairs = build_pairs({"q": "query"}, qrels, {"q": ["n1"]}, texts, max_positives=1, n_negatives=2, seed=0, own=own)
    kinds = [(p.doc_id, p.kind) for p in pairs]
    assert ("o1", "own-distractor") in kinds and ("o2", "own-distractor") in kinds
    assert ("p", "own-distractor") not in kinds  # a judged positive is never a negative
    assert [d for d, _ in kinds].count("n1") == 1  # not twice


def test_several_folders_train_together_with_namespaced_query_ids(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from hopmem.finetune.reranker_data import PairSampling, build_training_data

    # Two folders whose query ids collide ("1"): without a prefix their pairs would merge into one group.
    first = _write_distractor_folder(tmp_path / "alpha")
    second = _write_distractor_folder(tmp_path / "beta")
    common = {"cache_dir": tmp_path / "cache", "chunk_size": 256, "chunk_overlap": 32, "progress": False}
    sampling = PairSampling((str(first), str(second)), 2, 1, 30, 1000, 0, 0, own_distractors=1)
    data = build_training_data(sampling, embedder, **common)
    ids = {p.query_id for p in data.train}
    assert ids == {"alpha:q1", "alpha:q2", "beta:q1", "beta:q2"}
    assert [s["dataset"] for s in data.splits] == ["alpha", "beta"]
    assert data.splits[0]["train_ids"] == ["q1", "q2"]  # the record keeps each folder's own ids
    assert data.counts["alpha"]["train_own_distractors"] >= 1
    assert any(p.kind == "own-distractor" for p in data.train)
    alone = build_training_data(PairSampling((str(first),), 2, 1, 30, 1000, 0, 0), embedder, **common)
    assert {p.query_id for p in alone.train} == {"q1", "q2"}  # one folder: ids as they are
    assert not any(p.kind == "own-distractor" for p in alone.train)  # off unless asked


class _FixedScores:
    """A reranker whose scores are given per passage text (a stand-in for a model: dev_metrics only reads scores)."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def score(self, query: str, docs: list[str]) -> list[float]:
        return [self.scores[d] for d in docs]


def test_dev_metrics_report_ndcg_at_10_within_each_querys_pairs() -> None:
    from hopmem.finetune.dev_figures import dev_metrics
    from hopmem.finetune.reranker_data import RerankPair

    pairs = [
        RerankPair("q1", "query one", "best", "best", 1.0, "positive"),
        RerankPair("q1", "query one", "fair", "fair", 0.5, "positive"),
        RerankPair("q1", "query one", "junk", "junk", 0.0, "hard-negative"),
        RerankPair("q2", "query two", "gold", "gold", 1.0, "positive"),
        RerankPair("q2", "query two", "noise", "noise", 0.0, "hard-negative"),
    ]
    perfect = dev_metrics(_FixedScores({"best": 3, "fair": 2, "junk": 1, "gold": 2, "noise": 1}), pairs)
    assert perfect["ndcg@10"] == 1.0
    reversed_ = dev_metrics(_FixedScores({"best": 1, "fair": 2, "junk": 3, "gold": 1, "noise": 2}), pairs)
    # q1: gains [0, 0.5, 1] against the ideal [1, 0.5]; q2: [0, 1] against [1].
    q1 = (0.5 / 1.584962500721156 + 1.0 / 2.0) / (1.0 + 0.5 / 1.584962500721156)
    q2 = 1.0 / 1.584962500721156
    assert reversed_["ndcg@10"] == round((q1 + q2) / 2, 4)
    assert dev_metrics(_FixedScores({}), [])["pairs"] == 0


def test_dev_figures_not_measured_are_null_in_json_and_na_in_tables() -> None:
    from hopmem.finetune.dev_figures import dev_heading, dev_metrics, shown
    from hopmem.finetune.reranker_data import RerankPair

    empty = dev_metrics(_FixedScores({}), [])  # a run with --dev-queries 0
    assert json.loads(json.dumps(empty, allow_nan=False))["mrr"] is None  # strict JSON: no NaN in metrics.json
    assert "not measured" in dev_heading(empty) and "--dev-queries 0" in dev_heading(empty)
    assert [shown(empty[k], ".4f") for k in ("loss", "pairwise_accuracy", "mrr")] == ["n/a"] * 3
    assert shown(float("nan")) == "n/a" and shown(0.12345, ".4f") == "0.1235"
    only_positives = [RerankPair("q1", "query one", "best", "best", 1.0, "positive")]
    row = dev_metrics(_FixedScores({"best": 1}), only_positives)
    assert row["pairwise_accuracy"] is None and row["mrr"] == 1.0 and row["pairs"] == 1
    assert dev_heading(row).startswith("## Dev pairs (dev-split queries, 1 pairs")


def test_chance_metrics_are_the_mean_figures_of_random_orders() -> None:
    from hopmem.finetune.dev_figures import chance_metrics
    from hopmem.finetune.reranker_data import RerankPair

    # One positive among three passages: random orders put it first, second or third alike, so the mean MRR is
    # (1 + 1/2 + 1/3) / 3 and the mean nDCG@10 is (1 + 1/log2(3) + 1/2) / 3; pairwise accuracy's mean is 0.5.
    pairs = [
        RerankPair("q1", "query one", "gold", "gold", 1.0, "positive"),
        RerankPair("q1", "query one", "a", "a", 0.0, "hard-negative"),
        RerankPair("q1", "query one", "b", "b", 0.0, "hard-negative"),
    ]
    chance = chance_metrics(pairs, draws=6000, seed=3)
    assert chance["pairwise_accuracy"] == pytest.approx(0.5, abs=0.02)
    assert chance["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3, abs=0.02)
    assert chance["ndcg@10"] == pytest.approx((1 + 1 / 1.584962500721156 + 0.5) / 3, abs=0.02)
    assert chance_metrics(pairs, draws=6000, seed=3) == chance  # seeded
    assert chance["pairs"] == 3 and chance["draws"] == 6000
    assert chance_metrics([], draws=10)["mrr"] is None
