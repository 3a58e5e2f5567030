"""Hybrid search over 200 real Cranfield abstracts, ingested with the packaged MiniLM embedder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hopmem.memory.datasets.beir import load_qrels
from hopmem.memory.embeddings import SentenceTransformerEmbedder
from hopmem.memory.errors import InputError
from hopmem.memory.fusion import rrf
from hopmem.memory.hybrid import SEARCH_MODES, HybridSearcher
from hopmem.memory.ingest import Ingestor, IngestReport
from hopmem.memory.store import MemoryStore

# The shared data sets live next to the repository (read-only).
CRANFIELD = Path(__file__).resolve().parents[3] / "shared" / "data" / "cranfield"
N_DOCS = 200
# Queries whose judged-relevant documents are among the first 200 abstracts.
QUERY_IDS = ["3", "9", "20", "84", "108"]
TENANT = "cran"
RIVAL = "rival"
RIVAL_TEXT = (
    "Heat conduction in composite slabs and the fatigue of structures under acoustic loading were studied, "
    "together with slip flow heat transfer, joule heating and aerodynamic heat transfer estimates."
)


@dataclass
class Corpus:
    store: MemoryStore
    searcher: HybridSearcher
    report: IngestReport
    rival_report: IngestReport
    corpus_file: Path
    queries: dict[str, str]
    relevant: dict[str, set[str]]


@pytest.fixture(scope="module")
def cranfield(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Iterator[Corpus]:
    if not (CRANFIELD / "corpus.jsonl").is_file():
        pytest.skip(f"{CRANFIELD} is not available")
    root = tmp_path_factory.mktemp("cranfield")
    with (CRANFIELD / "corpus.jsonl").open(encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(N_DOCS), handle, strict=False)]
    corpus_file = root / "corpus.jsonl"
    corpus_file.write_text("".join(lines), encoding="utf-8")
    doc_ids = {json.loads(line)["_id"] for line in lines}

    queries = {}
    for line in (CRANFIELD / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["_id"] in QUERY_IDS:
            queries[record["_id"]] = record["text"]
    qrels = load_qrels(CRANFIELD / "qrels" / "test.tsv")
    relevant = {q: {d for d, grade in qrels[q].items() if grade > 0 and d in doc_ids} for q in QUERY_IDS}
    assert all(relevant.values()), relevant

    rival_file = root / "rival" / "notes.txt"
    rival_file.parent.mkdir()
    rival_file.write_text(RIVAL_TEXT, encoding="utf-8")

    with MemoryStore(root / "store.sqlite") as store:
        ingestor = Ingestor(store, embedder)
        report = ingestor.ingest(TENANT, [corpus_file], progress=False)
        rival_report = ingestor.ingest(RIVAL, [rival_file.parent], progress=False)
        yield Corpus(store, HybridSearcher(store, embedder), report, rival_report, corpus_file, queries, relevant)


def test_the_corpus_is_ingested_in_step(cranfield: Corpus) -> None:
    report = cranfield.report
    assert (report.added, report.replaced, report.unchanged, report.errors) == (N_DOCS, 0, 0, [])
    assert report.chunks >= N_DOCS
    stats = cranfield.store.stats(TENANT)
    assert (stats["documents"], stats["memories"], stats["vectors"]) == (N_DOCS, report.chunks, report.chunks)
    assert cranfield.store.stats(RIVAL)["documents"] == 1
    assert cranfield.store.integrity_problems() == []


@pytest.mark.parametrize("mode", SEARCH_MODES)
@pytest.mark.parametrize("query_id", QUERY_IDS)
def test_each_mode_finds_a_judged_relevant_document(cranfield: Corpus, query_id: str, mode: str) -> None:
    results = cranfield.searcher.search(TENANT, cranfield.queries[query_id], k=10, mode=mode)
    assert len(results) == 10
    assert all(r.record.tenant == TENANT for r in results)
    assert all(r.record.source and r.record.source.startswith(str(cranfield.corpus_file.resolve())) for r in results)
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    found = {r.record.external_id for r in results}
    assert found & cranfield.relevant[query_id], (mode, [r.record.external_id for r in results])


@pytest.mark.parametrize("mode", SEARCH_MODES)
def test_results_belong_to_the_tenant_asked_for(cranfield: Corpus, mode: str) -> None:
    query = "heat conduction in composite slabs and fatigue under acoustic loading"
    own = cranfield.searcher.search(RIVAL, query, k=10, mode=mode)
    # Positive control: the rival tenant finds its one document, and only it.
    assert [r.record.source for r in own] == [str(Path(cranfield.corpus_file.parent, "rival", "notes.txt").resolve())]
    others = cranfield.searcher.search(TENANT, query, k=10, mode=mode)
    assert len(others) == 10
    assert all(r.record.tenant == TENANT and r.record.external_id for r in others)
    assert own[0].id not in {r.id for r in others}
    assert cranfield.searcher.search("nobody", query, k=10, mode=mode) == []


def test_hybrid_ranks_come_from_the_lists_it_fused(cranfield: Corpus) -> None:
    query = cranfield.queries["20"]
    lists = cranfield.searcher.ranked_lists(TENANT, query, "hybrid", depth=30)
    assert set(lists) == {"lexical", "dense"}
    assert all(len(hits) == 30 for hits in lists.values())
    positions = {name: {h.memory_id: rank for rank, h in enumerate(hits, start=1)} for name, hits in lists.items()}
    results = cranfield.searcher.search(TENANT, query, k=10, mode="hybrid", depth=30)
    assert [r.id for r in results] == [h.memory_id for h in rrf(lists)[:10]]
    for result in results:
        expected = {name: pos[result.id] for name, pos in positions.items() if result.id in pos}
        assert result.ranks == expected
        assert result.ranks  # every fused document came from at least one list
    # Lexical-only and dense-only searches report only their own rank.
    assert all(set(r.ranks) == {"lexical"} for r in cranfield.searcher.search(TENANT, query, mode="lexical"))
    assert all(set(r.ranks) == {"dense"} for r in cranfield.searcher.search(TENANT, query, mode="dense"))


@pytest.mark.parametrize("fusion", ["rrf", "rsf"])
def test_lists_found_elsewhere_go_through_the_same_fusion_path_as_search(cranfield: Corpus, fusion: str) -> None:
    """``fuse_results`` over the searcher's own two lists gives exactly what ``search`` gives: one path."""
    searcher = HybridSearcher(cranfield.store, cranfield.searcher.embedder, fusion=fusion)
    query = cranfield.queries["9"]
    lists = searcher.ranked_lists(TENANT, query, "hybrid", depth=30)
    fused = searcher.fuse_results(TENANT, lists, k=10)
    assert fused == searcher.search(TENANT, query, k=10, depth=30)
    assert searcher.fuse_results(TENANT, lists, k=10, fusion="rrf" if fusion == "rsf" else "rsf") != fused
    # Weights count per list; a list alone still goes through the formula (search passes a single list through).
    heavy = searcher.fuse_results(TENANT, lists, k=10, weights={"lexical": 0.0})
    assert [r.id for r in heavy] == [r.id for r in searcher.fuse_results(TENANT, {"dense": lists["dense"]}, k=10)]
    assert searcher.fuse_results("nobody", lists, k=10) == []  # records are read for the tenant asked for
    assert searcher.fuse_results(TENANT, {"q1": []}, k=10) == []
    with pytest.raises(InputError):
        searcher.fuse_results(TENANT, lists, k=10, fusion="max")


