"""Build FTS5 MATCH expressions from untrusted text.

User text never reaches MATCH as syntax: it is cut into word tokens, each token is emitted as a double-quoted FTS5
string, and the strings are joined with OR. Quotes, parentheses, ``NEAR``, ``AND``/``OR``/``NOT``, column filters and
``*`` are therefore plain words or dropped, and no input can raise a syntax error.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+", re.UNICODE)

# Words so common that they only slow an OR query down; bm25 would give them almost no weight anyway.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "she",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "you",
        "your",
        "do",
        "does",
        "did",
        "how",
        "can",
        "could",
        "would",
        "should",
        "about",
    ]
)


def query_tokens(text: str, *, max_tokens: int = 64) -> list[str]:
    """The distinct word tokens of ``text`` (lower-cased, stopwords dropped unless nothing else is left)."""
    seen: dict[str, None] = {}
    for token in _TOKEN.findall(text.lower()):
        token = token.strip("_")
        if token:
            seen.setdefault(token, None)
    tokens = list(seen)
    content = [t for t in tokens if t not in STOPWORDS]
    return (content or tokens)[:max_tokens]


def build_match_query(text: str, *, max_tokens: int = 64) -> str | None:
    """An FTS5 expression matching any token of ``text``, or None when ``text`` has no word at all."""
    tokens = query_tokens(text, max_tokens=max_tokens)
    if not tokens:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in tokens)
