"""Bayesian trust of the agents that write into a memory, and the trust of each memory derived from it.

Model (one per tenant and agent):

* Trust is a Beta(alpha, beta) distribution over "the next write of this agent is sound"; its mean
  ``alpha / (alpha + beta)`` is the agent's trust. A new agent starts at the **prior** Beta(4, 2) (settings
  ``trust_prior_alpha`` / ``trust_prior_beta``): mean 0.67, above the quarantine threshold (0.5) so that a new agent
  can write, below the reference level (0.75) so that its memories do not yet count as the truth that later writes
  are checked against, and worth six observations, so that one signal moves it but does not decide it.
* **Signals** add evidence: positive ones (``confirmed``: another agent or the user confirmed one of its memories;
  ``approved``: the user approved a quarantined write) add to alpha, negative ones (``feedback_down``,
  ``user_overwrite``, ``user_delete``, ``burst``, ``contradiction``, ``rejected``) add to beta, each with its weight
  (``trust_signal_weights``). A confirmation or down-vote by an agent counts in proportion to that agent's own trust,
  and not at all when it is below the threshold or not yet *vouched* for (others confirmed it less than
  ``trust_vouch_evidence``: fresh identities cannot raise or bury one another); the user's counts
  ``trust_user_weight`` times.
* **No self-confirmation**: a positive signal given by the agent it would raise is ignored (and logged), whatever
  the path (feedback on its own memory, rewriting its own text). Who gives a signal is the identity of the API
  handle in use (``Memory(agent=...)``), never a value read from a memory's metadata.
* **Betrayal discount**: the strong negative signals (``contradiction``, ``rejected``) also remove a share
  (``trust_betrayal_discount``, 0.5) of the positive evidence, because an agent caught writing falsehoods may have
  earned its record in order to spend it (the sleeper attack); the other negative signals only add to beta.
* **Decay**: evidence above or below the prior halves every ``trust_half_life_days`` (30 days), so an agent drifts
  back towards the prior when nothing is heard of it. The decay is applied when the state is read or updated.

A memory's trust is the minimum along its provenance chain: the ceiling of its source class
(``trust_class_ceiling``: ``untrusted`` text 0.1, ``external`` 0.5, ``user``/``document``/``agent`` 1.0, ...), the
trust of every agent that wrote or changed it, and the trust of every memory it was derived from (recorded at write
time too, so that what was derived from untrusted text stays untrusted after its source is erased). The user (a
write without an agent) and ingested documents put no agent constraint on it, and the user's approval of a
quarantined memory lifts the constraint of the agents that wrote it before the approval (not the class ceiling).

State lives in the main store (migration 3): ``trust_agents`` (the current Beta state per agent), ``trust_signals``
(every signal, with the state after it: ``hopmem trust history``).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hopmem.memory.db import write_transaction
from hopmem.memory.errors import InputError
from hopmem.memory.store import require_tenant

log = logging.getLogger(__name__)

POSITIVE_SIGNALS: frozenset[str] = frozenset({"confirmed", "approved"})
NEGATIVE_SIGNALS: frozenset[str] = frozenset(
    {"feedback_down", "user_overwrite", "user_delete", "burst", "contradiction", "rejected"}
)
STRONG_SIGNALS: frozenset[str] = frozenset({"contradiction", "rejected"})
"""Negative signals that also discount the agent's positive evidence (see the module docstring)."""

MAX_DERIVATION_DEPTH = 4


@dataclass(frozen=True)
class TrustParams:
    """The knobs of the trust model, filled from :meth:`hopmem.Settings.trust_params` (see the settings' docs)."""

    prior_alpha: float
    prior_beta: float
    threshold: float
    reference_level: float
    half_life_s: float
    weights: Mapping[str, float]
    user_weight: float
    betrayal_discount: float
    class_ceiling: Mapping[str, float]
    burst_window_s: float
    burst_max_writes: int
    overwrite_window_s: float
    contradiction_similarity: float
    rank_floor: float
    semantic_similarity: float
    vouch_evidence: float
    review_group_similarity: float = 0.85

    @property
    def prior_mean(self) -> float:
        return self.prior_alpha / (self.prior_alpha + self.prior_beta)

    def ceiling(self, source_class: str) -> float:
        """The highest trust a memory of ``source_class`` can have (0 for a class the table does not name)."""
        return float(self.class_ceiling.get(source_class, 0.0))


