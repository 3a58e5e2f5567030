"""The FTS5 query builder: untrusted text never reaches MATCH as syntax, and its words are still searched."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hopmem.memory.fts import STOPWORDS, build_match_query, query_tokens
from hopmem.memory.records import DocumentInput
from hopmem.memory.store import MemoryStore

EMBEDDER = ("test-fts", 4)

# Pieces of FTS5 query syntax, and words that FTS5 would read as operators if they reached MATCH unquoted.
FTS_SYNTAX = [
    '"',
    '""',
    "'",
    "(",
    ")",
    "NEAR",
    "NEAR(",
    "NEAR/2",
    "near",
    "AND",
    "OR",
    "NOT",
    "*",
    "^",
    "title:",
    "content:",
    "{title content}:",
    "-",
    "+",
    ":",
    ",",
    "{",
    "}",
    "\\",
    "\x00",
    "_",
    "__init__",
    "rowid",
    "memories_fts",
    "apple",
]

_PHRASE = re.compile(r'"((?:[^"]|"")*)"')
_CONTROL_WORD = "zqxjcontrol"

syntaxy_text = st.tuples(
    st.lists(st.one_of(st.sampled_from(FTS_SYNTAX), st.text(max_size=10)), max_size=14),
    st.sampled_from(["", " ", "  ", "\t", "\n"]),
).map(lambda parts: parts[1].join(parts[0]))
any_text = st.one_of(st.text(max_size=80), syntaxy_text)


def _phrases(expression: str) -> list[str]:
    """The quoted strings of an expression of the form '"a" OR "b" OR ...' (fails on anything else)."""
    assert re.fullmatch(r'"(?:[^"]|"")*"(?: OR "(?:[^"]|"")*")*', expression), expression
    return [p.replace('""', '"') for p in _PHRASE.findall(expression)]


def _fold(token: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", token) if not unicodedata.combining(c)).lower()


class _Corpus:
    """A store giving every hypothesis example its own tenant, so that its hits can be compared exactly."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._tenants = itertools.count()

    def add(self, contents: list[str]) -> tuple[str, list[int]]:
        """Store one single-chunk document per content in a fresh tenant; return the tenant and memory ids."""
        tenant = f"t{next(self._tenants)}"
        docs = [DocumentInput(f"doc{i}", "", f"h{i}", [text]) for i, text in enumerate(contents)]
        vectors = [np.ones((1, EMBEDDER[1]), np.float32) for _ in docs]
        self.store.add_documents(tenant, docs, vectors, embedder=EMBEDDER)
        ids, _ = self.store.vectors_after(tenant, 0)  # memory ids, in insertion order
        assert len(ids) == len(contents)
        return tenant, [int(i) for i in ids]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Corpus]:
    with MemoryStore(tmp_path_factory.mktemp("fts") / "fts.sqlite") as store:
        yield _Corpus(store)


@pytest.fixture()
def fruit(tmp_path: Path) -> Iterator[tuple[MemoryStore, dict[str, int]]]:
    """A tenant with a few small documents, keyed by a name for each."""
    texts = {
        "apple": "Apple pie with cinnamon.",
        "pie": "A cherry pie cools on the window sill.",
        "near": "The station is near the river.",
        "and": "Salt and pepper.",
        "title": "The title of the book is long.",
        "other": "Bananas ripen quickly.",
    }
    with MemoryStore(tmp_path / "fruit.sqlite") as store:
        docs = [DocumentInput(name, "", name, [text]) for name, text in texts.items()]
        vectors = [np.ones((1, EMBEDDER[1]), np.float32) for _ in docs]
        store.add_documents("t", docs, vectors, embedder=EMBEDDER)
        ids, _ = store.vectors_after("t", 0)
        yield store, dict(zip(texts, (int(i) for i in ids), strict=True))


def _ids(store: MemoryStore, query: str) -> set[int]:
    return {hit.memory_id for hit in store.search_lexical("t", query, 100)}


# ---- properties of the builder -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_build_match_query_quotes_exactly_the_query_tokens(text: str) -> None:
    tokens = query_tokens(text)
    expression = build_match_query(text)
    if not tokens:
        assert expression is None
        return
    assert expression is not None
    assert _phrases(expression) == tokens
    lowered = text.lower()
    for token in tokens:
        assert re.fullmatch(r"\w+", token), token
        assert not token.startswith("_") and not token.endswith("_")
        assert token in lowered
    assert len(set(tokens)) == len(tokens)
    content = [t for t in tokens if t not in STOPWORDS]
    assert content == tokens or not content


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ('NEAR(apple "pie", 2)', ["near", "apple", "pie", "2"]),
        ("title:kiwi* NOT ^fig", ["title", "kiwi", "not", "fig"]),
        ("-x +y AND z OR w", ["x", "y", "z", "w"]),
        ('"unbalanced (paren', ["unbalanced", "paren"]),
        ("__init__ snake_case", ["init", "snake_case"]),
        ("Café CAFÉ café", ["café"]),
        ("{title content}:plum", ["title", "content", "plum"]),
    ],
)
def test_operator_words_become_plain_lowercase_tokens(text: str, tokens: list[str]) -> None:
    assert query_tokens(text) == tokens


