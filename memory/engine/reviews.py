"""Reviews: feedback, erasure, and the trust and quarantine rules the user and agents act through.

Policy lives here, with its data: who may approve or reject a held write (only the user), which erase counts as a
correction of an agent (the user's, of an agent's fresh memory), and when feedback retrains the learned ranker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hopmem.memory import validation as check
from hopmem.memory.behaviour import FEEDBACK_KINDS
from hopmem.memory.engine.core import EngineCore
from hopmem.memory.errors import InputError
from hopmem.memory.records import EraseReport
from hopmem.memory.trust.corrections import delete_hook
from hopmem.memory.trust.model import AgentTrust
from hopmem.memory.trust.quarantine import approve as approve_held
from hopmem.memory.trust.quarantine import held_writers, list_quarantine, rejection_hook


class ReviewsMixin(EngineCore):
    """Feedback, erase, trust and quarantine; see :class:`~hopmem.memory.engine.MemoryEngine`."""

    def feedback(self, memory_id: int, kind: str = "up", *, query: str | None = None, agent: str | None = None) -> int:
        """Record feedback (``up``, ``down`` or ``click``) on a memory, in the behavioural file.

        It is also a trust signal about the memory's writer: ``up`` confirms (``click`` half as much), ``down`` counts
        against, weighted by who gives it (the user, or an agent in proportion to its trust). Feedback an agent gives
        on its own memory changes nothing. The event commits after the signal: if the signal fails, neither is kept
        (:meth:`~hopmem.memory.behaviour.BehaviourStore.recording`).
        """
        mid = check.memory_id(memory_id)
        if kind not in FEEDBACK_KINDS:
            raise InputError(f"Unknown feedback {kind!r}; use one of {', '.join(FEEDBACK_KINDS)}.")
        who = self._identity(agent)
        record = self.get(mid)
        with self.behaviour.recording(self.tenant, mid, kind, query=query, agent_id=who) as event:
            if record.agent_id is not None:
                scale = self.trust.confirmation_scale(self.tenant, who)
                if kind == "down":
                    self.trust.signal(self.tenant, record.agent_id, "feedback_down", by=who, scale=scale, memory_id=mid)
                else:
                    scale *= 1.0 if kind == "up" else 0.5
                    self.trust.signal(self.tenant, record.agent_id, "confirmed", by=who, scale=scale, memory_id=mid)
        ranker = self._learned_ranker()
        if ranker is not None:
            events = self.behaviour.count(self.tenant)
            due = events - ranker.trained_events(self.tenant) >= self.config.ltr_retrain_every
            if events >= self.config.ltr_min_feedback and due:
                self.train_ranker()
        return event

    def erase(
        self,
        ids: int | Sequence[int] | None = None,
        *,
        agent: str | None = None,
        tags: Sequence[str] | None = None,
        source_class: str | Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        everything: bool = False,
    ) -> EraseReport:
        """Erase memories for good: by id, by filter (agent, tags, source class, time range), or the whole tenant.

        Selectors combine: ids and a filter erase the listed ids that pass the filter. ``everything=True`` erases
        the tenant (memories, documents, agents, feedback, conversations) and takes no other selector. The user's
        erase of agents' fresh memories counts against them (:mod:`hopmem.memory.trust.corrections`); the signal
        commits with the erase.

        An agent's handle erases only that agent's own memories: ``everything``, another writer's ids or a filter on
        another agent are refused (an agent key must not be able to wipe what others wrote); a filter on an agent's
        handle selects among its own memories.

        Raises:
            InputError: on bad selectors, or a selection beyond the agent's own memories on an agent's handle.
        """
        if self.agent is not None:
            agent = self._own_erase_selection(ids, agent, everything)
        eraser = self._eraser()
        try:
            if everything:
                if ids is not None or any(v is not None for v in (agent, tags, source_class, since, until)):
                    raise InputError("Erasing everything takes no other selector; drop the ids and filters.")
                if self._ranker is not None:
                    self._ranker.forget(self.tenant)
                return eraser.erase_tenant(self.tenant)
            filters = check.search_filter(
                agent=agent, tags_=tags, source_classes=source_class, since=since, until=until
            )
            if ids is None and filters.empty:
                raise InputError("Say what to erase: ids, a filter (agent, tags, source class, time), or everything.")
            chosen = (
                self.store.filtered_ids(self.tenant, filters, include_quarantined=True) if not filters.empty else None
            )
            if ids is not None:
                wanted = [check.memory_id(i) for i in ([ids] if isinstance(ids, int | str) else ids)]
                chosen = wanted if chosen is None else sorted(set(wanted) & set(chosen))
            return eraser.erase_ids(
                self.tenant,
                chosen or [],
                reason="ids" if filters.empty else "filter",
                hook=delete_hook(self.trust, self.tenant) if self.agent is None else None,
            )
        finally:
            self._close_extra_indexes(eraser)

    def _own_erase_selection(self, ids: int | Sequence[int] | None, agent: str | None, everything: bool) -> str:
        """The agent filter an agent's handle erases with (its own id); refuses anything beyond its own memories."""
        assert self.agent is not None
        if everything:
            raise InputError(
                f"Only the user can erase the whole tenant; agent {self.agent!r} can erase its own memories by id or "
                "filter."
            )
        named = check.agent_id(agent)
        if named is not None and named != self.agent:
            raise InputError(
                f"Only the user can erase another writer's memories; {self.agent!r} cannot erase {named!r}'s."
            )
        if ids is not None:
            wanted = [check.memory_id(i) for i in ([ids] if isinstance(ids, int | str) else ids)]
            foreign = [
                r.id for r in self.store.get(self.tenant, wanted, include_quarantined=True) if r.agent_id != self.agent
            ]
            if foreign:
                listed = ", ".join(str(i) for i in foreign[:10])
                raise InputError(
                    f"Only the user can erase another writer's memories; memory {listed} was not written by "
                    f"{self.agent!r}, so nothing was erased."
                )
        return self.agent

    def trust_of(self, agent: str | None = None) -> list[AgentTrust]:
        """The trust of ``agent``, or of every agent of the tenant (most trusted first)."""
        if agent is not None:
            return [self.trust.agent_trust(self.tenant, check.agent_id(agent) or "")]
        return self.trust.all_agents(self.tenant)

    def trust_history(self, agent: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The latest trust signals about ``agent`` (oldest first), each with the trust after it."""
        return self.trust.history(self.tenant, check.agent_id(agent) or "", limit=limit)

    def memory_trust(self, ids: Sequence[int]) -> dict[int, float]:
        """The trust of each memory among ``ids``: the minimum along its provenance chain."""
        return self.trust.memory_trusts(self.tenant, [check.memory_id(i) for i in ids])

    def quarantine(self) -> list[dict[str, Any]]:
        """The writes held for review (id, agent, reason, when, title, content, conflict, group), oldest first."""
        return list_quarantine(self.store, self.tenant, group_similarity=self.trust.params.review_group_similarity)

    def _require_user(self, what: str) -> None:
        if self.agent is not None:
            raise InputError(f"Only the user can {what} quarantined memories; use a Memory opened without an agent.")

    def approve(self, ids: int | Sequence[int], *, note: str | None = None) -> list[int]:
        """Release quarantined memories: they become visible, and their writers get an ``approved`` signal.

        Raises:
            InputError: when called on an agent's handle, or an id is not in quarantine.
        """
        self._require_user("approve")
        wanted = [check.memory_id(i) for i in ([ids] if isinstance(ids, int | str) else ids)]
        return approve_held(self.store, self.tenant, wanted, note=note, model=self.trust)

    def reject(self, ids: int | Sequence[int]) -> EraseReport:
        """Erase quarantined memories for good (the one erase path), with a ``rejected`` signal to their writers.

        Raises:
            InputError: when called on an agent's handle, or an id is not in quarantine.
        """
        self._require_user("reject")
        wanted = [check.memory_id(i) for i in ([ids] if isinstance(ids, int | str) else ids)]
        writers = held_writers(self.store, self.tenant, wanted)
        eraser = self._eraser()
        try:
            return eraser.erase_ids(
                self.tenant, wanted, reason="quarantine.reject", hook=rejection_hook(self.trust, self.tenant, writers)
            )
        finally:
            self._close_extra_indexes(eraser)
