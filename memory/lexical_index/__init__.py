"""An in-process bm25 index derived from the FTS5 index: FTS5's own scores, without its per-row cost.

Why: FTS5 answers an OR query by walking the position lists of every matching row and calling ``bm25()`` once per
row; a typical 9-word question matches about a tenth of a store, which costs ~30 ms at 100k memories. This index
holds, per term, the rows that contain it and their weighted term frequency as numpy arrays, so one query is a few
vectorised operations over its terms' postings.

Contract:

* **Tokens are FTS5's.** The postings are read from the store's FTS5 index through an ``fts5vocab`` table of type
  ``instance``; new rows and query words are tokenized by an FTS5 table with the store's own ``tokenize`` option in
  a private in-memory database. Nothing here re-implements a tokenizer.
* **Scores are FTS5's bm25.** k1 = 1.2, b = 0.75, IDF = log((N - n + 0.5) / (n + 0.5)) floored at 1e-6, the
  store's column weights, N and the average row length taken over the whole FTS table (every tenant, as FTS5 does),
  evaluated in float64 in FTS5's order of operations. Rankings therefore equal ``ORDER BY bm25(...), id``, ties
  aside; with integer column weights (the defaults 2 and 1) the scores are the same numbers.
* **Query semantics are** :mod:`hopmem.memory.fts`'s: the distinct word tokens of the text, each one quoted FTS5
  string, ORed. A word that FTS5 splits into several tokens (``foo_bar``) would be a phrase; phrases are not
  handled here: :meth:`LexicalIndex.search` returns None and the caller asks FTS5.
* **Tenant and filters** are applied by SQL to the ranked candidates, with the store's own filter SQL (so the
  visibility rule and every filter mean exactly what they mean for FTS5's path); other tenants' rows are skipped
  in-process before that.
* **Freshness.** Before each search the index compares FTS5's structure record (rewritten by every write to the
  FTS index) and the audit log's last id with what it saw: equal means nothing changed (one indexed lookup).
  Otherwise it catches up incrementally: rows with a higher id are appended, rows whose text an audited update
  changed are re-read, and rows that disappeared (erase, document replaced) are found by comparing FTS5's row
  count and then the id lists. Afterwards its row count and per-column token totals must equal FTS5's averages
  record; any difference rebuilds the index from FTS5. Writes of other processes and connections are therefore
  picked up like those of this one.
* **Erasure.** Removing rows compacts the postings and drops every term no remaining row holds, and clears the
  cache of tokenized query words, so an erased text leaves no term, id or word behind in this process.

FTS5 stays the source of truth and the fallback (``lexical_backend = "fts5"``).

The parts: :mod:`~hopmem.memory.lexical_index.postings` (the arrays, and reading them from FTS5),
:mod:`~hopmem.memory.lexical_index.tokenizer` (FTS5's tokenizer for new rows and query words),
:mod:`~hopmem.memory.lexical_index.mirror` (the rows and postings kept in step with FTS5); this module holds the
search.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.fts import query_tokens
from hopmem.memory.lexical_index.mirror import SQL_IDS, FtsMirror, StoreFile
from hopmem.memory.records import Hit, SearchFilter
from hopmem.memory.sql_filters import filter_sql, require_tenant

if TYPE_CHECKING:
    from numpy.typing import NDArray

# FTS5's bm25() constants (sqlite/ext/fts5/fts5_aux.c); they are fixed there, so they are fixed here.
K1 = 1.2
B = 0.75
IDF_FLOOR = 1e-6


class LexicalIndex(FtsMirror):
    """bm25 over the store's FTS5 tokens, held in numpy arrays; see the module docstring for the contract.

    Args:
        store: the store whose ``memories_fts`` index this mirrors.
        title_weight: bm25 weight of the title column (the store's).
        content_weight: bm25 weight of the content column (the store's).
        pool_factor: the first SQL check of tenant and filters takes ``k * pool_factor`` ranked candidates.
        busy_timeout_ms: how long the index's own connection waits for a lock.
    """

    def __init__(
        self,
        store: StoreFile,
        *,
        title_weight: float,
        content_weight: float,
        pool_factor: int = 4,
        busy_timeout_ms: int = 10_000,
    ) -> None:
        super().__init__(
            store, title_weight=title_weight, content_weight=content_weight, busy_timeout_ms=busy_timeout_ms
        )
        self.pool_factor = max(1, int(pool_factor))

    def terms(self) -> set[str]:
        """Every term the index holds (after bringing it up to date)."""
        with self._lock:
            self.refresh()
            return set(self._terms)

    def ids(self, tenant: str) -> set[int]:
        """The memory ids of ``tenant`` the index holds (after bringing it up to date)."""
        require_tenant(tenant)
        with self._lock:
            self.refresh()
            code = self._tenant_codes.get(tenant)
            return set() if code is None else {int(i) for i in self._ids[self._tenant == code]}

    def cached_words(self) -> set[str]:
        """The query words whose FTS5 tokens are cached."""
        return self._tokenizer.cached_words()

    def close(self) -> None:
        """Stop a build in progress (SQLite interrupts its query), forget everything, close the connections."""
        self._closing = True
        builder = self._builder
        if builder is not None and builder.is_alive():
            self.conn.interrupt()
            builder.join()
        with self._lock:
            self._clear()
            self._tokenizer.close()
            if self._own_conn:
                self.conn.close()

    def refresh_if_used(self) -> None:
        """Catch up now if the index holds (or is building) anything: after an erase, so that the erased text leaves
        this process at once. An index never used holds nothing and stays unbuilt."""
        if self.ready or self._builder is not None:
            self.refresh()

    def build_in_background(self) -> None:
        """Start the first build in a daemon thread, once; :meth:`search` returns None (FTS5 answers) until then.

        A build reads every token instance of the FTS index (about 0.3 s at 10k memories, seconds at 100k), which a
        one-shot command should not wait for.
        """
        with self._lock:
            idle = self._builder is None or not self._builder.is_alive()
            if idle and not self.ready and self.failed is None and not self._closing:
                self._builder = threading.Thread(target=self.refresh, name="hopmem-lexical-build", daemon=True)
                self._builder.start()

    # ---- search -------------------------------------------------------------------------------------------------

    def search(self, tenant: str, query: str, k: int, *, filters: SearchFilter | None = None) -> list[Hit] | None:
        """The top ``k`` memories of ``tenant`` by FTS5's bm25 for ``query``, or None when FTS5 must answer.

        None means: the index is still being built (the first call starts that, see :meth:`build_in_background`),
        the query holds a word FTS5 reads as a phrase, or the store's connection is inside a transaction (see
        :meth:`refresh`). Scores are negated bm25, higher is better, as the store returns them.
        """
        require_tenant(tenant)
        words = query_tokens(query)
        if not words or k <= 0:
            return []
        if not self.ready:
            self.build_in_background()
            return None
        with self._lock:
            if not self.refresh():
                return None
            phrases = self._tokenizer.term_of(words)
            if any(p is None for p in phrases):
                return None
            code = self._tenant_codes.get(tenant)
            if code is None or not len(self._ids):
                return []
            scores, candidates = self._score([p for p in phrases if p is not None])
            candidates = candidates[self._tenant[candidates] == code]
            return self._top(tenant, candidates, scores, int(k), filters)

    def _score(self, phrases: Sequence[str]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """FTS5's bm25 of every row (0 where no phrase matches), and the rows that match any phrase.

        Each phrase adds ``idf * part`` to the rows holding it, where ``part`` is the length-normalised term
        frequency of fts5Bm25Function, the same expression in the same order of operations; the additions happen
        in phrase order (``bincount`` adds its weights in array order), as FTS5 sums them. ``part`` depends only on
        the postings and the average row length, so once the index is unchanged for two searches in a row it is
        computed for all base postings at once and then only sliced.
        """
        n = len(self._ids)
        rows = float(n)
        avgdl = float(self._total_tokens) / rows
        if self._base_part is None or self._base_part_avgdl != avgdl:
            self._base_part = None
            if avgdl == self._last_avgdl:
                self._base_part = self._part(self._base.slots, self._base.freqs, avgdl)
                self._base_part_avgdl = avgdl
        self._last_avgdl = avgdl
        slot_parts: list[NDArray[np.integer[Any]]] = []
        score_parts: list[NDArray[np.float64]] = []
        for phrase in phrases:
            t = self._term_ids.get(phrase)
            if t is None:
                continue  # no row holds it: FTS5 adds 0 to every row's score
            base_slots, base_freqs = self._base.of(t)
            delta_slots, delta_freqs = self._delta.of(t)
            hits = len(base_slots) + len(delta_slots)
            if not hits:
                continue
            idf = math.log((rows - hits + 0.5) / (hits + 0.5))
            if idf <= 0.0:
                idf = IDF_FLOOR
            if len(base_slots):
                if self._base_part is not None:
                    lo = int(self._base.ptr[t])
                    part = self._base_part[lo : lo + len(base_slots)]
                else:
                    part = self._part(base_slots, base_freqs, avgdl)
                slot_parts.append(base_slots)
                score_parts.append(idf * part)
            if len(delta_slots):
                slot_parts.append(delta_slots)
                score_parts.append(idf * self._part(delta_slots, delta_freqs, avgdl))
        if not slot_parts:
            return np.zeros(n, np.float64), np.zeros(0, np.int64)
        slots = np.concatenate(slot_parts)
        scores = np.asarray(np.bincount(slots, weights=np.concatenate(score_parts), minlength=n), np.float64)
        if min(self.weights) > 0:  # every match then scores above 0 (idf >= 1e-6, frequency > 0)
            # ``scores > 0`` first: numpy finds the true entries of a bool array several times faster than the
            # non-zero entries of a float one (0.12 vs 0.41 ms at 100k rows).
            return scores, np.flatnonzero(scores > 0.0).astype(np.int64)
        return scores, np.flatnonzero(np.bincount(slots, minlength=n) > 0).astype(np.int64)

    def _part(self, slots: NDArray[np.integer[Any]], freqs: NDArray[np.float64], avgdl: float) -> NDArray[np.float64]:
        """fts5Bm25Function's ``(f * (k1 + 1)) / (f + k1 * (1 - b + b * D / avgdl))`` for these postings."""
        length = self._length[slots]
        return (freqs * (K1 + 1.0)) / (freqs + K1 * (1 - B + B * length / avgdl))

    def _top(
        self,
        tenant: str,
        candidates: NDArray[np.int64],
        scores: NDArray[np.float64],
        k: int,
        filters: SearchFilter | None,
    ) -> list[Hit]:
        """The best ``k`` candidates (score descending, then id) that pass the tenant and filters in SQL."""
        if not len(candidates):
            return []
        cand_scores = scores[candidates]
        cand_ids = self._ids[candidates]
        pool = min(len(candidates), k * self.pool_factor)
        if pool < len(candidates):
            kth = cand_scores[np.argpartition(-cand_scores, pool - 1)[pool - 1]]
            first = np.flatnonzero(cand_scores >= kth)  # ties with the pool's last row compete, broken by id
        else:
            first = np.arange(len(candidates))
        ranked = first[np.lexsort((cand_ids[first], -cand_scores[first]))]
        where, params = filter_sql(filters)
        out: list[Hit] = []
        done = 0
        while len(out) < k:
            if done >= len(ranked):
                if len(ranked) == len(candidates):
                    break
                ranked = np.lexsort((cand_ids, -cand_scores))  # rare: the filters rejected most of the pool
            batch = ranked[done : done + (max(pool, SQL_IDS) if done else k)]
            done += len(batch)
            batch_ids: list[int] = cand_ids[batch].tolist()
            passing = self._passing(tenant, batch_ids, where, params)
            out.extend(Hit(i, s) for i, s in zip(batch_ids, cand_scores[batch].tolist(), strict=True) if i in passing)
        return out[:k]

    def _passing(self, tenant: str, ids: Sequence[int], where: str, params: Sequence[object]) -> set[int]:
        """Which of ``ids`` are memories of ``tenant`` that pass the filter SQL (checked in SQLite, not here)."""
        passing: set[int] = set()
        for start in range(0, len(ids), SQL_IDS):
            part = ids[start : start + SQL_IDS]
            marks = ",".join("?" * len(part))
            passing.update(
                int(r[0])
                for r in self.conn.execute(
                    f"SELECT m.id FROM memories m WHERE m.tenant = ? AND m.id IN ({marks}){where}",
                    (tenant, *part, *params),
                )
            )
        return passing
