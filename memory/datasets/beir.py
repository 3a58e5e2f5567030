"""Read data sets in BEIR layout: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hopmem.memory.errors import InputError


@dataclass(frozen=True)
class CorpusDoc:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class BeirDataset:
    """A loaded data set: corpus, the queries of one split and their graded judgements."""

    root: Path
    split: str
    corpus: list[CorpusDoc]
    queries: list[Query]
    qrels: dict[str, dict[str, int]]

    def fingerprint(self) -> str:
        """sha256 over the files the evaluation read (corpus, queries, this split's qrels)."""
        return dataset_hash(self.root, self.split)


def is_corpus_file(path: Path) -> bool:
    """True for a JSONL file whose first record has BEIR's ``_id`` and ``text`` fields."""
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    return isinstance(record, dict) and "_id" in record and "text" in record
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def iter_corpus(path: Path) -> Iterator[CorpusDoc]:
    """The documents of a ``corpus.jsonl`` file.

    Raises:
        InputError: on a line that is not a JSON object with ``_id`` and ``text``.
    """
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                yield CorpusDoc(str(record["_id"]), str(record.get("title") or ""), str(record["text"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(
                    f"{path} line {number} is not a BEIR corpus record ({exc}); fix or remove it."
                ) from exc


def load_queries(path: Path) -> list[Query]:
    queries: list[Query] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                queries.append(Query(str(record["_id"]), str(record["text"]), dict(record.get("metadata") or {})))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(f"{path} line {number} is not a BEIR query record ({exc}).") from exc
    return queries


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Judgements as ``{query_id: {doc_id: grade}}``; the header line is skipped."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for row in reader:
            if len(row) < 3 or row[0] == "query-id":
                continue
            try:
                grade = int(float(row[2]))
            except ValueError as exc:
                raise InputError(f"{path} has a non-numeric score {row[2]!r}.") from exc
            qrels.setdefault(row[0], {})[row[1]] = grade
    return qrels


def load_dataset(root: Path, split: str) -> BeirDataset:
    """Load ``root`` for ``split``; only the queries judged in that split are kept.

    Raises:
        InputError: when a file of the layout is missing.
    """
    root = Path(root)
    corpus_path, queries_path, qrels_path = (
        root / "corpus.jsonl",
        root / "queries.jsonl",
        root / "qrels" / f"{split}.tsv",
    )
    for needed in (corpus_path, queries_path, qrels_path):
        if not needed.is_file():
            splits = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
            hint = f" (splits here: {', '.join(splits)})" if splits else ""
            raise InputError(
                f"{needed} is missing; a BEIR folder needs corpus.jsonl, queries.jsonl and qrels/{split}.tsv{hint}."
            )
    qrels = load_qrels(qrels_path)
    queries = [q for q in load_queries(queries_path) if q.id in qrels]
    return BeirDataset(root, split, list(iter_corpus(corpus_path)), queries, qrels)


def dataset_hash(root: Path, split: str) -> str:
    """sha256 over the files an evaluation of ``split`` reads: corpus, queries and that split's qrels."""
    return _files_hash(Path(root), ["corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"])


def folder_hash(root: Path) -> str:
    """sha256 over every file a training run may read from a BEIR folder: corpus, queries and all qrels splits."""
    qrels = sorted(f"qrels/{p.name}" for p in (Path(root) / "qrels").glob("*.tsv"))
    return _files_hash(Path(root), ["corpus.jsonl", "queries.jsonl", *qrels])


def _files_hash(root: Path, names: list[str]) -> str:
    digest = hashlib.sha256()
    for name in names:
        path = root / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
