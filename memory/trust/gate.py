"""The write gate: decides which writes are quarantined, and records the trust signals a write gives, failing closed.

Before a batch of memories is written, :meth:`WriteGate.plan` decides for each item whether it is stored visible or
held in quarantine (stored, invisible to every read, listed for review):

* the writing agent's trust is below ``trust_threshold``;
* the agent is in a write burst (more than ``trust_burst_max_writes`` writes within ``trust_burst_window_s``): the
  writes beyond the limit are held;
* the text contradicts a memory trusted at least ``trust_reference_level`` (at least ``trust_threshold`` and written
  by the user or a vouched-for agent when the writer is a fresh identity: a newcomer may not overrule an established
  writer) that another writer stored (a close embedding neighbour that disagrees on a number, a negation or a name,
  :mod:`hopmem.memory.trust.contradiction`), or may contradict one in other words (the paraphrase tier, from cosine
  ``trust_semantic_similarity``: held for review without a trust signal, because the evidence is weaker);
* an established (vouched-for) writer contradicts another writer's memory trusted at least ``trust_threshold`` but
  below the reference level: held for review without a trust signal (trust farmed elsewhere must not overrule a
  memory unseen; the user settles it).

A held write's reason names every cause, and always the memory it contradicts when there is one, so that the
quarantine list can show the two side by side (:func:`hopmem.memory.trust.quarantine.list_quarantine`). The user's
own writes (no agent) are not gated. Then :meth:`WriteGate.hook` runs inside the write's transaction and
records what the write says about trust: the burst and contradiction signals, and a confirmation for the writer of a
memory that another identity wrote again word for word. Both commit with the memories or not at all.

Failing closed: an exception anywhere in the trust code blocks the whole write with :class:`WriteBlockedError`;
nothing is written (see :meth:`hopmem.Memory.add`). With the gate disabled (``trust_gate = false``) every write is
stored visible, but the signals are still recorded, so trust is still measured.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hopmem.memory.errors import HopmemError
from hopmem.memory.records import AddResult, MemoryInput, MemoryRecord
from hopmem.memory.store import MemoryStore, WriteHook
from hopmem.memory.trust.contradiction import contradiction, paraphrase_contradiction
from hopmem.memory.trust.model import TrustModel

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.memory.vectors.base import VectorIndex

log = logging.getLogger(__name__)

NEIGHBOURS = 5
"""Nearest memories each gated write is compared with for contradictions."""


class WriteBlockedError(HopmemError):
    """A write was refused because the trust checks could not vouch for it (they failed, or forbid it)."""


@dataclass
class Contradiction:
    """Item ``position`` of a batch contradicts the trusted memory ``memory_id`` (``why``: numbers, negation, names).

    ``paraphrase`` marks a finding of the paraphrase tier: the write is held, but no trust signal is recorded.
    """

    position: int
    memory_id: int
    why: str
    similarity: float
    paraphrase: bool = False
    review_only: bool = False

    @property
    def signals(self) -> bool:
        """Whether the finding is strong enough to count against the writer (else it only holds the write)."""
        return not (self.paraphrase or self.review_only)


@dataclass
class GatePlan:
    """The gate's decision for one batch: a quarantine reason (or None) per item, and what it detected."""

    hold: list[str | None]
    trust: dict[str, float] = field(default_factory=dict)
    contradictions: list[Contradiction] = field(default_factory=list)
    burst_limit: dict[str, int] = field(default_factory=dict)

    @property
    def held(self) -> int:
        return sum(reason is not None for reason in self.hold)


