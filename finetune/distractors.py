"""Each question's own distractor paragraphs, for data sets built in HotpotQA's distractor setting.

In HotpotQA's distractor setting every question comes with ten paragraphs: its two gold (supporting) ones and eight
hard distractors that a bigram TF-IDF search picked for the question. A BEIR folder built from such questions (the
shared ``hotpotqa-extra`` and ``hotpotqa``) stores each question's paragraphs next to each other in ``corpus.jsonl``
and names the gold ones in the query's ``metadata.supporting``; it has no field naming the distractors. They are
the best hard negatives such data offers, so this module recovers them from the layout: the corpus lines within
``window`` lines of the question's gold paragraphs, minus every query's gold paragraphs, ranked by how many of the
question's words (3+ letters) they share (the distractors were chosen for exactly that) and the closest kept.

This is a heuristic and says so: a question whose gold paragraphs lie more than ``3 * window`` lines apart is not in
such a layout and gets none, as does any folder whose queries carry no ``metadata.supporting`` (Cranfield). On the
shared ``hotpotqa-extra`` (500 questions) 8 questions get none and 97% of the paragraphs chosen (8 per question) lie
between the neighbouring questions' gold paragraphs (`python -m hopmem.finetune.distractors DIR` prints both).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from hopmem.memory.datasets.beir import iter_corpus, load_queries

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 9
"""Lines on either side of a question's gold paragraphs searched for its distractors (a question stores 10)."""

_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2}


def own_distractors(
    root: Path | str, query_ids: set[str] | None = None, *, per_query: int = 8, window: int = DEFAULT_WINDOW
) -> dict[str, list[str]]:
    """Per query (of ``query_ids``, or all), up to ``per_query`` ids of its own distractor paragraphs, best first.

    Args:
        root: a BEIR folder.
        query_ids: the queries wanted (None: every query with ``metadata.supporting``).
        per_query: distractors kept per query.
        window: corpus lines searched on either side of the query's gold paragraphs.

    Returns:
        Only queries that have some; an empty dict for a folder without ``metadata.supporting``.
    """
    root = Path(root)
    queries = [q for q in load_queries(root / "queries.jsonl") if query_ids is None or q.id in query_ids]
    supporting = {
        q.id: [str(d) for d in q.metadata.get("supporting") or []]
        for q in queries
        if isinstance(q.metadata.get("supporting"), list)
    }
    if not supporting or per_query <= 0:
        return {}
    docs = list(iter_corpus(root / "corpus.jsonl"))
    line = {d.id: i for i, d in enumerate(docs)}
    every_gold = {str(d) for q in load_queries(root / "queries.jsonl") for d in q.metadata.get("supporting") or []}
    cached: dict[int, set[str]] = {}

    def words_of(i: int) -> set[str]:
        if i not in cached:
            cached[i] = _words(f"{docs[i].title} {docs[i].text}")
        return cached[i]

    out: dict[str, list[str]] = {}
    for q in queries:
        gold = [line[d] for d in supporting.get(q.id, []) if d in line]
        if not gold:
            continue
        lo, hi = max(0, min(gold) - window), min(len(docs) - 1, max(gold) + window)
        if hi - lo > 3 * window:
            continue
        centre = sum(gold) / len(gold)
        asked = _words(q.text)
        pool = [i for i in range(lo, hi + 1) if docs[i].id not in every_gold]
        pool.sort(key=lambda i: (-len(asked & words_of(i)), abs(i - centre), i))
        if pool:
            out[q.id] = [docs[i].id for i in pool[:per_query]]
    return out


def layout_check(root: Path | str, per_query: int = 8) -> dict[str, float]:
    """How plausible the chosen distractors are: the share lying strictly between the previous and the next query's
    gold paragraphs (in file order), and how many queries got none. A check of the heuristic, not a proof."""
    root = Path(root)
    queries = [q for q in load_queries(root / "queries.jsonl") if isinstance(q.metadata.get("supporting"), list)]
    line = {d.id: i for i, d in enumerate(iter_corpus(root / "corpus.jsonl"))}
    chosen = own_distractors(root, per_query=per_query)
    inside = total = 0
    for n, q in enumerate(queries):
        picked = chosen.get(q.id, [])
        before = queries[n - 1].metadata["supporting"] if n else []
        after = queries[n + 1].metadata["supporting"] if n + 1 < len(queries) else []
        prev_gold = [line[d] for d in before if d in line]
        next_gold = [line[d] for d in after if d in line]
        lo, hi = max(prev_gold, default=-1), min(next_gold, default=len(line))
        inside += sum(lo < line[d] < hi for d in picked)
        total += len(picked)
    return {
        "queries": len(queries),
        "queries_without": sum(q.id not in chosen for q in queries),
        "chosen": total,
        "share_between_neighbours": round(inside / total, 4) if total else float("nan"),
    }


if __name__ == "__main__":  # pragma: no cover - a check run by hand
    sys.stdout.write(f"{layout_check(sys.argv[1])}\n")
