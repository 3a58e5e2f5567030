"""A cheap contradiction test between two near-identical statements.

The write gate (:mod:`hopmem.memory.trust.gate`) calls it only for pairs whose embeddings are already close (cosine
at least ``trust_contradiction_similarity``): two texts that say nearly the same thing. They *contradict* when,
with most of their other words shared, they disagree on what a poisoner changes to turn a fact into a falsehood:

* a number: each text states a value the other lacks (``1921`` vs ``1912``, ``3.5`` vs ``35``, ``5th`` vs ``8th``,
  ``1940s`` vs ``1930s``; counted with repeats, so ``from 1959 to 1962`` vs ``from 1959 to 1959`` is a change too),
* a negation (one says ``not``/``never``/``no``, the other does not),
* a name: each text has a capitalised word inside a sentence that the other lacks, as when one city or person is
  swapped for another (counted with repeats too: ``Mato Nikolai do Sul ... Mato Grosso do Sul`` swaps one of two).

Numbers and names must be *swapped*, not merely present on one side: a text that says more (a longer window of the
same passage, an added detail with a date or a count) or less than another does not contradict it. When a number on
one side only counted, the numbers rule flagged 70 of the 388 pairs of close neighbours (cosine >= 0.8) among 3,000
honest texts of the concurrency benchmark's corpus, nearly all such overlaps.

**The paraphrase tier** (:func:`paraphrase_contradiction`): an attacker who has read this module rewrites the lie in
other words (synonyms, a frame such as "according to several reports, ...") so that fewer than half of the words
are shared and the rule above stays silent; the meaning, and the swapped value, stay. For such pairs the gate uses
a looser closeness (``trust_semantic_similarity``, cosine 0.7) and asks instead that the two texts be about the same
thing by what a synonym cannot replace: a shared name (months and weekdays aside), a shared number of three
characters or more (a year, a measure; ``ANCHOR_DIGITS``), or at least half of the old text's long words (six
letters or more); then a swapped number or name, or (cosine at least 0.75 and half the old text's content words
kept) a negation, is a possible contradiction. On real text it is weaker evidence than the first tier: two films
released on different dates of one year have that shape, as do two villages that are each the centre of their own
district; so the gate holds such a write for review but records no trust signal against its writer (the user's
rejection does).

Measured with ``python tools/contradiction_rates.py --texts 3000 --seeds 0 1 2`` (all-MiniLM-L6-v2): among the 3,000
honest texts, of the 248 pairs of close neighbours (cosine >= 0.7; 118 at 0.8 or more) the first tier flags 7 and
the paraphrase tier 71 more (before ordinals, decades, repeated names and the number anchor: 4 and 68). Of the 600
facts of the trust benchmark (seeds 0-2) it flags 98% of the plain lies (before: 92%) and 93% of their paraphrases
by ``hopmem bench attack`` (before: 87%; the first tier alone 57%). The paraphrases it misses are mostly short
sentences whose frame pulls the cosine under 0.7.

This is a heuristic, not natural-language inference: it misses contradictions phrased in other words, and it can
flag two true statements that differ only in a number (two measurements of different things, or two records that
differ in an identifier). The benchmark (``hopmem bench trust``) reports its false-quarantine rate on real text.
"""

from __future__ import annotations

import re
from collections import Counter

from hopmem.memory.fts import STOPWORDS

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:st|nd|rd|th|s)?(?![\w])")
"""A number, with an ordinal or decade suffix (``5th``, ``1940s``) kept as part of it."""
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
NEGATIONS: frozenset[str] = frozenset({"not", "no", "never", "none", "nor", "neither", "cannot", "without", "n't"})
MIN_SHARED = 0.5
"""Share of their content words (names and numbers included) two texts must have in common (Jaccard) to be about
one thing: one changed number in a sentence of eight content words leaves 7/9 shared."""


