"""Hop chains and question splits for TreeHop training: no question in two sets, the held-out rule as documented."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hopmem.finetune.treehop_data import build_chains, mine_hard_negatives, split_questions
from hopmem.memory.datasets.store_loader import CorpusVectors
from hopmem.memory.errors import InputError


def test_splits_are_disjoint_and_hold_out_the_first_eval_questions(small_hotpot: Path) -> None:
    splits = split_questions(small_hotpot, holdout=6, val_fraction=0.2, seed=1)
    dev_order = [
        json.loads(line)["_id"]
        for line in (small_hotpot / "queries.jsonl").read_text().splitlines()
        if json.loads(line)["metadata"]["split"] == "dev"
    ]
    assert [q.id for q in splits.held_out] == dev_order[:6]
    sets = [{q.id for q in part} for part in (splits.train, splits.validation, splits.held_out)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert sum(len(s) for s in sets) == 24  # 16 dev + 8 train, each exactly once
    assert {q.split for q in splits.train} == {"dev", "train"}
    assert splits.rule["counts"] == {"train": len(sets[0]), "validation": len(sets[1]), "held_out": 6}
    # Same seed, same split; another seed, another validation draw.
    again = split_questions(small_hotpot, holdout=6, val_fraction=0.2, seed=1)
    assert [q.id for q in again.validation] == [q.id for q in splits.validation]
    other = split_questions(small_hotpot, holdout=6, val_fraction=0.2, seed=2)
    assert {q.id for q in other.validation} != sets[1]


def test_split_errors_are_clear(small_hotpot: Path) -> None:
    with pytest.raises(InputError, match=r"no qrels/test\.tsv"):
        split_questions(small_hotpot, eval_split="test")
    with pytest.raises(InputError, match="left for training"):
        split_questions(small_hotpot, train_splits=("dev",), holdout=15)


def test_chains_pair_every_supporting_passage_both_ways(small_hotpot: Path) -> None:
    splits = split_questions(small_hotpot, holdout=0, val_fraction=0.1)
    docs = sorted({d for q in splits.train for d in q.supporting})
    vectors = CorpusVectors(np.arange(1, len(docs) + 1), docs, np.eye(len(docs), dtype=np.float32))
    chains = build_chains(splits.train, vectors)
    rows = vectors.first_chunk_rows()
    assert len(chains) == sum(len(q.supporting) * (len(q.supporting) - 1) for q in splits.train)
    for qi, a, b in zip(chains.query_index, chains.first, chains.target, strict=True):
        gold = {rows[d] for d in splits.train[qi].supporting}
        assert a != b and {int(a), int(b)} <= gold


def test_hard_negatives_are_near_but_never_gold() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(50, 8)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    probes = matrix[[0, 1]]
    negatives = mine_hard_negatives(probes, matrix, [{0, 7}, set()], 5)
    assert negatives.shape == (2, 5)
    assert 0 not in negatives[0] and 7 not in negatives[0]
    assert 1 in negatives[1]  # nothing excluded: the probe itself is its nearest row
    nearest = [int(j) for j in np.argsort(-(matrix @ probes[0])) if j not in (0, 7)]
    assert set(negatives[0].tolist()) == set(nearest[:5])


def _folder(
    root: Path, name: str, questions: list[dict], corpus: list[str], qrels: dict[str, list[tuple[str, int]]]
) -> Path:
    """A BEIR folder with the given questions (``_id``, ``text``, ``metadata``), documents and judgements."""
    folder = root / name
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": d, "text": f"text {d}"}) + "\n" for d in corpus)
    )
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    for split, rows in qrels.items():
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, d, g in rows]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def _blocked(root: Path, name: str, n: int, prefix: str, split: str) -> Path:
    """``n`` questions laid out like HotpotQA's distractor setting: 10 paragraphs each, 2 supporting, in order."""
    corpus = [f"{prefix}{i}" for i in range(10 * n)]
    questions, rows = [], []
    for k in range(n):
        gold = [f"{prefix}{10 * k + 2}", f"{prefix}{10 * k + 7}"]
        questions.append({"_id": f"{name}-q{k}", "text": f"question {k}", "metadata": {"supporting": gold}})
        rows += [(f"{name}-q{k}", g, 1) for g in gold]
    return _folder(root, name, questions, corpus, {split: rows})


