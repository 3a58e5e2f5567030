"""The BEIR reader on Cranfield and on small hand-made folders, and the retrieval and answer metrics."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hopmem.memory.datasets.beir import dataset_hash, is_corpus_file, iter_corpus, load_dataset, load_qrels
from hopmem.memory.datasets.metrics import (
    exact_match,
    mean,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    percentiles,
    recall_at_k,
    retrieval_metrics,
    token_f1,
)
from hopmem.memory.errors import InputError

# The shared data sets live next to the repository (read-only).
CRANFIELD = Path(__file__).resolve().parents[3] / "shared" / "data" / "cranfield"
needs_cranfield = pytest.mark.skipif(not (CRANFIELD / "corpus.jsonl").is_file(), reason="Cranfield is not available")


def write_beir(root: Path, corpus: list[dict[str, str]], queries: list[dict[str, str]], qrels: str) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries), encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return root


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return write_beir(
        tmp_path / "tiny",
        [
            {"_id": "d1", "title": "One", "text": "first"},
            {"_id": "d2", "text": "second"},
            {"_id": "d3", "text": "3"},
        ],
        [{"_id": "q1", "text": "alpha"}, {"_id": "q2", "text": "beta"}, {"_id": "q3", "text": "gamma"}],
        "query-id\tcorpus-id\tscore\nq3\td1\t2\nq1\td2\t1.0\nq1\td3\t0\n",
    )


# ---- BEIR ----------------------------------------------------------------------------------------


@needs_cranfield
def test_cranfield_test_split() -> None:
    data = load_dataset(CRANFIELD, "test")
    assert len(data.corpus) == 1400
    assert len(data.queries) == 150
    assert [q.id for q in data.queries] == [str(i) for i in range(1, 151)]
    assert {q.id for q in data.queries} == set(data.qrels)
    assert data.queries[0].text.startswith("what similarity laws must be obeyed")
    assert data.qrels["1"]["184"] == 3
    assert data.qrels["1"]["12"] == 2
    assert sum(len(judged) for judged in data.qrels.values()) == 1004  # every line of test.tsv but the header
    assert data.corpus[0].id == "1" and data.corpus[0].title.startswith("experimental investigation")
    assert len(data.fingerprint()) == 64


def test_only_queries_judged_in_the_split_are_kept(tiny: Path) -> None:
    data = load_dataset(tiny, "test")
    assert [q.id for q in data.queries] == ["q1", "q3"]  # file order, q2 has no judgement
    assert data.qrels == {"q3": {"d1": 2}, "q1": {"d2": 1, "d3": 0}}
    assert [(d.id, d.title, d.text) for d in data.corpus] == [
        ("d1", "One", "first"),
        ("d2", "", "second"),
        ("d3", "", "3"),
    ]


@needs_cranfield
def test_a_subset_of_cranfield_qrels_keeps_those_queries_only(tmp_path: Path) -> None:
    root = tmp_path / "cran"
    (root / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        shutil.copy(CRANFIELD / name, root / name)
    lines = (CRANFIELD / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines[1:] if line.split("\t")[0] in {"2", "7", "150"}]
    (root / "qrels" / "dev.tsv").write_text("\n".join([lines[0], *kept]) + "\n", encoding="utf-8")
    data = load_dataset(root, "dev")
    assert [q.id for q in data.queries] == ["2", "7", "150"]
    assert data.fingerprint() != dataset_hash(CRANFIELD, "test")


def test_a_missing_split_names_the_available_ones(tiny: Path, one_sentence: Callable[[str], None]) -> None:
    (tiny / "qrels" / "train.tsv").write_text("q1\td1\t1\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_dataset(tiny, "dev")
    message = str(caught.value)
    one_sentence(message)
    assert "dev.tsv" in message
    assert "splits here: test, train" in message


@needs_cranfield
def test_a_missing_cranfield_split_names_test(one_sentence: Callable[[str], None]) -> None:
    with pytest.raises(InputError, match=r"splits here: test\b") as caught:
        load_dataset(CRANFIELD, "dev")
    one_sentence(str(caught.value))


def test_a_folder_without_corpus_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"corpus\.jsonl"):
        load_dataset(tmp_path, "test")


def test_bad_records_are_refused_with_their_line(tmp_path: Path, one_sentence: Callable[[str], None]) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "1", "text": "ok"}\n\n{"_id": "2"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 3") as caught:
        list(iter_corpus(path))
    one_sentence(str(caught.value))
    qrels = tmp_path / "q.tsv"
    qrels.write_text("q1\td1\tvery\n", encoding="utf-8")
    with pytest.raises(InputError, match="non-numeric"):
        load_qrels(qrels)


def test_is_corpus_file(tmp_path: Path) -> None:
    good = tmp_path / "corpus.jsonl"
    good.write_text('\n{"_id": "1", "text": "x"}\n', encoding="utf-8")
    other = tmp_path / "events.jsonl"
    other.write_text('{"event": "click"}\n', encoding="utf-8")
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n", encoding="utf-8")
    text = tmp_path / "corpus.txt"
    text.write_text('{"_id": "1", "text": "x"}\n', encoding="utf-8")
    assert is_corpus_file(good)
    assert not is_corpus_file(other)
    assert not is_corpus_file(broken)
    assert not is_corpus_file(text)
    assert not is_corpus_file(tmp_path / "absent.jsonl")


# ---- retrieval metrics ---------------------------------------------------------------------------

GRADED = {"a": 3, "b": 2, "c": 1, "z": 0}


def test_ndcg_with_graded_gains() -> None:
    # DCG@3 of b, x, a = 2/log2(2) + 0 + 3/log2(4) = 2 + 1.5; ideal a, b, c = 3 + 2/log2(3) + 1/2.
    ideal = 3 + 2 / math.log2(3) + 0.5
    assert ndcg_at_k(["b", "x", "a", "c"], GRADED, 3) == pytest.approx(3.5 / ideal)
    # At k=4 the c at rank 4 adds 1/log2(5); the ideal gains only three judged-relevant documents.
    assert ndcg_at_k(["b", "x", "a", "c"], GRADED, 4) == pytest.approx((3.5 + 1 / math.log2(5)) / ideal)
    assert ndcg_at_k(["a", "b", "c"], GRADED, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "b", "c", "z"], GRADED, 10) == pytest.approx(1.0)
    # A relevant document ranked below k counts neither in DCG nor against the ideal's length.
    assert ndcg_at_k(["x", "a"], GRADED, 1) == 0.0
    assert ndcg_at_k(["z", "x"], GRADED, 10) == 0.0
    assert ndcg_at_k(["a"], {"z": 0}, 10) == 0.0
    assert ndcg_at_k([], GRADED, 10) == 0.0


def test_ndcg_prefers_higher_grades_first() -> None:
    assert ndcg_at_k(["a", "c"], GRADED, 2) > ndcg_at_k(["c", "a"], GRADED, 2)
    # Both orders: 3/1 + 1/log2(3) versus 1/1 + 3/log2(3), over the ideal 3 + 2/log2(3).
    ideal = 3 + 2 / math.log2(3)
    assert ndcg_at_k(["c", "a"], GRADED, 2) == pytest.approx((1 + 3 / math.log2(3)) / ideal)


def test_recall() -> None:
    qrels = {"a": 1, "b": 2, "c": 0}
    assert recall_at_k(["c", "a", "x"], qrels, 2) == pytest.approx(0.5)
    assert recall_at_k(["c", "a", "x"], qrels, 1) == 0.0
    assert recall_at_k(["b", "a"], qrels, 2) == 1.0
    assert recall_at_k(["a", "b"], {"c": 0}, 10) == 0.0


def test_mrr() -> None:
    qrels = {"a": 1, "z": 0}
    assert mrr_at_k(["x", "z", "a"], qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "z", "a"], qrels, 2) == 0.0
    assert mrr_at_k(["a", "x"], qrels, 10) == 1.0


def test_retrieval_metrics_bundle() -> None:
    ranked = ["x1", "x2", "x3", "x4", "x5", "a", "x7"]
    metrics = retrieval_metrics(ranked, {"a": 1, "b": 1})
    assert metrics == pytest.approx(
        {
            "ndcg@10": (1 / math.log2(7)) / (1 + 1 / math.log2(3)),
            "recall@5": 0.0,
            "recall@10": 0.5,
            "mrr@10": 1 / 6,
        }
    )


# ---- answer metrics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  a   cat,  an owl and THE dog. ", "cat owl and dog"),
        ("theatre", "theatre"),  # articles are whole words only
        ("1,000", "1000"),
    ],
)
def test_squad_normalisation(text: str, normalised: str) -> None:
    assert normalize_answer(text) == normalised


def test_exact_match() -> None:
    assert exact_match("The Eiffel Tower!", ["eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    assert exact_match("paris", ["London", "Paris."]) == 1.0
    assert exact_match("paris", []) == 0.0


def test_token_f1() -> None:
    # "big red dog" against "red dog": 2 shared tokens, precision 2/3, recall 1.
    assert token_f1("the big red dog", ["a red dog"]) == pytest.approx(0.8)
    # Repeated tokens count once per occurrence in both: precision 1/3, recall 1.
    assert token_f1("dog dog dog", ["dog"]) == pytest.approx(0.5)
    # The best of several answers counts.
    assert token_f1("red dog", ["blue cat", "a red dog", "red"]) == pytest.approx(1.0)
    assert token_f1("blue cat", ["red dog"]) == 0.0
    assert token_f1("", ["red dog"]) == 0.0


def test_percentiles_and_mean() -> None:
    assert percentiles([1.0, 2.0, 3.0, 4.0]) == {"p50": 2.5, "p95": 3.85}
    assert percentiles([], (50, 99)) == {"p50": 0.0, "p99": 0.0}
    assert mean([1.0, 2.0, 6.0]) == 3.0
    assert mean([]) == 0.0
