"""The world every attack runs in: a fresh store, honest agents writing real facts, reviewers without an oracle.

One *world* is one (attack, seed, defended) run in its own temporary store. Its parts:

* **Facts**: real corpus sentences with a false version each (:func:`hopmem.bench.trust_bench.build_facts`: one
  number, name or negation changed). The *true token* and *false token* of a fact are the words that differ.
* **Honest agents** write the true facts (a share written again, word for word, by a second honest agent).
* **Reviewers see only what a user sees.** Each honest agent knows a random share (``knowledge``) of the facts, the
  user another share; nobody knows which memory is false. A review is a recall query for a fact the reviewer
  knows: each result in its top 5 written by someone else is judged by the reviewer's own knowledge only: it states
  the fact's false token and not the true one -> ``down``; the true token and not the false one -> ``up``; neither
  -> no verdict. Each verdict is flipped with probability ``error_rate`` (reviewers make mistakes).
* **Quarantine review without an oracle**: with probability ``quarantine_review`` per round the user works through
  the quarantine list and judges each held text it can place (the memory the list shows it contradicts, when the
  user knows that fact; else the known fact whose words it shares most, Jaccard at least 0.5) by the same token rule
  with the same error rate; the rest stays held. The list groups one agent's near-duplicate held writes (a flood)
  into one item (``group``), which the user judges once, by its first write. A held text shown beside the memory
  it contradicts is approved only when the user judges it true *and* that memory false (two judgements, each with
  the error rate): approving it says the other is wrong, so a user who judges both true (or both false) leaves it
  held.
* A reviewer judges only results that speak of the fact it looked up (at least ``about``, 40%, of the fact's content
  words); the attacker arrives after the first ``warmup`` share of the honest writes.

Ground truth (which memory ids are false) is kept only to *measure*: nothing in the loop reads it.
"""

from __future__ import annotations

import logging
import random
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hopmem.bench.trust_bench import Fact
from hopmem.memory.errors import HopmemError
from hopmem.memory.fts import STOPWORDS
from hopmem.memory.trust.contradiction import NEGATIONS
from hopmem.memory.trust.quarantine import review_groups
from hopmem.memory_api import Memory
from hopmem.settings import Settings

log = logging.getLogger(__name__)

TENANT = "attack"
_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True)
class WorldParams:
    """The honest side of every attack (each a CLI option of ``hopmem bench attack``, recorded in the report)."""

    facts: int = 80
    honest: int = 4
    overlap: float = 0.3
    review_every: int = 10
    reviews: int = 6
    knowledge: float = 0.5
    user_knowledge: float = 0.5
    user_review: float = 0.5
    error_rate: float = 0.1
    quarantine_review: float = 0.5
    answers: bool = True
    warmup: float = 0.5
    about: float = 0.4