@dataclass
class AgentTrust:
    """One agent's trust as of ``at``: its Beta state (decayed to ``at``), mean and how many signals it had."""

    agent: str
    alpha: float
    beta: float
    signals: int = 0
    at: float = 0.0
    known: bool = False

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["trust"] = round(self.mean, 4)
        return data


@dataclass
class SignalOutcome:
    """What recording a signal did: ``applied`` False when it was ignored (self-confirmation, zero weight)."""

    agent: str
    kind: str
    applied: bool
    weight: float = 0.0
    before: float = 0.0
    after: float = 0.0
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class TrustModel:
    """Reads and updates agent trust in one store's SQLite file.

    Args:
        conn: the main store's connection (``MemoryStore.conn``).
        params: the model's knobs.
    """

    def __init__(self, conn: sqlite3.Connection, params: TrustParams) -> None:
        self.conn = conn
        self.params = params

    # ---- agents ---------------------------------------------------------------------------------------------

    def _decayed(self, alpha: float, beta: float, since: float, now: float) -> tuple[float, float]:
        p = self.params
        factor = 0.5 ** (max(0.0, now - since) / p.half_life_s)
        return p.prior_alpha + (alpha - p.prior_alpha) * factor, p.prior_beta + (beta - p.prior_beta) * factor

    def agent_trust(self, tenant: str, agent: str, *, now: float | None = None) -> AgentTrust:
        """The trust of ``agent`` now (the prior when nothing was recorded about it)."""
        return self.agents_trust(tenant, [agent], now=now)[agent]

    def agents_trust(self, tenant: str, agents: Iterable[str], *, now: float | None = None) -> dict[str, AgentTrust]:
        """The trust of each of ``agents`` (one query)."""
        require_tenant(tenant)
        now = time.time() if now is None else now
        wanted = sorted(set(agents))
        out = {a: AgentTrust(a, self.params.prior_alpha, self.params.prior_beta, at=now) for a in wanted}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(
                "SELECT agent_id, alpha, beta, updated_at, signals FROM trust_agents"
                f" WHERE tenant = ? AND agent_id IN ({marks})",
                (tenant, *part),
            ):
                alpha, beta = self._decayed(float(row[1]), float(row[2]), float(row[3]), now)
                out[str(row[0])] = AgentTrust(str(row[0]), alpha, beta, int(row[4]), now, True)
        return out

    def all_agents(self, tenant: str, *, now: float | None = None) -> list[AgentTrust]:
        """Every agent of ``tenant`` that wrote or was signalled, most trusted first."""
        require_tenant(tenant)
        names = {str(r[0]) for r in self.conn.execute("SELECT id FROM agents WHERE tenant = ?", (tenant,))}
        names |= {str(r[0]) for r in self.conn.execute("SELECT agent_id FROM trust_agents WHERE tenant = ?", (tenant,))}
        found = self.agents_trust(tenant, names, now=now)
        return sorted(found.values(), key=lambda a: (-a.mean, a.agent))

    def history(self, tenant: str, agent: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The latest ``limit`` signals about ``agent``, oldest first, with the trust after each."""
        require_tenant(tenant)
        rows = self.conn.execute(
            "SELECT id, at, kind, weight, alpha, beta, memory_id, by_agent, detail FROM trust_signals"
            " WHERE tenant = ? AND agent_id = ? ORDER BY id DESC LIMIT ?",
            (tenant, agent, int(limit)),
        ).fetchall()
        return [
            {
                "id": int(r[0]),
                "at": float(r[1]),
                "kind": r[2],
                "weight": float(r[3]),
                "trust": round(float(r[4]) / (float(r[4]) + float(r[5])), 4),
                "alpha": round(float(r[4]), 4),
                "beta": round(float(r[5]), 4),
                "memory_id": r[6],
                "by": r[7],
                "detail": json.loads(r[8]),
            }
            for r in reversed(rows)
        ]

    # ---- signals --------------------------------------------------------------------------------------------

    def signal(
        self,
        tenant: str,
        agent: str,
        kind: str,
        *,
        by: str | None = None,
        scale: float = 1.0,
        memory_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> SignalOutcome:
        """Record one signal about ``agent`` in its own transaction (see :meth:`record`)."""
        with write_transaction(self.conn) as conn:
            return self.record(
                conn, tenant, agent, kind, by=by, scale=scale, memory_id=memory_id, detail=detail, now=now
            )

    def record(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        agent: str,
        kind: str,
        *,
        by: str | None = None,
        scale: float = 1.0,
        memory_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> SignalOutcome:
        """Apply one signal about ``agent`` inside the caller's transaction on ``conn``.

        Args:
            kind: one of :data:`POSITIVE_SIGNALS` or :data:`NEGATIVE_SIGNALS`.
            by: who gave the signal: an agent id, or None for the user (or the system, for detector signals).
            scale: multiplies the kind's weight (a confirming agent's own trust, a count of deletions).

        A positive signal given by ``agent`` itself is ignored: nobody raises their own trust.
        """
        require_tenant(tenant)
        if kind not in POSITIVE_SIGNALS and kind not in NEGATIVE_SIGNALS:
            raise InputError(f"Unknown trust signal {kind!r}; use one of {', '.join(sorted(_KINDS))}.")
        now = time.time() if now is None else now
        row = conn.execute(
            "SELECT alpha, beta, updated_at FROM trust_agents WHERE tenant = ? AND agent_id = ?",
            (tenant, agent),
        ).fetchone()
        if row is None:
            alpha, beta = self.params.prior_alpha, self.params.prior_beta
        else:
            alpha, beta = self._decayed(float(row[0]), float(row[1]), float(row[2]), now)
        before = alpha / (alpha + beta)
        weight = float(self.params.weights.get(kind, 0.0)) * float(scale)
        if kind in POSITIVE_SIGNALS and by is not None and by == agent:
            log.info("ignored a %s signal that agent %r gave itself", kind, agent)
            return SignalOutcome(agent, kind, False, 0.0, before, before, "self-confirmation is ignored")
        if not math.isfinite(weight) or weight <= 0.0:
            return SignalOutcome(agent, kind, False, 0.0, before, before, "zero weight")
        if kind in POSITIVE_SIGNALS:
            alpha += weight
        else:
            if kind in STRONG_SIGNALS:
                alpha = max(1e-3, alpha * (1.0 - self.params.betrayal_discount))
            beta += weight
        conn.execute(
            "INSERT INTO trust_agents (tenant, agent_id, alpha, beta, updated_at, signals) VALUES (?, ?, ?, ?, ?, 1)"
            " ON CONFLICT (tenant, agent_id) DO UPDATE SET alpha = excluded.alpha, beta = excluded.beta,"
            " updated_at = excluded.updated_at, signals = signals + 1",
            (tenant, agent, alpha, beta, now),
        )
        info = dict(detail or {})
        conn.execute(
            "INSERT INTO trust_signals (tenant, agent_id, at, kind, weight, alpha, beta, memory_id, by_agent, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (tenant, agent, now, kind, weight, alpha, beta, memory_id, by, json.dumps(info, ensure_ascii=False)),
        )
        after = alpha / (alpha + beta)
        log.debug("trust of %r: %s (%.3f) %.3f -> %.3f", agent, kind, weight, before, after)
        return SignalOutcome(agent, kind, True, weight, before, after, "", info)

    def confirmation_scale(self, tenant: str, by: str | None, *, now: float | None = None) -> float:
        """How much a confirmation or a down-vote given by ``by`` counts: the user's weight, or the agent's trust.

        An agent's word counts only once it is *vouched*: others confirmed it at least ``trust_vouch_evidence``
        (its alpha that far above the prior), so that a crowd of fresh identities cannot raise one another (the
        sybil attack) or bury honest memories; and not at all below the threshold, so distrusted agents cannot
        vouch either.
        """
        if by is None:
            return self.params.user_weight
        state = self.agent_trust(tenant, by, now=now)
        if not self.is_vouched(state):
            return 0.0
        return state.mean if state.mean >= self.params.threshold else 0.0

    def is_vouched(self, state: AgentTrust) -> bool:
        """Whether others confirmed this agent at least ``trust_vouch_evidence`` (alpha that far above the prior)."""
        return state.alpha - self.params.prior_alpha >= self.params.vouch_evidence - 1e-9

    def count_writes(self, conn: sqlite3.Connection, tenant: str, agent: str, n: int, now: float) -> int:
        """Count ``n`` writes of ``agent`` in its burst window (inside the caller's transaction); returns how many
        writes the window holds now, these included. A window starts at the first write after the last one ended."""
        row = conn.execute(
            "SELECT burst_start, burst_count FROM trust_agents WHERE tenant = ? AND agent_id = ?", (tenant, agent)
        ).fetchone()
        start, count = (0.0, 0) if row is None else (float(row[0]), int(row[1]))
        if now - start > self.params.burst_window_s:
            start, count = now, 0
        count += n
        conn.execute(
            "INSERT INTO trust_agents (tenant, agent_id, alpha, beta, updated_at, burst_start, burst_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, agent_id) DO UPDATE SET"
            " burst_start = excluded.burst_start, burst_count = excluded.burst_count",
            (tenant, agent, self.params.prior_alpha, self.params.prior_beta, now, start, count),
        )
        return count

    def window_writes(self, tenant: str, agent: str, now: float) -> int:
        """How many writes of ``agent`` its current burst window holds (0 when the window has ended)."""
        row = self.conn.execute(
            "SELECT burst_start, burst_count FROM trust_agents WHERE tenant = ? AND agent_id = ?", (tenant, agent)
        ).fetchone()
        if row is None or now - float(row[0]) > self.params.burst_window_s:
            return 0
        return int(row[1])

    # ---- memories -------------------------------------------------------------------------------------------

    def memory_trusts(self, tenant: str, ids: Sequence[int], *, now: float | None = None) -> dict[int, float]:
        """The trust of each memory of ``tenant`` among ``ids`` (see the module docstring); unknown ids are left out."""
        require_tenant(tenant)
        now = time.time() if now is None else now
        return self._memory_trusts(tenant, sorted({int(i) for i in ids}), now, 0)

    def _memory_trusts(self, tenant: str, ids: list[int], now: float, depth: int) -> dict[int, float]:
        if not ids:
            return {}
        rows: list[sqlite3.Row] = []
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            rows.extend(
                self.conn.execute(
                    "SELECT id, source_class, agent_id,"
                    " CASE WHEN source_class = 'document' THEN '[]' ELSE provenance END AS provenance"
                    f" FROM memories WHERE tenant = ? AND id IN ({marks})",
                    (tenant, *part),
                ).fetchall()
            )
        chains = {int(r[0]): chain_facts(r[1], r[2], json.loads(r[3])) for r in rows}
        agents = {a for facts in chains.values() for a in facts.agents}
        agent_trust = {a: t.mean for a, t in self.agents_trust(tenant, agents, now=now).items()}
        parents = sorted({p for facts in chains.values() for p in facts.parents} - set(chains))
        parent_trust: dict[int, float] = {}
        if parents and depth < MAX_DERIVATION_DEPTH:
            parent_trust = self._memory_trusts(tenant, parents, now, depth + 1)
        out: dict[int, float] = {}
        for mid, facts in chains.items():
            value = self.params.ceiling(facts.source_class)
            for agent in facts.agents:
                value = min(value, agent_trust.get(agent, self.params.prior_mean))
            value = min(value, facts.recorded_parent_trust)
            for parent in facts.parents:
                if parent in parent_trust:
                    value = min(value, parent_trust[parent])
                elif parent in chains:
                    value = min(value, self.params.ceiling(chains[parent].source_class))
            out[mid] = value
        return out


@dataclass
class ChainFacts:
    """What a provenance chain says about trust: the source class, the agents, the parents and their recorded trust."""

    source_class: str
    agents: set[str]
    parents: set[int]
    recorded_parent_trust: float = 1.0


def chain_facts(source_class: str, agent_id: str | None, chain: Sequence[Mapping[str, Any]]) -> ChainFacts:
    """Read the trust-relevant facts of one memory's provenance chain."""
    facts = ChainFacts(str(source_class), {agent_id} if agent_id else set(), set())
    for event in chain:
        if event.get("action") == "approve":
            facts.agents.clear()  # the user reviewed the text as it stood: its writers no longer bound its trust
            continue
        agent = event.get("agent")
        if isinstance(agent, str) and agent:
            facts.agents.add(agent)
        for parent in event.get("derived_from") or ():
            if isinstance(parent, int):
                facts.parents.add(parent)
        recorded = event.get("parent_trust")
        if isinstance(recorded, int | float):
            facts.recorded_parent_trust = min(facts.recorded_parent_trust, float(recorded))
        klass = event.get("source_class")
        if isinstance(klass, str) and klass == "untrusted":
            facts.source_class = "untrusted"
    return facts


_KINDS = POSITIVE_SIGNALS | NEGATIVE_SIGNALS
