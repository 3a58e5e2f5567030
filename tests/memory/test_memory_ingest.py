"""File readers and the Ingestor: each format becomes searchable text; bad inputs are reported, not stored."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hopmem.memory.embeddings import SentenceTransformerEmbedder
from hopmem.memory.errors import IngestError
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.ingest import Ingestor
from hopmem.memory.loaders import load_file
from hopmem.memory.store import MemoryStore

TENANT = "docs"
HTML = """<!doctype html>
<html><head><title>Lighthouse Keeping</title>
<style>.stylesecretword { color: red; }</style>
<script>var scriptsecretword = "should never be indexed";</script>
</head>
<body><h1>Lighthouse Keeping</h1>
<p>The keeper polished the fresnel lens every evening.</p>
<noscript>noscriptsecretword</noscript>
<script type="text/javascript">document.write("scriptsecretword")</script>
</body></html>
"""
# A distinctive word of each file, and the text around it.
WORDS = {
    "notes.txt": "quokka",
    "guide.md": "zephyrometer",
    "page.html": "fresnel",
    "report.pdf": "zeppelin",
    "memo.docx": "axolotl",
}


def write_pdf(path: Path, lines: list[str]) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    for i, line in enumerate(lines):
        pdf.drawString(72, 760 - 16 * i, line)
    pdf.showPage()
    pdf.save()


def write_docx(path: Path, paragraphs: list[str]) -> None:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    document.save(str(path))


def make_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("The quokka is a small marsupial living on Rottnest Island.\n", encoding="utf-8")
    (folder / "guide.md").write_text(
        "# Zephyr Guide\n\nThe zephyrometer measures gentle westerly winds on hill tops.\n", encoding="utf-8"
    )
    (folder / "page.html").write_text(HTML, encoding="utf-8")
    write_pdf(folder / "report.pdf", ["Hangar report.", "The zeppelin hangar stores helium for airships."])
    write_docx(folder / "memo.docx", ["Pond memo.", "The axolotl regrows its limbs in cold mountain lakes."])
    return folder


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore(tmp_path / "ingest.sqlite") as opened:
        yield opened


@pytest.fixture()
def ingestor(store: MemoryStore, embedder: SentenceTransformerEmbedder) -> Ingestor:
    return Ingestor(store, embedder, chunk_size=128, chunk_overlap=16)


def _sources(store: MemoryStore, query: str) -> list[str]:
    hits = store.search_lexical(TENANT, query, 10)
    return [record.source or "" for record in store.get(TENANT, [h.memory_id for h in hits])]


def _snapshot(store: MemoryStore, query: str) -> tuple[dict[str, object], list[tuple[int, float]]]:
    hits = store.search_lexical(TENANT, query, 10)
    return store.stats(TENANT), [(h.memory_id, round(h.score, 9)) for h in hits]


# ---- readers -------------------------------------------------------------------------------------


def test_each_format_is_read_into_text(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "files")
    loaded = {name: load_file(folder / name, max_bytes=10_000_000) for name in WORDS}
    for name, word in WORDS.items():
        assert word in loaded[name].text.lower(), name
    assert loaded["guide.md"].title == "Zephyr Guide"
    assert loaded["page.html"].title == "Lighthouse Keeping"
    assert loaded["notes.txt"].title == "notes"
    assert loaded["report.pdf"].title == "report"
    assert "Hangar report." in loaded["report.pdf"].text
    assert "Pond memo." in loaded["memo.docx"].text


def test_html_scripts_and_styles_are_stripped(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML, encoding="utf-8")
    text = load_file(path, max_bytes=1_000_000).text
    assert "fresnel lens" in text
    for hidden in ("scriptsecretword", "stylesecretword", "noscriptsecretword", "color: red", "var "):
        assert hidden not in text
    assert "<p>" not in text and "<h1>" not in text
    assert text.startswith("Lighthouse Keeping\n")


def test_latin1_text_is_decoded_and_binary_text_refused(tmp_path: Path, one_sentence: Callable[[str], None]) -> None:
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Crème brûlée à la française".encode("latin-1"))
    assert load_file(latin, max_bytes=1000).text == "Crème brûlée à la française"
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00\x00\x9c" * 50)
    with pytest.raises(IngestError) as caught:
        load_file(binary, max_bytes=10_000)
    one_sentence(str(caught.value))


def test_a_file_above_the_size_limit_is_refused(tmp_path: Path, one_sentence: Callable[[str], None]) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 100, encoding="utf-8")
    with pytest.raises(IngestError, match="above the limit") as caught:
        load_file(path, max_bytes=100)
    one_sentence(str(caught.value))


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\t\n", "no extractable text"),
        ("broken.pdf", b"%PDF-1.4 garbage", "PDF"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "DOCX"),
        ("data.xyz", b"some words", "unsupported extension"),
    ],
)
def test_unreadable_files_raise_one_sentence(
    tmp_path: Path, one_sentence: Callable[[str], None], name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestError) as caught:
        load_file(path, max_bytes=1_000_000)
    message = str(caught.value)
    one_sentence(message)
    assert expected in message
    assert str(path) in message
    assert "RetryError" not in message  # the reader's own error is named, not a retry wrapper


# ---- ingestion -----------------------------------------------------------------------------------


def test_every_format_is_searchable_after_ingestion(tmp_path: Path, store: MemoryStore, ingestor: Ingestor) -> None:
    folder = make_folder(tmp_path / "files")
    report = ingestor.ingest(TENANT, [folder], progress=False)

    assert (report.added, report.replaced, report.unchanged) == (5, 0, 0)
    assert report.errors == [] and report.skipped == [] and report.ok
    assert store.stats(TENANT)["documents"] == 5
    assert store.integrity_problems() == []
    for name, word in WORDS.items():
        assert _sources(store, word) == [str((folder / name).resolve())], name
    for hidden in ("scriptsecretword", "stylesecretword", "noscriptsecretword"):
        assert _sources(store, hidden) == []

    searcher = HybridSearcher(store, ingestor.embedder)
    top = searcher.search(TENANT, "an amphibian that regenerates its legs", k=1, mode="dense")
    assert top[0].record.source == str((folder / "memo.docx").resolve())
    top = searcher.search(TENANT, "airship storage building", k=1, mode="dense")
    assert top[0].record.source == str((folder / "report.pdf").resolve())


def test_bad_inputs_are_reported_and_leave_the_store_intact(
    tmp_path: Path, store: MemoryStore, ingestor: Ingestor, one_sentence: Callable[[str], None]
) -> None:
    good = tmp_path / "good.txt"
    good.write_text("The pangolin is covered in keratin scales.", encoding="utf-8")
    assert ingestor.ingest(TENANT, [good], progress=False).added == 1
    before = _snapshot(store, "pangolin keratin")
    assert before[1]

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.4 garbage")
    (bad / "table.xyz").write_text("pangolin data", encoding="utf-8")
    missing = tmp_path / "nowhere" / "missing.txt"
    inputs = [bad / "empty.txt", bad / "corrupt.pdf", bad / "table.xyz", missing]

    report = ingestor.ingest(TENANT, inputs, progress=False)

    errors = {Path(path): message for path, message in report.errors}
    assert len(report.errors) == len(errors) == 4
    assert set(errors) == set(inputs)
    for path, expected in zip(inputs, ["empty", "PDF", "unsupported", "does not exist"], strict=True):
        one_sentence(errors[path])
        assert expected in errors[path]
    assert not report.ok
    assert (report.added, report.replaced, report.unchanged, report.chunks) == (0, 0, 0, 0)
    assert report.skipped == []
    assert _snapshot(store, "pangolin keratin") == before
    assert store.integrity_problems() == []
    json.dumps(report.to_dict())  # the report is JSON-serialisable for the CLI
    assert sorted(e["path"] for e in report.to_dict()["errors"]) == sorted(str(p) for p in inputs)


def test_a_bad_file_does_not_stop_the_good_ones(tmp_path: Path, store: MemoryStore, ingestor: Ingestor) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a_good.txt").write_text("Narwhals have a long spiral tusk.", encoding="utf-8")
    (folder / "b_bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    (folder / "c_good.md").write_text("# Okapi\n\nThe okapi is related to the giraffe.", encoding="utf-8")
    report = ingestor.ingest(TENANT, [folder], progress=False)
    assert report.added == 2
    assert [Path(p).name for p, _ in report.errors] == ["b_bad.pdf"]
    assert len(_sources(store, "narwhals")) == 1 and len(_sources(store, "okapi")) == 1


def test_unsupported_and_hidden_files_in_a_folder_are_skipped_not_errors(
    tmp_path: Path, store: MemoryStore, ingestor: Ingestor
) -> None:
    folder = tmp_path / "folder"
    (folder / ".git").mkdir(parents=True)
    (folder / "keep.txt").write_text("Capybaras enjoy warm springs.", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "Makefile").write_text("all:\n\techo capybaras\n", encoding="utf-8")
    (folder / ".hidden.txt").write_text("hiddencapybara", encoding="utf-8")
    (folder / ".git" / "config.txt").write_text("gitcapybara", encoding="utf-8")

    report = ingestor.ingest(TENANT, [folder], progress=False)

    assert report.errors == []
    assert sorted(Path(p).name for p, _ in report.skipped) == ["Makefile", "image.png"]
    assert all("unsupported extension" in reason for _, reason in report.skipped)
    assert report.added == 1
    assert len(_sources(store, "capybaras")) == 1
    assert _sources(store, "hiddencapybara gitcapybara") == []


def test_reingesting_a_folder_reports_everything_unchanged(
    tmp_path: Path, store: MemoryStore, ingestor: Ingestor
) -> None:
    folder = make_folder(tmp_path / "files")
    first = ingestor.ingest(TENANT, [folder], progress=False)
    assert first.added == 5
    before = (store.stats(TENANT), store.vector_state(TENANT))

    again = ingestor.ingest(TENANT, [folder], progress=False)

    assert (again.added, again.replaced, again.unchanged, again.chunks, again.errors) == (0, 0, 5, 0, [])
    assert (store.stats(TENANT), store.vector_state(TENANT)) == before

    # Editing one file replaces that document only; its old text is no longer found.
    (folder / "notes.txt").write_text("The wombat digs burrows with strong claws.\n", encoding="utf-8")
    edited = ingestor.ingest(TENANT, [folder], progress=False)
    assert (edited.added, edited.replaced, edited.unchanged) == (0, 1, 4)
    assert _sources(store, "quokka") == []
    assert _sources(store, "wombat") == [str((folder / "notes.txt").resolve())]
    assert store.stats(TENANT)["documents"] == 5
    assert store.integrity_problems() == []


def test_a_different_chunking_makes_documents_stale(tmp_path: Path, store: MemoryStore, ingestor: Ingestor) -> None:
    path = tmp_path / "long.txt"
    path.write_text(" ".join(f"Sentence {i} talks about topic number {i}." for i in range(200)), encoding="utf-8")
    first = ingestor.ingest(TENANT, [path], progress=False)
    rechunked = Ingestor(store, ingestor.embedder, chunk_size=64, chunk_overlap=8)
    second = rechunked.ingest(TENANT, [path], progress=False)
    assert second.replaced == 1
    assert second.chunks > first.chunks > 1
    assert store.stats(TENANT)["memories"] == second.chunks


def test_a_document_above_the_character_limit_is_refused(
    tmp_path: Path, store: MemoryStore, ingestor: Ingestor
) -> None:
    path = tmp_path / "long.txt"
    path.write_text("tapir " * 100, encoding="utf-8")
    strict = Ingestor(store, ingestor.embedder, max_content_chars=50)
    report = strict.ingest(TENANT, [path], progress=False)
    assert report.added == 0
    assert "above the limit" in report.errors[0][1]
    assert store.stats(TENANT)["documents"] == 0


def test_a_lexical_only_ingestion_stores_no_vectors(tmp_path: Path, store: MemoryStore) -> None:
    folder = make_folder(tmp_path / "files")
    report = Ingestor(store, None).ingest(TENANT, [folder], progress=False)
    assert report.added == 5
    stats = store.stats(TENANT)
    assert (stats["documents"], stats["vectors"], stats["embedder"]) == (5, 0, None)
    assert _sources(store, "axolotl") == [str((folder / "memo.docx").resolve())]
    assert store.integrity_problems() == []


def test_a_beir_corpus_file_is_ingested_one_document_per_record(
    tmp_path: Path, store: MemoryStore, ingestor: Ingestor
) -> None:
    corpus = tmp_path / "beir" / "corpus.jsonl"
    corpus.parent.mkdir()
    records = [
        {"_id": "d1", "title": "Gliders", "text": "Sailplanes ride thermals without an engine."},
        {"_id": "d2", "title": "", "text": "Ornithopters flap their wings like birds."},
    ]
    corpus.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    report = ingestor.ingest(TENANT, [corpus.parent], progress=False)
    assert (report.added, report.errors, report.skipped) == (2, [], [])
    hits = store.search_lexical(TENANT, "thermals", 5)
    [record] = store.get(TENANT, [hits[0].memory_id])
    assert (record.external_id, record.title, record.source) == ("d1", "Gliders", f"{corpus.resolve()}#d1")