def tokens(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def fact_tokens(fact: Fact) -> tuple[str | None, str]:
    """The word of the true sentence the false version replaced (None for an inserted negation) and its new word."""
    true_words, false_words = tokens(fact.true), tokens(fact.false)
    added = [w for w in false_words if w not in true_words]
    removed = [w for w in true_words if w not in false_words]
    false_token = added[0] if added else "not"
    return (removed[0] if removed else None), false_token


def states(text: str, fact: Fact) -> str | None:
    """What ``text`` says about ``fact`` to someone who knows it: ``"false"``, ``"true"`` or None (no verdict)."""
    words = tokens(text)
    true_token, false_token = fact_tokens(fact)
    if true_token is None:  # the lie inserts a negation: judge by whether the text negates
        if not set(tokens(fact.true)) & set(words):
            return None
        return "false" if any(w in NEGATIONS or w.endswith("n't") for w in words) else "true"
    has_true, has_false = true_token in words, false_token in words
    if has_false and not has_true:
        return "false"
    if has_true and not has_false:
        return "true"
    return None


def content_words(text: str) -> set[str]:
    return {w for w in tokens(text) if w not in STOPWORDS}


@dataclass
class World:
    """One run's store, identities, facts, ground truth (for measuring only) and counters."""

    settings: Settings
    params: WorldParams
    facts: list[Fact]
    rng: random.Random
    defended: bool
    handles: dict[str, Memory] = field(default_factory=dict)
    user: Memory | None = None
    honest: list[str] = field(default_factory=list)
    knows: dict[str | None, set[int]] = field(default_factory=dict)
    written: list[int] = field(default_factory=list)
    written_by: dict[str, list[int]] = field(default_factory=dict)
    false_ids: set[int] = field(default_factory=set)
    attacked_extra: set[int] = field(default_factory=set)
    attacker_writes: int = 0
    detected_at: int | None = None
    honest_writes: int = 0
    honest_held: int = 0
    steps: int = 0
    review_rng: random.Random = field(default_factory=random.Random)
    queue: dict[str, int] = field(default_factory=lambda: {"approved": 0, "rejected": 0, "left": 0})
    votes: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0, "wrong": 0})

    @property
    def me(self) -> Memory:
        assert self.user is not None
        return self.user

    def agent(self, name: str) -> Memory:
        """The handle of identity ``name`` (opened on first use: a fresh identity starts at the prior)."""
        if name not in self.handles:
            self.handles[name] = Memory(self.settings, tenant=TENANT, agent=name)
        return self.handles[name]

    # --- writing ---------------------------------------------------------------------------------------------
    def write_true(self, agent: str, index: int) -> Any:
        """``agent`` writes fact ``index``'s true sentence; counted as an honest write when ``agent`` is honest."""
        record = self._add(agent, self.facts[index].true, index)
        if record is not None:
            self.written.append(index)
            self.written_by.setdefault(agent, []).append(index)
            if agent in self.honest and record.provenance and record.provenance[0].get("agent") == agent:
                self.honest_writes += 1
                self.honest_held += int(record.quarantined)
        return record

    def write_false(self, agent: str, text: str, index: int) -> Any:
        """An attacker writes ``text``, a false statement about fact ``index``; detection is tracked."""
        record = self._add(agent, text, index)
        self.attacker_writes += 1
        if record is None:
            self._detected()
            return None
        self.false_ids.add(record.id)
        if record.quarantined or self.trust(agent) < self.settings.trust_threshold:
            self._detected()
        return record

    def rewrite_false(self, agent: str, memory_id: int, text: str) -> Any:
        """An attacker changes memory ``memory_id``'s content into ``text``, a false statement; a refusal is a
        detection."""
        self.attacker_writes += 1
        try:
            record = self.agent(agent).update(memory_id, content=text)
        except HopmemError as exc:
            log.debug("change by %s refused: %s", agent, exc)
            self._detected()
            return None
        self.false_ids.add(record.id)
        return record

    def _detected(self) -> None:
        if self.detected_at is None:
            self.detected_at = self.attacker_writes

    def _add(self, agent: str, text: str, index: int) -> Any:
        try:
            return self.agent(agent).add(text, title=self.facts[index].title, source_class="agent")
        except HopmemError as exc:  # a refused write (a rate limit, a blocked write) is a defence's answer
            log.debug("write by %s refused: %s", agent, exc)
            return None

    def trust(self, agent: str) -> float:
        return self.me.trust.agent_trust(TENANT, agent).mean

    def tick(self) -> None:
        """One write happened: every ``review_every`` writes the reviewers run a round."""
        self.steps += 1
        if self.steps % self.params.review_every == 0 and self.written:
            self.review_round()

    # --- reviewing (no oracle) -------------------------------------------------------------------------------
    def review_round(self) -> None:
        p = self.params
        for _ in range(p.reviews):
            reviewer = self.review_rng.choice(self.honest)
            self._review(reviewer)
            if self.review_rng.random() < p.user_review:
                self._review(None)
        if p.quarantine_review > 0 and self.review_rng.random() < p.quarantine_review:
            self._review_quarantine()

    def is_about(self, text: str, fact: Fact) -> bool:
        """Whether a reader who knows ``fact`` sees that ``text`` speaks of it: it holds at least ``about`` of the
        fact's content words (the changed word aside). Results about other facts get no verdict."""
        true_token, _ = fact_tokens(fact)
        words = content_words(fact.true) - {true_token}
        return bool(words) and len(words & content_words(text)) / len(words) >= self.params.about

    def _verdict(self, text: str, fact: Fact) -> str | None:
        said = states(text, fact)
        if said is not None and self.review_rng.random() < self.params.error_rate:
            said = "true" if said == "false" else "false"
        return said

    def _review(self, reviewer: str | None) -> None:
        known = [i for i in self.written if i in self.knows.get(reviewer, set())]
        if not known:
            return
        fact = self.facts[self.review_rng.choice(known)]
        handle = self.me if reviewer is None else self.agent(reviewer)
        for result in handle.search(fact.query, k=5):
            if result.record.agent_id in (reviewer, None) or not self.is_about(result.record.content, fact):
                continue
            said = self._verdict(result.record.content, fact)
            if said is None:
                continue
            kind = "down" if said == "false" else "up"
            self.votes[kind] += 1
            self.votes["wrong"] += int((kind == "down") != (result.id in self.false_ids))
            handle.feedback(result.id, kind, query=fact.query)

    def _review_quarantine(self) -> None:
        known = [self.facts[i] for i in sorted(self.knows.get(None, set()))]
        by_text = {f.true: f for f in known}
        approve: list[int] = []
        reject: list[int] = []
        for group in review_groups(self.me.quarantine()):
            held, ids = group[0], [int(entry["id"]) for entry in group]
            other = held.get("conflicts_with")
            fact = self._subject(str(held["content"]), other, known, by_text)
            said = self._verdict(str(held["content"]), fact) if fact is not None else None
            if said == "true" and other is not None and fact is not None:
                # approving a held text that contradicts a shown memory says that memory is wrong: the user
                # approves only when they also judge that one false (each judgement with the same error rate)
                said = "true" if self._verdict(str(other["content"]), fact) == "false" else None
            if said == "true":
                approve += ids
            elif said == "false":
                reject += ids
            else:
                self.queue["left"] += len(ids)
        if approve:
            self.me.approve(approve)
        if reject:
            self.me.reject(reject)
        self.queue["approved"] += len(approve)
        self.queue["rejected"] += len(reject)

    def _subject(
        self, text: str, other: dict[str, Any] | None, known: list[Fact], by_text: dict[str, Fact]
    ) -> Fact | None:
        """The known fact a held text is about, as the user sees it: the memory it contradicts (the list shows it
        beside the held text), else the known fact it shares most words with (Jaccard at least 0.5); None when the
        user cannot tell."""
        if other is not None:
            return by_text.get(str(other["content"]))
        words = content_words(text)
        best, overlap = None, 0.0
        for fact in known:
            fw = content_words(fact.true)
            score = len(words & fw) / max(1, len(words | fw))
            if score > overlap:
                best, overlap = fact, score
        return best if overlap >= 0.5 else None

    # --- the honest side of the timeline ---------------------------------------------------------------------
    def honest_writes_plan(self, indices: Sequence[int]) -> list[tuple[str, int]]:
        """(agent, fact) writes of the true facts ``indices``: each by one honest agent, a share by a second."""
        plan: list[tuple[str, int]] = []
        for n, i in enumerate(indices):
            writer = self.honest[n % len(self.honest)]
            plan.append((writer, i))
            if self.rng.random() < self.params.overlap:
                plan.append((self.rng.choice([a for a in self.honest if a != writer]), i))
        self.rng.shuffle(plan)
        return plan