class WriteGate:
    """Plans and books the trust side of writes into one store.

    Args:
        store: the store written to.
        model: the trust model over the same store.
        index: the vector index, for the contradiction check (None skips that check).
        enabled: False stores every write visible (the signals are still recorded).
    """

    def __init__(
        self, store: MemoryStore, model: TrustModel, index: VectorIndex | None, *, enabled: bool = True
    ) -> None:
        self.store = store
        self.model = model
        self.index = index
        self.enabled = enabled

    def plan(
        self,
        tenant: str,
        items: Sequence[MemoryInput],
        vectors: NDArray[np.float32] | None,
        *,
        now: float | None = None,
    ) -> GatePlan:
        """Decide which of ``items`` are quarantined (reads only; raises on any internal failure)."""
        now = time.time() if now is None else now
        params = self.model.params
        writers = sorted({i.agent_id for i in items if i.agent_id is not None})
        trust = {a: t.mean for a, t in self.model.agents_trust(tenant, writers, now=now).items()}
        plan = GatePlan(hold=[None] * len(items), trust=trust)
        in_window = {a: self.model.window_writes(tenant, a, now) for a in writers}
        for position, item in enumerate(items):
            agent = item.agent_id
            if agent is None:
                continue
            in_window[agent] += 1
            if trust[agent] < params.threshold:
                plan.hold[position] = f"agent {agent!r} has trust {trust[agent]:.2f}, below {params.threshold:.2f}"
            elif in_window[agent] > params.burst_max_writes:
                plan.burst_limit[agent] = params.burst_max_writes
                plan.hold[position] = (
                    f"write burst: agent {agent!r} wrote over {params.burst_max_writes} memories"
                    f" in {params.burst_window_s:.0f} s"
                )
        if vectors is not None and self.index is not None:
            plan.contradictions = self._contradictions(tenant, items, vectors)
            for found in plan.contradictions:
                verb = "may contradict" if found.paraphrase else "contradicts"
                why = f"{found.why}; below the reference level, for review" if found.review_only else found.why
                conflict = f"{verb} trusted memory {found.memory_id} ({why})"
                held = plan.hold[found.position]
                plan.hold[found.position] = conflict if held is None else f"{held}; {conflict}"
        if not self.enabled:
            plan.hold = [None] * len(items)
        return plan

    def contradicted(self, tenant: str, item: MemoryInput, vector: NDArray[np.float32]) -> Contradiction | None:
        """The trusted memory of another writer that ``item`` would contradict, if any (reads only).

        For a change of an existing memory's text: the same contradiction check a new write gets, without the trust
        and burst rules (a change is not a new write) and without signals. The changed memory's current text counts
        like any other, unless ``item``'s agent wrote that text (:func:`text_writers`): revising one's own statement
        is no contradiction of a trusted source.
        """
        if not self.enabled or self.index is None or item.agent_id is None:
            return None
        found = self._contradictions(tenant, [item], np.asarray(vector, np.float32).reshape(1, -1))
        return found[0] if found else None

    def _contradictions(
        self, tenant: str, items: Sequence[MemoryInput], vectors: NDArray[np.float32]
    ) -> list[Contradiction]:
        """The gated items that contradict a trusted memory of another writer."""
        params = self.model.params
        assert self.index is not None
        candidates: dict[int, list[tuple[int, float]]] = {}
        for position, item in enumerate(items):
            if item.agent_id is None:
                continue
            hits = self.index.search(tenant, np.asarray(vectors[position], np.float32), NEIGHBOURS)
            floor = min(params.contradiction_similarity, params.semantic_similarity)
            close = [(h.memory_id, h.score) for h in hits if h.score >= floor]
            if close:
                candidates[position] = close
        if not candidates:
            return []
        ids = sorted({mid for close in candidates.values() for mid, _ in close})
        records = {r.id: r for r in self.store.get(tenant, ids)}
        trusts = self.model.memory_trusts(tenant, list(records))
        agents = {str(items[p].agent_id) for p in candidates} | {
            str(r.agent_id) for r in records.values() if r.agent_id
        }
        vouched = {a: self.model.is_vouched(t) for a, t in self.model.agents_trust(tenant, sorted(agents)).items()}
        found: list[Contradiction] = []
        for position, close in candidates.items():
            item = items[position]
            fresh = not vouched[str(item.agent_id)]
            for mid, score in close:
                record = records.get(mid)
                if record is None:
                    continue
                trust = trusts.get(mid, 0.0)
                # An established writer contradicting a memory above the threshold that is not yet a reference is
                # held for the user to settle, without a trust signal: trust earned elsewhere (farming) must not
                # overrule another writer's memory unseen.
                review_only = not self._reference(record, trust, fresh, vouched)
                if review_only and (fresh or trust < params.threshold):
                    continue
                writers = text_writers(record)
                if item.agent_id in writers:
                    continue  # an agent revising its own statement is not contradicting a trusted source
                lexical = score >= params.contradiction_similarity
                why = contradiction(item.content, record.content) if lexical else None
                if why is not None:
                    found.append(Contradiction(position, mid, why, float(score), review_only=review_only))
                    break
                if score >= params.semantic_similarity:
                    why = paraphrase_contradiction(item.content, record.content, float(score))
                    if why is not None:
                        tier = f"paraphrase: {why}"
                        found.append(Contradiction(position, mid, tier, float(score), True, review_only))
                        break
        return found

    def _reference(self, record: MemoryRecord, trust: float, fresh: bool, vouched: dict[str, bool]) -> bool:
        """Whether ``record`` (of memory trust ``trust``) is a truth a write may not contradict: trusted at the
        reference level; or, against a fresh identity that nobody has vouched for, above the threshold and written by
        the user or an agent others have vouched for (a newcomer may not overrule an established writer)."""
        params = self.model.params
        if trust >= params.reference_level:
            return True
        established = record.agent_id is None or vouched.get(str(record.agent_id), False)
        return fresh and trust >= params.threshold and established

    def hook(self, tenant: str, items: Sequence[MemoryInput], plan: GatePlan) -> WriteHook:
        """The bookkeeping to run inside the write transaction of ``items`` (see :data:`WriteHook`)."""

        def book(conn: sqlite3.Connection, results: list[AddResult], now: float) -> None:
            added: dict[str, int] = {}
            for item, result in zip(items, results, strict=True):
                if result.status == "added" and item.agent_id is not None:
                    added[item.agent_id] = added.get(item.agent_id, 0) + 1
            limit = self.model.params.burst_max_writes
            for agent, n in sorted(added.items()):
                total = self.model.count_writes(conn, tenant, agent, n, now)
                if total > limit >= total - n:
                    self.model.record(conn, tenant, agent, "burst", detail={"writes": total}, now=now)
            for found in plan.contradictions:
                item, result = items[found.position], results[found.position]
                if item.agent_id is None or result.status != "added" or not found.signals:
                    continue
                self.model.record(
                    conn,
                    tenant,
                    item.agent_id,
                    "contradiction",
                    memory_id=result.id,
                    detail={"contradicts": found.memory_id, "why": found.why, "similarity": round(found.similarity, 4)},
                    now=now,
                )
            for item, result in zip(items, results, strict=True):
                if result.status == "duplicate" and not result.quarantined:
                    _confirm_by_rewrite(self.model, conn, tenant, item.agent_id, result.id, now)

        return book


def text_writers(record: MemoryRecord) -> set[str | None]:
    """Who wrote ``record``'s text: its writer and whoever changed its content since. An edit of its tags, title or
    importance does not make an agent a writer of the text (else tagging a trusted memory would license contradicting
    it)."""
    changed = {
        e.get("agent") for e in record.provenance if e.get("action") != "update" or "content" in (e.get("fields") or ())
    }
    return changed | {record.agent_id}


def _confirm_by_rewrite(
    model: TrustModel, conn: sqlite3.Connection, tenant: str, by: str | None, memory_id: int, now: float
) -> None:
    """Someone wrote memory ``memory_id``'s text again: a confirmation for its writer, unless it is the writer."""
    row = conn.execute("SELECT agent_id FROM memories WHERE tenant = ? AND id = ?", (tenant, memory_id)).fetchone()
    if row is None or row[0] is None or row[0] == by:
        return
    scale = model.confirmation_scale(tenant, by, now=now)
    if scale > 0:
        model.record(
            conn, tenant, str(row[0]), "confirmed", by=by, scale=scale, memory_id=memory_id,
            detail={"via": "rewrite"}, now=now,
        )  # fmt: skip
