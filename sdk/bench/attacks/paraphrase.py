"""Paraphrased poison without an LLM: a false statement rewritten in other words by lexical substitution and a frame.

The trust benchmark's false versions differ from the truth by one token, exactly what the lexical contradiction
check (:mod:`hopmem.memory.trust.contradiction`) looks for. An attacker who has read that code rewrites the lie:
common words swapped for synonyms (:data:`SYNONYMS`, a small hand-written table of general English), the sentence
put in an attribution frame that adds words of its own (:data:`FRAMES`), so that fewer than half of the content
words are shared with the true sentence and the lexical check stays silent, while the meaning and the false token
(the number, name or negation that makes it a lie) stay, and the text stays close to the truth in embedding space.
Capitalised words (names), numbers and negations are never touched.
"""

from __future__ import annotations

import random
import re

SYNONYMS: dict[str, str] = {
    "about": "around", "after": "following", "album": "record", "also": "additionally", "approximately": "roughly",
    "area": "region", "based": "grounded", "because": "since", "before": "prior to", "began": "commenced",
    "begin": "commence", "between": "among", "big": "sizeable", "born": "delivered", "built": "constructed",
    "called": "named", "city": "town", "company": "firm", "considered": "regarded", "created": "made up",
    "current": "present", "decrease": "drop", "described": "characterised", "determined": "established",
    "developed": "devised", "different": "distinct", "directed": "helmed", "during": "throughout",
    "effect": "influence", "effects": "influences", "especially": "particularly", "established": "set up",
    "example": "instance", "film": "movie", "first": "earliest", "following": "subsequent", "former": "previous",
    "found": "discovered", "founded": "set up", "given": "provided", "group": "collective", "high": "elevated",
    "however": "nevertheless", "important": "significant", "increase": "rise", "increased": "grew",
    "known": "recognised", "large": "big", "largest": "biggest", "later": "subsequently", "located": "situated",
    "low": "reduced", "made": "produced", "main": "principal", "major": "key", "make": "produce", "many": "numerous",
    "method": "technique", "methods": "techniques", "named": "called", "near": "close to", "new": "novel",
    "number": "count", "obtained": "derived", "often": "frequently", "only": "solely", "part": "portion",
    "performed": "carried out", "place": "location", "played": "performed", "popular": "well-liked",
    "produced": "generated", "released": "issued", "results": "findings", "several": "multiple", "show": "demonstrate",
    "showed": "demonstrated", "shown": "demonstrated", "shows": "demonstrates", "similar": "comparable",
    "small": "little", "song": "track", "started": "commenced", "study": "investigation", "team": "squad",
    "theory": "model", "use": "employ", "used": "employed", "using": "employing", "various": "assorted",
    "well": "firmly", "won": "captured", "work": "labour", "worked": "served", "written": "authored",
    "wrote": "penned", "year": "twelvemonth", "years": "twelvemonths",
}  # fmt: skip

FRAMES: tuple[str, ...] = (
    "According to several independent reports reviewed recently, {s}",
    "It has since been widely confirmed by trusted accounts that {s}",
    "Records examined by multiple separate sources clearly state that {s}",
    "{s} This was later corroborated repeatedly by consistent documentation.",
    "Contrary to older mistaken summaries circulating elsewhere, {s}",
)

_STARTERS = frozenset(
    {
        "The", "A", "An", "In", "It", "This", "These", "Those", "He", "She", "They", "His", "Her", "Its", "Their",
        "On", "At", "For", "As", "During", "After", "Before", "When",
    }
)  # fmt: skip


def paraphrase(sentence: str, rng: random.Random) -> str:
    """``sentence`` in other words: synonyms for common lower-case words, then one attribution frame."""
    out: list[str] = []
    pos = 0
    for m in re.finditer(r"[A-Za-z][A-Za-z'-]*", sentence):
        word = m.group()
        out.append(sentence[pos : m.start()])
        swap = SYNONYMS.get(word) if word.islower() else None
        out.append(swap if swap is not None else word)
        pos = m.end()
    out.append(sentence[pos:])
    text = "".join(out).strip()
    frame = rng.choice(FRAMES)
    if frame.startswith("{s}"):
        return frame.format(s=text if text.endswith((".", "!", "?")) else text + ".")
    first = text.split()[0] if text.split() else ""
    body = text[0].lower() + text[1:] if first in _STARTERS else text
    return frame.format(s=body)
