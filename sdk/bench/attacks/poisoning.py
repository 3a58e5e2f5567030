"""The attacks that write or vote: each builds a timeline of honest writes and attacker actions over one world.

Every attack returns the facts it attacked and its identities, and leaves the measuring to
:func:`hopmem.bench.attacks.measure.measure`. The attacker has read the code: its lies are paraphrased
(:mod:`hopmem.bench.attacks.paraphrase`) unless the attack says otherwise.

* ``paraphrase``: one poisoner writes paraphrased false versions of facts the honest agents write.
* ``sybil``: many fresh identities each write a few paraphrased lies and up-vote one another's lies.
* ``farming``: an agent writes many true facts of its own (earning confirmations), then poisons a few facts.
* ``sleeper``: an agent with a long honest history spreads a few lies thinly over it.
* ``feedback``: an agent down-votes the true memories of one honest agent; it writes nothing false.
* ``flooding``: near-duplicate variants of a lie written in bursts, to push the true memory out of the top k.
* ``rewrite``: a fresh identity edits honest memories in place into paraphrased lies (an update, not a new write).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from hopmem.bench.attacks.paraphrase import paraphrase
from hopmem.bench.attacks.world import World

Action = Callable[[World], None]
"""An attacker's step in the timeline."""


@dataclass(frozen=True)
class AttackScale:
    """How much each attack does (recorded in the report).

    Every poisoning attack aims at 8 facts or more per seed, so that over 3 seeds one visible lie is at most 1/24
    (4.2%) of the attacked facts: a share measured on fewer cannot resolve the 5% target (4 per seed made one lie
    8.3%).
    """

    targets: int = 16
    sybils: int = 8
    farm_writes: int = 30
    farm_targets: int = 8
    sleeper_history: int = 40
    sleeper_lies: int = 8
    downvotes: int = 60
    flood_targets: int = 8
    flood_variants: int = 8


@dataclass
class Plan:
    """What an attack did: the facts it attacked and the identities it used."""

    attacked: list[int]
    attackers: list[str]


def _run(world: World, honest: list[tuple[str, int]], attack: list[Action], *, spread: bool = True) -> None:
    """Run the honest writes and the attacker's actions interleaved (the attacker's in their order)."""
    rng = world.rng
    total = len(honest) + len(attack)
    slots = set(rng.sample(range(total), len(attack))) if spread else set(range(len(honest), total))
    honest_it, attack_it = iter(honest), iter(attack)
    for position in range(total):
        if position in slots:
            next(attack_it)(world)
        else:
            agent, index = next(honest_it)
            world.write_true(agent, index)
        world.tick()


def _lie(agent: str, index: int, rng: random.Random, *, plain: bool = False) -> Action:
    def act(world: World) -> None:
        fact = world.facts[index]
        world.write_false(agent, fact.false if plain else paraphrase(fact.false, rng), index)

    return act


def _own_truth(agent: str, index: int) -> Action:
    def act(world: World) -> None:
        world.write_true(agent, index)

    return act


def _upvote_lies(agent: str, index: int) -> Action:
    """A sybil searches a target and up-votes every lie of the other sybils it sees (it knows which are theirs)."""

    def act(world: World) -> None:
        handle = world.agent(agent)
        for result in handle.search(world.facts[index].query, k=5):
            if result.id in world.false_ids and result.record.agent_id not in (agent, None):
                handle.feedback(result.id, "up", query=world.facts[index].query)

    return act


def _downvote_truth(agent: str, victim: str) -> Action:
    """Down-vote ``victim``'s memory of a random fact it wrote so far (a true one).

    The attacker has read the code: votes spread over every honest agent barely move anyone's trust, so it aims
    them all at one agent, to push that agent below the threshold (its next writes are held, its memories rank low).
    """

    def act(world: World) -> None:
        mine = world.written_by.get(victim)
        if not mine:
            return
        index = world.rng.choice(mine)
        handle = world.agent(agent)
        for result in handle.search(world.facts[index].query, k=5):
            if result.record.agent_id == victim and result.record.content == world.facts[index].true:
                handle.feedback(result.id, "down", query=world.facts[index].query)
                world.attacked_extra.add(index)
                return

    return act