def test_stopwords_are_kept_when_nothing_else_is_left() -> None:
    assert query_tokens("The AND of") == ["the", "and", "of"]
    assert query_tokens("the apple AND the pie") == ["apple", "pie"]


def test_tokens_are_capped_and_keep_their_order() -> None:
    words = [f"w{i}" for i in range(100)]
    assert query_tokens(" ".join(words)) == words[:64]
    assert query_tokens(" ".join(words), max_tokens=3) == ["w0", "w1", "w2"]
    assert _phrases(build_match_query(" ".join(words), max_tokens=2) or "") == ["w0", "w1"]


# ---- against a real FTS5 table -------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=any_text)
def test_search_finds_exactly_the_documents_of_the_query_tokens(corpus: _Corpus, text: str) -> None:
    tokens = query_tokens(text)
    assume(not any(_fold(t).startswith(_CONTROL_WORD[:4]) for t in tokens))
    tenant, ids = corpus.add([*tokens, _CONTROL_WORD])
    hits = corpus.store.search_lexical(tenant, text, 1000)  # never raises, whatever the text
    assert {h.memory_id for h in hits} == set(ids[:-1])
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=st.lists(st.sampled_from(FTS_SYNTAX), max_size=6), sep=st.sampled_from(["", " "]))
def test_operators_around_a_word_still_find_it(corpus: _Corpus, noise: list[str], sep: str) -> None:
    tenant, ids = corpus.add(["kiwi fruit salad", "plain yoghurt"])
    text = " ".join([sep.join(noise[:3]), "kiwi", sep.join(noise[3:])])
    found = {h.memory_id for h in corpus.store.search_lexical(tenant, text, 10)}
    assert ids[0] in found


@pytest.mark.parametrize(
    "query",
    [
        "NOT apple",
        "apple NOT",
        "-apple",
        "+apple",
        '"apple',
        "apple)",
        "(apple",
        "apple*",
        "^apple",
        "title:apple",
        "content:apple",
        "{title}:apple",
        "NEAR(apple cinnamon, 2)",
        "apple AND NOT cinnamon",
        "apple OR",
        "AND apple",
    ],
)
def test_operator_syntax_is_read_as_words(fruit: tuple[MemoryStore, dict[str, int]], query: str) -> None:
    store, docs = fruit
    found = _ids(store, query)
    assert docs["apple"] in found
    assert docs["other"] not in found


def test_the_word_near_is_searchable(fruit: tuple[MemoryStore, dict[str, int]]) -> None:
    store, docs = fruit
    assert _ids(store, "near") == {docs["near"]}
    assert _ids(store, "NEAR") == {docs["near"]}
    assert docs["near"] in _ids(store, "NEAR(river station)")


def test_the_stopword_and_is_searchable_when_it_is_the_whole_query(
    fruit: tuple[MemoryStore, dict[str, int]],
) -> None:
    store, docs = fruit
    assert _ids(store, "and") == {docs["and"]}
    assert _ids(store, "AND") == {docs["and"]}


def test_a_column_name_is_an_ordinary_word(fruit: tuple[MemoryStore, dict[str, int]]) -> None:
    store, docs = fruit
    assert _ids(store, "title") == {docs["title"]}
    assert _ids(store, "title:") == {docs["title"]}


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "!!! ??? ...", '"()*^:', '""', "- + * ^ :", "___", "\x00"])
def test_queries_without_words_return_nothing(fruit: tuple[MemoryStore, dict[str, int]], query: str) -> None:
    store, _ = fruit
    assert build_match_query(query) is None
    assert store.search_lexical("t", query, 10) == []


def test_porter_stemming_applies_to_quoted_tokens(fruit: tuple[MemoryStore, dict[str, int]]) -> None:
    store, docs = fruit
    assert _ids(store, "apples") == {docs["apple"]}
    assert _ids(store, "Cherries") == {docs["pie"]}
    assert _ids(store, "cinnamon cherry") == {docs["pie"], docs["apple"]}