def _numbers(text: str) -> Counter[str]:
    """The numbers of ``text`` with how often each occurs (thousands separators dropped)."""
    return Counter(n.replace(",", "") for n in _NUMBER.findall(text))


def _words(text: str) -> list[str]:
    return _WORD.findall(text.replace("n't", " n't"))


def _names(text: str) -> Counter[str]:
    """Capitalised words that do not start a sentence, a line or a labelled part (``Answer: The ...``), stopwords
    aside (a crude named-entity list), with how often each occurs: a name swapped in one place of two
    (``Mato Nikolai do Sul ... Mato Grosso do Sul``) is a swap although both texts still hold it."""
    names: Counter[str] = Counter()
    for sentence in re.split(r"(?<=[.!?:])\s+|\n+", text):
        words = _words(sentence)
        names.update(w.lower() for w in words[1:] if w[0].isupper() and w.lower() not in STOPWORDS)
    return names


def _content(words: list[str]) -> set[str]:
    return {w.lower() for w in words if w.lower() not in STOPWORDS and w.lower() not in NEGATIONS}


def _negated(words: list[str]) -> bool:
    return any(w.lower() in NEGATIONS or w.lower().endswith("n't") for w in words)


_CALENDAR = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
)
LONG_WORD = 6
"""Letters from which a word counts as a long word: rare enough that a synonym table seldom replaces it."""
ANCHOR_DIGITS = 3
"""Characters from which a number both texts state (a year, a measure) anchors them to one subject as a shared
name does; small counts (``ten``, ``2``) are too common to."""


def _without_calendar(names: Counter[str]) -> Counter[str]:
    return Counter({n: c for n, c in names.items() if n not in _CALENDAR})


def paraphrase_contradiction(new: str, old: str, similarity: float) -> str | None:
    """Why ``new`` may contradict ``old`` although it is worded differently (see the module docstring), or None.

    ``similarity`` is the cosine of their embeddings; the caller has already required the paraphrase tier's floor.
    """
    if new.strip() == old.strip():
        return None
    new_words, old_words = _words(new), _words(old)
    new_names, old_names = _without_calendar(_names(new)), _without_calendar(_names(old))
    old_long = {w for w in _content(old_words) if len(w) >= LONG_WORD}
    new_long = {w for w in _content(new_words) if len(w) >= LONG_WORD}
    shared_long = bool(old_long) and len(old_long & new_long) / len(old_long) >= MIN_SHARED
    new_numbers, old_numbers = _numbers(new), _numbers(old)
    shared_value = any(len(n) >= ANCHOR_DIGITS for n in new_numbers & old_numbers)
    if not (new_names & old_names or shared_long or shared_value):
        return None
    if (new_numbers - old_numbers) and (old_numbers - new_numbers):
        return "numbers"
    if (new_names - old_names) and (old_names - new_names):
        return "names"
    old_content = _content(old_words)
    kept = len(_content(new_words) & old_content) / max(1, len(old_content))
    if similarity >= 0.75 and kept >= MIN_SHARED and _negated(new_words) != _negated(old_words):
        return "negation"
    return None


def contradiction(new: str, old: str) -> str | None:
    """Why ``new`` contradicts ``old`` (``numbers``, ``negation``, ``names``), or None when it does not seem to."""
    if new.strip() == old.strip():
        return None
    new_words, old_words = _words(new), _words(old)
    new_names, old_names = _names(new), _names(old)
    new_numbers, old_numbers = _numbers(new), _numbers(old)
    new_content = _content(new_words) | set(new_numbers)
    old_content = _content(old_words) | set(old_numbers)
    union = new_content | old_content
    if not union or len(new_content & old_content) / len(union) < MIN_SHARED:
        return None
    if (new_numbers - old_numbers) and (old_numbers - new_numbers):
        return "numbers"  # a value swapped for another, not one text stating more than the other
    if _negated(new_words) != _negated(old_words):
        return "negation"
    if (new_names - old_names) and (old_names - new_names):
        return "names"
    return None