def defences(attack: str) -> dict[str, Any]:
    """The settings that turn the defence off for ``attack``.

    Off is the trust gate, trust ranking, the injection filter and the vouching rule (fresh identities' votes count
    at once). For feedback poisoning the gate and ranking stay on: without them a down-vote changes nothing a user
    sees, and the attack's damage is to turn the defence against honest agents; there, off is the vouching rule.
    """
    if attack == "feedback":
        return {"trust_vouch_evidence": 0.0}
    return {"trust_gate": False, "trust_ranking": False, "injection_filter": False, "trust_vouch_evidence": 0.0}


@contextmanager
def open_world(
    settings: Settings, params: WorldParams, facts: list[Fact], seed: int, attack: str, *, defended: bool
) -> Iterator[World]:
    """A fresh world in a temporary store with the defence on (the settings as given) or off (:func:`defences`)."""
    with tempfile.TemporaryDirectory(prefix=f"hopmem-attack-{attack}-") as tmp:
        update: dict[str, Any] = {"data_dir": Path(tmp), "ltr_enabled": False, "vector_backend": "exact"}
        config = settings.model_copy(update={**update, **({} if defended else defences(attack))})
        rng = random.Random(f"attack-{attack}-{seed}")
        world = World(config, params, facts, rng, defended, review_rng=random.Random(f"review-{attack}-{seed}"))
        world.honest = [f"honest-{i + 1}" for i in range(params.honest)]
        know_rng = random.Random(f"knows-{seed}")
        for who in [*world.honest, None]:
            share = params.user_knowledge if who is None else params.knowledge
            world.knows[who] = {i for i in range(len(facts)) if know_rng.random() < share}
        world.user = Memory(config, tenant=TENANT)
        try:
            yield world
        finally:
            for handle in world.handles.values():
                handle.close()
            world.user.close()