def test_context_blocks_are_inferred_from_the_corpus_order_and_refused_when_the_layout_does_not_fit() -> None:
    from hopmem.finetune.treehop_data import infer_context_blocks

    corpus = [f"d{i}" for i in range(30)]
    questions = [("a", ["d1", "d4"]), ("b", ["d12", "d18"]), ("c", ["d20", "d29"])]
    blocks = infer_context_blocks(questions, corpus)
    assert blocks["a"] == [f"d{i}" for i in range(10) if i not in (1, 4)]
    assert blocks["b"] == [f"d{i}" for i in range(10, 20) if i not in (12, 18)]
    assert len(blocks["c"]) == 8 and "d20" not in blocks["c"]
    # A deduplicated corpus: the block ends before the next question's first supporting paragraph.
    short = infer_context_blocks([("a", ["d0", "d3"]), ("b", ["d5", "d9"])], [f"d{i}" for i in range(15)])
    assert short["a"] == ["d1", "d2", "d4"]
    # Supporting paragraphs far apart: not this layout, so no question gets a context.
    assert infer_context_blocks([("a", ["d0", "d25"]), ("b", ["d3", "d29"])], corpus) == {}


def test_context_comes_from_metadata_or_grade_zero_judgements_first(tmp_path: Path) -> None:
    from hopmem.finetune.treehop_data import folder_contexts

    corpus = [f"p{i}" for i in range(6)]
    listed = _folder(
        tmp_path,
        "listed",
        [{"_id": "q", "text": "t", "metadata": {"supporting": ["p0", "p5"], "context": ["p2", "p3"]}}],
        corpus,
        {"train": [("q", "p0", 1), ("q", "p5", 1)]},
    )
    assert folder_contexts(listed) == ({"q": ["p2", "p3"]}, "metadata.context")
    graded = _folder(
        tmp_path,
        "graded",
        [{"_id": "q", "text": "t"}],
        corpus,
        {"train": [("q", "p0", 1), ("q", "p5", 1), ("q", "p4", 0)]},
    )
    assert folder_contexts(graded) == ({"q": ["p4"]}, "qrels grade 0")


def test_several_folders_merge_with_namespaced_documents_and_their_own_contexts(tmp_path: Path) -> None:
    main = _blocked(tmp_path, "main", 12, "d", "dev")
    (main / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n")
    # The extra folder reuses the main folder's document ids ("d0"...) on purpose: namespacing must keep them apart.
    extra = _blocked(tmp_path, "extra", 20, "d", "train")
    splits = split_questions([main, extra], holdout=4, val_fraction=0.1, test_fraction=0.1, seed=0)
    assert [q.id for q in splits.held_out] == [f"main-q{k}" for k in range(4)]  # only main has a dev split
    pool = splits.train + splits.validation + splits.test
    assert len(pool) == 8 + 20 and len({q.id for q in pool}) == 28
    assert {q.id for q in pool}.isdisjoint({q.id for q in splits.held_out})
    assert splits.rule["counts"] == {"train": len(splits.train), "validation": 3, "held_out": 4, "test": 3}
    assert splits.rule["per_dataset"]["extra"] + splits.rule["per_dataset"]["main"] == len(splits.train)
    question = next(q for q in pool if q.id == "extra-q3")
    assert question.supporting == ["extra/d32", "extra/d37"]
    assert question.context == [f"extra/d{i}" for i in range(30, 40) if i not in (32, 37)]
    assert splits.rule["context_source"]["extra"].startswith("inferred")
    assert set(splits.to_dict()["test_ids"]) == {q.id for q in splits.test}
    # A question id met again in a later folder is skipped and counted.
    again = split_questions([main, extra, extra], holdout=4, val_fraction=0.1)
    assert again.rule["duplicate_questions_skipped"] == 20 and again.rule["datasets"][2] == "extra~2"


def test_merged_vectors_and_listed_negatives_never_mix_folders_or_take_gold_rows() -> None:
    from hopmem.finetune.treehop_data import listed_negatives, merge_vectors

    eye = np.eye(6, dtype=np.float32)
    a = CorpusVectors(np.array([1, 2, 3]), ["x", "y", "z"], eye[:3])
    b = CorpusVectors(np.array([1, 2, 3]), ["x", "y", "w"], eye[3:])
    merged = merge_vectors([a, b], ["A", "B"])
    assert len(set(merged.memory_ids.tolist())) == 6
    assert merged.doc_ids == ["A/x", "A/y", "A/z", "B/x", "B/y", "B/w"]
    assert merge_vectors([a], ["A"]) is a
    fallback = np.array([[5, 4, 3], [0, 1, 2]])
    negatives = listed_negatives([["A/y", "A/x", "nope"], []], merged, [{0}, {0, 1}], 4, fallback)
    assert negatives[0].tolist() == [1, 5, 4, 3]  # listed first (gold A/x skipped), then padded from the fallback
    assert negatives[1].tolist() == [2, 2, 2, 2]  # nothing listed, gold fallback rows skipped, repeated to fill