def _rewrite(agent: str, index: int, rng: random.Random) -> Action:
    """Find the true memory of fact ``index`` and change its content into a paraphrased lie.

    An edit is not a new write: before the gate checked changes, no quarantine, burst or contradiction rule saw it.
    """

    def act(world: World) -> None:
        fact = world.facts[index]
        for result in world.agent(agent).search(fact.query, k=5):
            if result.record.content == fact.true:
                world.rewrite_false(agent, result.id, paraphrase(fact.false, rng))
                return

    return act


def run_poisoning(name: str, world: World, scale: AttackScale, n_honest: int) -> Plan:
    """Run attack ``name`` in ``world``; facts ``0..n_honest-1`` are the honest agents', later ones the attacker's.

    The first ``warmup`` share of the honest writes (and their reviews) happen before the attacker arrives, and the
    attacked facts are among those: the attacker falsifies what the memory already holds. A lie written before
    its truth is not part of this suite yet.
    """
    rng = world.rng
    plan = world.honest_writes_plan(range(n_honest))
    cut = int(len(plan) * world.params.warmup)
    _run(world, plan[:cut], [])  # the memory in use before the attacker arrives
    known = sorted({index for _, index in plan[:cut]})
    honest = plan[cut:]
    if name == "paraphrase":
        targets = rng.sample(known, min(scale.targets, len(known)))
        _run(world, honest, [_lie("poisoner", i, rng) for i in targets])
        return Plan(targets, ["poisoner"])
    if name == "sybil":
        targets = rng.sample(known, min(scale.targets, len(known)))
        sybils = [f"sybil-{k + 1}" for k in range(scale.sybils)]
        lies = [_lie(sybils[k % len(sybils)], i, rng) for k, i in enumerate(targets)]
        votes = [_upvote_lies(s, i) for s in sybils for i in targets]
        rng.shuffle(votes)
        _run(world, honest, lies + votes)
        return Plan(targets, sybils)
    if name == "farming":
        own = list(range(n_honest, n_honest + scale.farm_writes))
        targets = rng.sample(known, min(scale.farm_targets, len(known)))
        actions = [_own_truth("farmer", i) for i in own] + [_lie("farmer", i, rng) for i in targets]
        _run(world, honest, actions)
        return Plan(targets, ["farmer"])
    if name == "sleeper":
        own = list(range(n_honest, n_honest + scale.sleeper_history))
        targets = rng.sample(known, min(scale.sleeper_lies, len(known)))
        history: list[Action] = [_own_truth("sleeper", i) for i in own[: len(own) // 4]]
        rest = own[len(own) // 4 :]
        step = max(1, len(rest) // max(1, len(targets)))
        for k, i in enumerate(targets):  # one lie after every `step` true writes
            history += [_own_truth("sleeper", j) for j in rest[k * step : (k + 1) * step]]
            history.append(_lie("sleeper", i, rng))
        history += [_own_truth("sleeper", j) for j in rest[len(targets) * step :]]
        _run(world, honest, history)
        return Plan(targets, ["sleeper"])
    if name == "feedback":
        _run(world, honest, [_downvote_truth("critic", world.honest[0]) for _ in range(scale.downvotes)])
        return Plan(sorted(world.attacked_extra), ["critic"])
    if name == "flooding":
        targets = rng.sample(known, min(scale.flood_targets, len(known)))
        flood = [_flood(i, k, rng) for i in targets for k in range(scale.flood_variants)]
        _run(world, honest, [])  # the truth is in place first
        _run(world, [], flood, spread=False)  # then the flood, in one burst
        return Plan(targets, ["flooder"])
    if name == "rewrite":
        targets = rng.sample(known, min(scale.targets, len(known)))
        _run(world, honest, [_rewrite("editor", i, rng) for i in targets])
        return Plan(targets, ["editor"])
    raise ValueError(f"unknown poisoning attack {name!r}")


def _flood(index: int, variant: int, rng: random.Random) -> Action:
    def act(world: World) -> None:
        fact = world.facts[index]
        world.write_false("flooder", f"{paraphrase(fact.false, rng)} (note {variant + 1})", index)

    return act


POISONING_ATTACKS: tuple[str, ...] = ("paraphrase", "sybil", "farming", "sleeper", "feedback", "flooding", "rewrite")
