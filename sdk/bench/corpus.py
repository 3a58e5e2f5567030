"""Deterministic benchmark inputs made of real text: memories recombined from corpus sentences, and real queries.

Memories: the passages of the BEIR corpora under the data root (``cranfield``, ``hotpotqa``, ``2wiki-corpus``; each
``corpus.jsonl`` with ``_id``, ``title``, ``text``) are split into sentences. Each memory is 1-3 consecutive sentences
of one passage (passage, start and length drawn from a seeded :class:`random.Random`), titled with the passage's
title. A text that was already drawn gets one more sentence from a random passage until it is new, so ``n`` memories
are always ``n`` distinct contents (the store would collapse equal contents into one row).

Queries: the texts of the corpora's BEIR ``queries.jsonl`` files (real user questions: Cranfield's aeronautics
queries, HotpotQA's multi-hop questions), sampled without replacement by the same seed. Only when the data holds
fewer queries than asked does the generator top up with *content-word queries*: three non-stopword words of a
random sentence. The report says how many of each it used.

Everything depends only on the input files, ``n``, ``count`` and ``seed``: the same inputs give the same texts in
the same order on any machine (no set iteration, no hash randomisation).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hopmem.memory.errors import InputError
from hopmem.memory.fts import STOPWORDS
from hopmem.memory.model_paths import display_path

log = logging.getLogger(__name__)

CORPORA: tuple[str, ...] = ("cranfield", "hotpotqa", "2wiki-corpus")
REPO_ROOT = Path(__file__).resolve().parents[2]

MIN_SENTENCE_WORDS = 4
MIN_SENTENCE_CHARS = 20
MAX_SENTENCE_CHARS = 1000
MAX_SENTENCES_PER_MEMORY = 3
# Words that end in a period without ending a sentence ("St. Maurice", "Dr. No", "U.S. Army").
_ABBREVIATION = re.compile(
    r"(?:mr|mrs|ms|dr|st|jr|sr|co|inc|ltd|no|vs|figs?|eqs?|refs?|vol|pp|mt|ft|gen|col|lt|sgt|capt|rev|prof"
    r"|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec|etc|al|approx)"
)
_BREAK = re.compile(r"([.!?])\s+")
_CONTENT_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")


@dataclass(frozen=True)
class Passage:
    """One corpus passage cut into sentences."""

    corpus: str
    title: str
    sentences: tuple[str, ...]


@dataclass
class BenchCorpus:
    """The passages and queries read from a data root, with what identifies them (hashes and counts)."""

    root: Path
    passages: list[Passage]
    queries: list[tuple[str, str]]
    info: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def sentence_count(self) -> int:
        return sum(len(p.sentences) for p in self.passages)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for reports: the root, each corpus file's sha256 and counts."""
        return {
            "root": display_path(self.root),
            "corpora": self.info,
            "passages": len(self.passages),
            "sentences": self.sentence_count,
            "queries_available": len(self.queries),
        }


def default_data_root() -> Path | None:
    """The ``shared/data`` folder next to the repository root, or None when there is none."""
    candidate = REPO_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def resolve_data_root(data_root: Path | str | None) -> Path:
    """``data_root`` or the default one, checked to hold at least one of :data:`CORPORA`.

    Raises:
        InputError: when no data root is given and none is found, or it holds none of the corpora.
    """
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    if root is None:
        raise InputError("No benchmark data folder was found next to the repository; pass --data DIR.")
    if not any((root / name / "corpus.jsonl").is_file() for name in CORPORA):
        raise InputError(f"The data folder {root} holds none of {', '.join(CORPORA)} (corpus.jsonl); pass --data DIR.")
    return root


def split_sentences(text: str) -> list[str]:
    """Cut ``text`` into sentences, keeping those of at least four words and 20 characters.

    A break is a ``.``, ``!`` or ``?`` followed by white space, when either a space precedes the terminator (the
    Cranfield style, ``"... flow . the ..."``) or the next word starts with a capital, digit, quote or bracket and
    the word before is not an abbreviation or an initial.
    """
    text = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for match in _BREAK.finditer(text):
        end = match.end(1)
        before = text[start : match.start(1)]
        nxt = text[match.end() : match.end() + 1]
        spaced = before.endswith(" ")
        last_word = before.rsplit(" ", 1)[-1].lower().rstrip(".")
        is_abbrev = (
            bool(_ABBREVIATION.fullmatch(last_word))
            or (len(last_word) == 1 and last_word.isalpha())
            or "." in last_word
        )
        if spaced or (nxt and (nxt.isupper() or nxt.isdigit() or nxt in "\"'“‘([") and not is_abbrev):
            sentences.append(text[start:end].strip())
            start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if _usable(s)]


def _usable(sentence: str) -> bool:
    return MIN_SENTENCE_CHARS <= len(sentence) <= MAX_SENTENCE_CHARS and len(sentence.split()) >= MIN_SENTENCE_WORDS


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"Line {number} of {path} is not valid JSON ({exc.msg}); fix or remove it.") from exc