def test_without_a_trust_model_trust_weighting_changes_nothing(cranfield: Corpus) -> None:
    hits = cranfield.searcher.ranked_lists(TENANT, cranfield.queries["3"], "lexical", depth=5)["lexical"]
    assert cranfield.searcher.trust is None
    assert cranfield.searcher.weigh_by_trust(hits, {}) == hits
    assert all(r.trust is None for r in cranfield.searcher.fuse_results(TENANT, {"lexical": hits}, k=5))


def test_rsf_fusion_also_finds_the_relevant_documents(cranfield: Corpus) -> None:
    searcher = HybridSearcher(cranfield.store, cranfield.searcher.embedder, fusion="rsf")
    for query_id in QUERY_IDS:
        found = {r.record.external_id for r in searcher.search(TENANT, cranfield.queries[query_id], k=10)}
        assert found & cranfield.relevant[query_id], query_id


def test_a_given_query_vector_is_used_instead_of_the_text(
    cranfield: Corpus, embedder: SentenceTransformerEmbedder
) -> None:
    vector = embedder.embed([cranfield.queries["108"]])[0]
    by_vector = cranfield.searcher.search(TENANT, "unrelated words", k=5, mode="dense", query_vector=vector)
    by_text = cranfield.searcher.search(TENANT, cranfield.queries["108"], k=5, mode="dense")
    assert [r.id for r in by_vector] == [r.id for r in by_text]


def test_k_limits_the_number_of_results(cranfield: Corpus) -> None:
    query = cranfield.queries["3"]
    assert len(cranfield.searcher.search(TENANT, query, k=3)) == 3
    deep = cranfield.searcher.search(TENANT, query, k=50, mode="dense")
    assert len(deep) == 50  # k above the default depth widens the candidate lists


@pytest.mark.parametrize("query", ["", "   ", None])
def test_an_empty_query_is_refused(cranfield: Corpus, query: object) -> None:
    with pytest.raises(InputError):
        cranfield.searcher.search(TENANT, query, k=5)  # type: ignore[arg-type]


def test_bad_arguments_are_refused(cranfield: Corpus) -> None:
    with pytest.raises(InputError, match="mode"):
        cranfield.searcher.search(TENANT, "wing", mode="semantic")
    with pytest.raises(InputError, match="fusion"):
        HybridSearcher(cranfield.store, None, fusion="max")
    with pytest.raises(InputError):
        cranfield.searcher.search("", "wing")


def test_without_an_embedder_only_lexical_search_works(cranfield: Corpus) -> None:
    lexical_only = HybridSearcher(cranfield.store, None)
    results = lexical_only.search(TENANT, cranfield.queries["9"], k=10, mode="lexical")
    assert {r.record.external_id for r in results} & cranfield.relevant["9"]
    for mode in ("dense", "hybrid"):
        with pytest.raises(InputError, match="embedder"):
            lexical_only.search(TENANT, cranfield.queries["9"], mode=mode)


def test_reingesting_the_corpus_changes_nothing(cranfield: Corpus, embedder: SentenceTransformerEmbedder) -> None:
    before = cranfield.store.stats(TENANT)
    report = Ingestor(cranfield.store, embedder).ingest(TENANT, [cranfield.corpus_file], progress=False)
    assert (report.added, report.replaced, report.unchanged, report.errors) == (0, 0, N_DOCS, [])
    assert cranfield.store.stats(TENANT) == before
