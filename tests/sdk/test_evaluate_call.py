"""``hopmem.evaluate(...)``: one call over the harnesses, each run for real on a tiny folder written here, and the
:class:`EvalReport` it returns (table, plot, escaped HTML, JSON round trip); shipped reports load as EvalReports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hopmem
from hopmem import EvalReport
from hopmem.eval.retrieval import evaluate_retrieval
from hopmem.memory.errors import InputError
from hopmem.settings import get_settings

REPO = Path(__file__).resolve().parents[2]

DOCS = {
    "d1": ("Honeybees", "Honeybees dance in the hive to tell foragers the direction of flowers."),
    "d2": ("Flood", "The river flooded the old town of Riverton in the spring of 1952."),
    "d3": ("Glaciers", "Glaciers carve deep valleys over thousands of years."),
    "d4": ("Riverton", "Riverton is a market town whose mayor rebuilt the bridge after the flood."),
    "d5": ("Bread", "Sourdough bread rises slowly because of wild yeast."),
    "d6": ("Bridges", "Stone arch bridges spread their load into the abutments."),
}
QUERIES = {
    "q1": ("How do bees tell where flowers are?", ["d1"], ["dance"]),
    "q2": ("Which town flooded in 1952 and who rebuilt its bridge?", ["d2", "d4"], ["the mayor"]),
    "q3": ("What carves valleys?", ["d3"], ["glaciers"]),
}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    root = tmp_path / "tiny-beir"
    (root / "qrels").mkdir(parents=True)
    rows = [{"_id": i, "title": t, "text": x} for i, (t, x) in DOCS.items()]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    queries = [{"_id": q, "text": t, "metadata": {"answers": a}} for q, (t, _, a) in QUERIES.items()]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    qrels = [f"{q}\t{d}\t1" for q, (_, docs, _) in QUERIES.items() for d in docs]
    (root / "qrels" / "test.tsv").write_text("\n".join(["query-id\tcorpus-id\tscore", *qrels]) + "\n")
    return root


@pytest.fixture
def settings(tmp_path: Path) -> hopmem.Settings:
    return get_settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", llm_backend="none", reranker="none")


def test_retrieval_runs_each_method_and_the_table_holds_their_numbers(
    tiny: Path, settings: hopmem.Settings, tmp_path: Path
) -> None:
    out = tmp_path / "reports" / "retrieval.json"
    report = hopmem.evaluate(tiny, method=["bm25", "hybrid"], settings=settings, json_out=out, progress=False)
    assert isinstance(report, EvalReport) and isinstance(report, dict) and report.kind == "retrieval"
    assert report["split"] == "test" and report["n_queries"] == 3  # the folder's only split
    runs = {r["method"]: r for r in report["runs"]}
    table = report.table()
    assert [row["method"] for row in table] == ["bm25", "hybrid"]
    for row in table:
        assert {k: row[k] for k in runs[row["method"]]["metrics"]} == runs[row["method"]]["metrics"]
        assert row["p50 ms"] == runs[row["method"]]["latency_ms"]["p50"]
    # Written as the CLI writes: the combined report and each method's own report with its per-query log.
    assert json.loads(out.read_text()) == json.loads(report.to_json())
    for method in ("bm25", "hybrid"):
        own = json.loads((out.parent / f"retrieval.{method}.json").read_text())
        assert own["metrics"] == runs[method]["metrics"]
        assert (out.parent / own["per_query_log"]).is_file()
    page = report._repr_html_()
    assert page.count("<tr>") == 3 and "data:image/png;base64," in page
    assert f"<td>{table[0]['recall@10']:.4f}</td>" in page and f"<td>{table[1]['ndcg@10']:.4f}</td>" in page
    fig = report.plot()
    assert len(fig.axes[0].patches) == len(table) * len(report.score_names()) == 2 * 4
    text = repr(report)
    assert text.startswith("<EvalReport retrieval on tiny-beir test, 3 queries: bm25 ndcg@10 ") and len(text) < 300


def test_one_method_gives_the_harness_report_itself(tiny: Path, settings: hopmem.Settings) -> None:
    report = hopmem.evaluate(tiny, method="bm25", split="test", settings=settings, progress=False, max_queries=2)
    direct = evaluate_retrieval(tiny, "test", "bm25", settings=settings, progress=False, max_queries=2)
    assert report["metrics"] == direct["metrics"] and report["n_queries"] == 2
    assert set(report) == set(direct)


def test_rerank_dispatch_with_the_candidates_own_order(tiny: Path, settings: hopmem.Settings) -> None:
    report = hopmem.evaluate(
        tiny, kind="rerank", rerankers=["none"], candidates="bm25", depth=4, settings=settings, progress=False
    )
    assert report.kind == "rerank" and report["candidates"] == "bm25" and report["depth"] == 4
    assert [row["method"] for row in report.table()] == ["bm25"]
    assert report.table()[0]["ndcg@10"] == report["results"][0]["metrics"]["ndcg@10"]


def test_qa_dispatch_builds_the_variants_as_the_cli_does(tiny: Path, settings: hopmem.Settings) -> None:
    report = hopmem.evaluate(
        tiny,
        kind="qa",
        settings=settings,
        progress=False,
        max_queries=2,
        treehop=False,
        compare=True,
        vary="fusion",  # as the CLI's --vary takes it
    )
    names = [row["method"] for row in report.table()]
    assert names == [v["variant"] for v in report["variants"]] and len(names) == 2
    assert names[0].endswith("rsf+no-treehop") and names[1].endswith("rrf+no-treehop")
    assert all(row["LLM calls / q"] == 0 for row in report.table())  # llm_backend none: extractive answers
    assert {"em", "f1", "recall@5", "recall@10"} <= set(report.score_names())


def test_multihop_dispatch_reports_treehop_beside_direct_retrieval(tiny: Path, settings: hopmem.Settings) -> None:
    report = hopmem.evaluate(
        tiny, kind="multihop", split="test", settings=settings, progress=False, llm_baseline=False, top_n=2
    )
    methods = [row["method"] for row in report["rows"]]
    assert report.kind == "multihop" and len(report.table()) == len(methods)
    assert any(m.startswith("treehop") for m in methods) and any(m.startswith("direct") for m in methods)
    assert report.score_names() == ["recall"]


def _conversation_file(root: Path) -> Path:
    """A two-session chat in the LoCoMo format, written here (no LoCoMo text)."""
    session_1 = [
        {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a grey cat called Pepper last week."},
        {"speaker": "Ben", "dia_id": "D1:2", "text": "Lovely! I started learning the cello."},
        {"speaker": "Ana", "dia_id": "D1:3", "text": "My sister lives in Lisbon now."},
    ]
    session_2 = [
        {"speaker": "Ben", "dia_id": "D2:1", "text": "My cello teacher says I practise too little."},
        {"speaker": "Ana", "dia_id": "D2:2", "text": "Pepper knocked a plant off the shelf yesterday."},
    ]
    sample = {
        "sample_id": "chat-1",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": session_1,
            "session_2_date_time": "10:00 am on 20 May, 2023",
            "session_2": session_2,
        },
        "qa": [
            {"question": "What is the name of Ana's cat?", "answer": "Pepper", "evidence": ["D1:1"], "category": 1},
            {"question": "Which instrument does Ben play?", "answer": "cello", "evidence": ["D1:2"], "category": 1},
            {"question": "Where does Ana's sister live?", "answer": "Lisbon", "evidence": ["D1:3"], "category": 4},
        ],
    }
    path = root / "chat.json"
    path.write_text(json.dumps([sample]))
    return path


def test_memory_dispatch_reports_recall_per_method_and_category(tmp_path: Path, settings: hopmem.Settings) -> None:
    path = _conversation_file(tmp_path)
    report = hopmem.evaluate(path, kind="memory", methods=["lexical", "dense"], settings=settings, progress=False)
    assert report.kind == "memory" and report["n_questions"] == 3
    table = report.table()
    labels = [row["method"] for row in table]
    assert labels[0] == "lexical (all)" and "dense (all)" in labels
    categories = list(report["methods"]["lexical"]["by_category"])
    assert [label for label in labels if label.startswith("lexical / ")] == [f"lexical / {c}" for c in categories]
    overall = report["methods"]["dense"]["overall"]
    row = next(r for r in table if r["method"] == "dense (all)")
    assert row["recall@5"] == overall["recall@5"] and row["recall@10"] == overall["recall@10"]
    assert report.score_names() == ["recall@5", "recall@10"]
    assert "data:image/png;base64," in report._repr_html_()
    with pytest.raises(InputError, match="takes no split"):
        hopmem.evaluate(path, kind="memory", split="test", settings=settings)


def test_unknown_kind_and_option_are_refused_in_one_sentence(tiny: Path, settings: hopmem.Settings) -> None:
    with pytest.raises(InputError, match=r"^Unknown kind 'ranking'; use one of retrieval, qa, rerank, multihop"):
        hopmem.evaluate(tiny, kind="ranking")
    with pytest.raises(InputError, match=r"^evaluate_retrieval takes no option 'depth'; see its docstring\.$"):
        hopmem.evaluate(tiny, settings=settings, progress=False, depth=3)


def test_hostile_labels_are_escaped_and_the_report_round_trips(tmp_path: Path) -> None:
    report = EvalReport(
        {
            "dataset": "<img src=x onerror=alert(1)>",
            "split": "test",
            "method": "<script>alert(1)</script>",
            "n_queries": 1,
            "metrics": {"ndcg@10": 0.25},
            "latency_ms": {"p50": 2.0},
        }
    )
    page = report._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page and "<img src=x" not in page
    again = EvalReport.load(report.save(tmp_path / "r.json"))
    assert again == report and again.kind == "retrieval"
    with pytest.raises(InputError, match="No report at"):
        EvalReport.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("name", "kind", "rows_key"),
    [
        ("rerank-cranfield.json", "rerank", "results"),
        ("qa-hotpotqa-250.json", "qa", "variants"),
        ("treehop-hotpotqa.json", "multihop", "rows"),
        ("retrieval-cranfield-hybrid.json", "retrieval", None),
    ],
)
def test_shipped_reports_load_as_eval_reports(name: str, kind: str, rows_key: str | None) -> None:
    path = REPO / "reports" / name
    if not path.is_file():
        pytest.skip(f"reports/{name} is not in this checkout")
    report = EvalReport.load(path)
    assert report.kind == kind
    assert len(report.table()) == (len(report[rows_key]) if rows_key else 1)
    assert report.score_names() and "data:image/png;base64," in report._repr_html_()
