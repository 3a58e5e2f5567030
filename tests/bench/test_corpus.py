"""The benchmark corpus: deterministic, N distinct memories made of real sentences, real queries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hopmem.bench.corpus import (
    fingerprint,
    generate_memories,
    generate_queries,
    load_corpus,
    resolve_data_root,
    split_sentences,
)
from hopmem.memory.errors import InputError


def test_split_sentences_handles_prose_abbreviations_and_cranfield_style() -> None:
    prose = (
        "Teutberga( died 11 November 875) was a queen of Lotharingia.  She was a sister of Hucbert, "
        "the abbot of St. Maurice's Abbey. J. R. R. Tolkien wrote it."
    )
    assert split_sentences(prose) == [
        "Teutberga( died 11 November 875) was a queen of Lotharingia.",
        "She was a sister of Hucbert, the abbot of St. Maurice's Abbey.",
        "J. R. R. Tolkien wrote it.",
    ]
    cranfield = "the boundary layer is thin . an experimental study of a wing was made . ok ."
    assert split_sentences(cranfield) == ["the boundary layer is thin .", "an experimental study of a wing was made ."]


def _is_sentences(text: str, sentences: set[str]) -> bool:
    """Whether ``text`` is corpus sentences joined by single spaces (a split point is a space between them)."""
    reachable = {0}
    for end in [i for i, ch in enumerate(text) if ch == " "] + [len(text)]:
        if any(text[start:end] in sentences for start in reachable if start < end):
            reachable.add(end + 1)
    return len(text) + 1 in reachable


def test_memories_are_deterministic_distinct_and_made_of_real_sentences(shared_data: Path) -> None:
    corpus = load_corpus(shared_data)
    first = generate_memories(500, corpus, seed=7)
    assert first == generate_memories(500, load_corpus(shared_data), seed=7)
    assert fingerprint(first) != fingerprint(generate_memories(500, corpus, seed=8))
    assert len(first) == 500
    assert len({m["content"] for m in first}) == 500
    sentences = {s for p in corpus.passages for s in p.sentences}
    titles = {p.title for p in corpus.passages}
    for memory in first:
        assert memory["title"] in titles
        assert _is_sentences(memory["content"], sentences), memory
    assert {p.corpus for p in corpus.passages} == {"cranfield", "hotpotqa", "2wiki-corpus"}


def test_duplicate_draws_get_another_sentence(tmp_path: Path) -> None:
    root = tmp_path / "data" / "cranfield"
    root.mkdir(parents=True)
    passage = {"_id": "1", "title": "T", "text": "The first sentence is here. The second sentence is here."}
    (root / "corpus.jsonl").write_text(json.dumps(passage) + "\n")
    corpus = load_corpus(tmp_path / "data")
    memories = generate_memories(20, corpus, seed=0)
    assert len({m["content"] for m in memories}) == 20


def test_queries_are_beir_query_texts_and_deterministic(shared_data: Path) -> None:
    corpus = load_corpus(shared_data)
    queries, source = generate_queries(200, corpus, seed=0)
    again, _ = generate_queries(200, load_corpus(shared_data), seed=0)
    assert queries == again and len(set(queries)) == 200
    assert source["kind"] == "beir-queries" and source["content_word_queries"] == 0
    known = {text for _, text in corpus.queries}
    assert set(queries) <= known
    assert sum(source["beir_per_corpus"].values()) == 200


def test_queries_top_up_with_content_words_when_data_has_too_few(shared_data: Path) -> None:
    corpus = load_corpus(shared_data, corpora=["2wiki-corpus"])
    queries, source = generate_queries(30, corpus, seed=1)
    assert len(set(queries)) == 30 and source["content_word_queries"] == 30
    assert all(len(q.split()) == 3 for q in queries)


def test_missing_data_root_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        resolve_data_root(tmp_path)
    message = str(info.value)
    assert "\n" not in message and message.endswith(".") and not re.search(r"[.?!] [A-Z]", message)
    assert "--data" in message