def load_corpus(data_root: Path | str | None = None, corpora: Sequence[str] = CORPORA) -> BenchCorpus:
    """Read and sentence-split the passages (and the queries) of ``corpora`` found under ``data_root``.

    Corpora missing from the data root are skipped (and logged); at least one must be present.
    """
    root = resolve_data_root(data_root)
    passages: list[Passage] = []
    queries: list[tuple[str, str]] = []
    info: dict[str, dict[str, Any]] = {}
    for name in corpora:
        corpus_file = root / name / "corpus.jsonl"
        if not corpus_file.is_file():
            log.warning("benchmark corpus %s not found under %s; skipped", name, root)
            continue
        before = len(passages)
        sentences = 0
        for record in _read_jsonl(corpus_file):
            title = " ".join(str(record.get("title") or "").split())
            cut = tuple(split_sentences(str(record.get("text") or "")))
            if cut:
                passages.append(Passage(name, title, cut))
                sentences += len(cut)
        entry: dict[str, Any] = {
            "corpus_sha256": _sha256_file(corpus_file),
            "passages": len(passages) - before,
            "sentences": sentences,
            "queries": 0,
        }
        query_file = root / name / "queries.jsonl"
        if query_file.is_file():
            found = [" ".join(str(q.get("text") or "").split()) for q in _read_jsonl(query_file)]
            found = [q for q in found if q]
            queries.extend((name, q) for q in found)
            entry["queries"] = len(found)
            entry["queries_sha256"] = _sha256_file(query_file)
        info[name] = entry
    if not passages:
        raise InputError(f"No usable passage was found in the corpora under {root}; check the corpus.jsonl files.")
    return BenchCorpus(root=root, passages=passages, queries=queries, info=info)


def generate_memories(n: int, corpus: BenchCorpus, *, seed: int = 0) -> list[dict[str, str]]:
    """``n`` distinct memories ``{"title", "content"}`` of 1-3 consecutive real sentences each.

    Raises:
        InputError: when ``n`` is not positive, or the corpus is too small to give ``n`` distinct texts.
    """
    if n < 1:
        raise InputError(f"The number of memories must be at least 1, not {n}.")
    rng = random.Random(seed)
    passages = corpus.passages
    seen: set[str] = set()
    memories: list[dict[str, str]] = []
    for _ in range(n):
        passage = passages[rng.randrange(len(passages))]
        length = rng.randint(1, MAX_SENTENCES_PER_MEMORY)
        start = rng.randrange(len(passage.sentences))
        content = " ".join(passage.sentences[start : start + length])
        attempts = 0
        while content in seen:
            attempts += 1
            if attempts > 50:
                raise InputError(f"The corpus under {corpus.root} is too small for {n} distinct memories.")
            other = passages[rng.randrange(len(passages))]
            content = f"{content} {other.sentences[rng.randrange(len(other.sentences))]}"
        seen.add(content)
        memories.append({"title": passage.title, "content": content})
    return memories


def generate_queries(count: int, corpus: BenchCorpus, *, seed: int = 0) -> tuple[list[str], dict[str, Any]]:
    """``count`` queries: BEIR query texts sampled by ``seed``, topped up with content-word queries if needed.

    Returns:
        The queries, and a JSON-ready note of their source (counts per corpus, content-word count, sha256).
    """
    if count < 1:
        raise InputError(f"The number of queries must be at least 1, not {count}.")
    rng = random.Random(f"queries-{seed}")
    distinct = list(dict.fromkeys(corpus.queries))
    chosen = rng.sample(distinct, min(count, len(distinct)))
    texts = [text for _, text in chosen]
    per_corpus: dict[str, int] = {}
    for name, _ in chosen:
        per_corpus[name] = per_corpus.get(name, 0) + 1
    extra = 0
    taken = set(texts)
    attempts = 0
    while len(texts) < count:
        attempts += 1
        if attempts > 100 * count:
            raise InputError(f"The corpus under {corpus.root} is too small for {count} distinct queries.")
        passage = corpus.passages[rng.randrange(len(corpus.passages))]
        sentence = passage.sentences[rng.randrange(len(passage.sentences))]
        words = list(dict.fromkeys(w.lower() for w in _CONTENT_WORD.findall(sentence) if w.lower() not in STOPWORDS))
        if len(words) < 3:
            continue
        query = " ".join(rng.sample(words, 3))
        if query in taken:
            continue
        taken.add(query)
        texts.append(query)
        extra += 1
    source = {
        "kind": "beir-queries" if not extra else "beir-queries+content-words",
        "beir_per_corpus": per_corpus,
        "content_word_queries": extra,
        "sha256": fingerprint(texts),
    }
    return texts, source


def fingerprint(texts: Iterable[str | dict[str, str]]) -> str:
    """sha256 of the texts in order (titles and contents of memories), to identify a generated set in reports."""
    digest = hashlib.sha256()
    for item in texts:
        if isinstance(item, dict):
            digest.update(item.get("title", "").encode("utf-8") + b"\x1f" + item["content"].encode("utf-8"))
        else:
            digest.update(item.encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()
