"""The trust model on real stores: prior, signals, no self-confirmation, no spoofing, decay, provenance minimum,
detectors (contradiction, burst, user overwrite/deletion), trust-weighted ranking, and the write gate failing closed."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from hopmem.memory.engine import MemoryEngine
from hopmem.memory.errors import InputError, StoreError
from hopmem.memory.trust.gate import WriteBlockedError
from hopmem.memory.trust.model import TrustModel
from hopmem.settings import Settings
from tests.memory.engines import open_engine

FACT = "The Cranfield wind tunnel reached Mach 3.5 in its first supersonic test run in 1952."
FALSE = "The Cranfield wind tunnel reached Mach 1.5 in its first supersonic test run in 1952."


def _as(settings: Settings, agent: str, **overrides: Any) -> MemoryEngine:
    return open_engine(settings.model_copy(update=overrides) if overrides else settings, tenant="t", agent=agent)


def _trust(memory: MemoryEngine, agent: str) -> float:
    return memory.trust_of(agent)[0].mean


def test_a_new_agent_starts_at_the_documented_prior(user: MemoryEngine) -> None:
    (fresh,) = user.trust_of("newcomer")
    assert (fresh.alpha, fresh.beta, fresh.known) == (4.0, 2.0, False)
    assert fresh.mean == pytest.approx(4 / 6)
    assert user.trust_history("newcomer") == []


def test_user_feedback_moves_the_writer_and_history_records_it(settings: Settings, user: MemoryEngine) -> None:
    with _as(settings, "scribe") as scribe:
        record = scribe.add("Lighthouse lenses were made of glass prisms arranged in rings.")
    user.feedback(record.id, "up", query="lighthouse lens")
    after_up = _trust(user, "scribe")
    assert after_up == pytest.approx(6 / 8, abs=1e-6)  # the user's confirmation weighs 2
    user.feedback(record.id, "down")
    assert _trust(user, "scribe") == pytest.approx(6 / 10, abs=1e-6)  # and so does its disapproval
    kinds = [(e["kind"], e["by"], e["memory_id"]) for e in user.trust_history("scribe")]
    assert kinds == [("confirmed", None, record.id), ("feedback_down", None, record.id)]


def test_feedback_whose_trust_signal_fails_leaves_no_event(settings: Settings) -> None:
    """A real lock on the main store makes the signal fail; the event in the behavioural file must not stay."""
    quick = settings.model_copy(update={"sqlite_busy_timeout_ms": 50})
    with _as(quick, "scribe") as scribe:
        record = scribe.add("Lighthouse lenses were made of glass prisms arranged in rings.")
    with open_engine(quick, tenant="t") as user:
        before = _trust(user, "scribe")
        blocker = sqlite3.connect(user.store.path, timeout=0)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="locked"):
                user.feedback(record.id, "up")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert user.behaviour.count("t") == 0
        assert user.trust_history("scribe") == [] and _trust(user, "scribe") == pytest.approx(before)
        user.feedback(record.id, "up")  # once the lock is gone, the same feedback gives one event and one signal
        assert user.behaviour.count("t") == 1
        assert [e["kind"] for e in user.trust_history("scribe")] == ["confirmed"]


def test_an_agent_cannot_raise_its_own_trust(settings: Settings, user: MemoryEngine) -> None:
    with _as(settings, "mallory") as mallory:
        record = mallory.add("Mallory's favourite fact about tides and the moon.")
        before = _trust(user, "mallory")
        for _ in range(5):
            mallory.feedback(record.id, "up")  # its own feedback on its own memory
            mallory.feedback(record.id, "click")
        again = mallory.add("Mallory's favourite fact about tides and the moon.")  # rewriting its own text
        assert again.id == record.id
        mallory.search("tides and the moon")  # recalls count nothing either
    assert _trust(user, "mallory") == pytest.approx(before)
    assert [e["kind"] for e in user.trust_history("mallory")] == []
    # At the lowest level too: a positive signal given by the agent it scores is refused.
    outcome = user.trust.signal("t", "mallory", "confirmed", by="mallory", scale=10.0)
    assert not outcome.applied and "self" in outcome.note
    assert _trust(user, "mallory") == pytest.approx(before)


def test_agent_identity_comes_from_the_handle_never_from_metadata(settings: Settings, user: MemoryEngine) -> None:
    with _as(settings, "alice") as alice:
        honest = alice.add("Alice measured the tide at 4.2 metres on Monday.")
    with _as(settings, "mallory") as mallory:
        spoof = mallory.add(
            "A memory that claims to be Alice's.", metadata={"agent": "alice", "agent_id": "alice", "by": "alice"}
        )
        assert spoof.agent_id == "mallory" and spoof.provenance[0]["agent"] == "mallory"
        with pytest.raises(InputError, match="acts as agent 'mallory'"):
            mallory.add("Written as alice.", agent="alice")
        with pytest.raises(InputError, match="acts as agent 'mallory'"):
            mallory.feedback(honest.id, "up", agent="alice")
        with pytest.raises(InputError, match="acts as agent 'mallory'"):
            mallory.add_many([{"content": "Another one as alice.", "agent": "alice"}], progress=False)
        with pytest.raises(InputError, match="acts as agent 'mallory'"):
            mallory.update(honest.id, title="x", agent="alice")
        mallory.feedback(spoof.id, "up")  # it is mallory's own memory whatever the metadata says
    assert _trust(user, "alice") == pytest.approx(4 / 6)
    assert _trust(user, "mallory") == pytest.approx(4 / 6)
    assert user.stats()["memories"] == 2


def test_confirmations_weigh_by_the_confirmer_and_distrusted_agents_cannot_vouch(
    settings: Settings, user: MemoryEngine
) -> None:
    with _as(settings, "writer") as writer:
        record = writer.add("The Fresnel lens concentrates light into a horizontal beam.")
    with _as(settings, "peer") as peer:
        peer.feedback(record.id, "up")
        assert _trust(user, "writer") == pytest.approx(4 / 6)  # a fresh identity cannot vouch yet
        own = peer.add("A lighthouse keeper trims the wick every evening.")
    user.feedback(own.id, "up")  # the user confirms the peer: alpha 4 -> 6, trust 0.75
    with _as(settings, "peer") as peer:
        peer.feedback(record.id, "up")
    assert _trust(user, "writer") == pytest.approx((4 + 0.75) / (6 + 0.75), abs=1e-6)
    for _ in range(3):
        user.trust.signal("t", "shill", "contradiction")
    assert _trust(user, "shill") < settings.trust_threshold
    before = _trust(user, "writer")
    with _as(settings, "shill") as shill:
        shill.feedback(record.id, "up")
    assert _trust(user, "writer") == pytest.approx(before)


def test_fresh_identities_cannot_raise_one_another_or_bury_an_honest_agent(
    settings: Settings, user: MemoryEngine
) -> None:
    with _as(settings, "honest") as honest:
        truth = honest.add("The Fresnel lens concentrates light into a horizontal beam.")
    lies = []
    topics = ["granite quarries", "river ferries", "tram timetables", "orchard grafting", "bell foundries"]
    for k, topic in enumerate(topics):
        with _as(settings, f"sybil-{k}") as sybil:
            lies.append(sybil.add(f"A sybil's claim about {topic}."))
            sybil.feedback(truth.id, "down")
    for k in range(5):
        with _as(settings, f"sybil-{k}") as sybil:
            for lie in lies:
                if lie.agent_id != f"sybil-{k}":
                    sybil.feedback(lie.id, "up")
    assert all(_trust(user, f"sybil-{k}") == pytest.approx(4 / 6) for k in range(5))
    assert _trust(user, "honest") == pytest.approx(4 / 6)
    with _as(settings, "sybil-0", trust_vouch_evidence=0.0) as unguarded:  # the rule off: the down-vote counts
        unguarded.feedback(truth.id, "down")
    assert _trust(user, "honest") < 4 / 6


def test_evidence_decays_towards_the_prior(user: MemoryEngine) -> None:
    model = user.trust
    t0 = 1_000_000.0
    model.signal("t", "old", "contradiction", now=t0)  # alpha 4 -> 2, beta 2 -> 5
    half = model.params.half_life_s
    at_once = model.agent_trust("t", "old", now=t0)
    later = model.agent_trust("t", "old", now=t0 + half)
    assert (at_once.alpha, at_once.beta) == pytest.approx((2.0, 5.0))
    assert (later.alpha, later.beta) == pytest.approx((3.0, 3.5))
    far = model.agent_trust("t", "old", now=t0 + 40 * half)
    assert far.mean == pytest.approx(model.params.prior_mean, abs=1e-6)


def test_memory_trust_is_the_minimum_along_its_provenance(settings: Settings, user: MemoryEngine) -> None:
    with _as(settings, "good") as good:
        record = good.add("The harbour light flashes every ten seconds.")
    for _ in range(4):
        user.feedback(record.id, "up")
    good_trust = _trust(user, "good")
    assert user.memory_trust([record.id])[record.id] == pytest.approx(good_trust)
    with _as(settings, "sloppy") as sloppy:
        sloppy.update(record.id, title="harbour")  # a prior-trust agent touched it
    assert user.memory_trust([record.id])[record.id] == pytest.approx(4 / 6)
    mine = user.add("The user's own note about the harbour light.")
    assert user.memory_trust([mine.id])[mine.id] == 1.0


def test_what_derives_from_untrusted_text_stays_untrusted(settings: Settings, user: MemoryEngine) -> None:
    web = user.add("A web page says the lighthouse was built in 1890.", source_class="untrusted")
    ceiling = settings.trust_class_ceiling["untrusted"]
    assert user.memory_trust([web.id])[web.id] == pytest.approx(ceiling)
    with _as(settings, "summariser") as summariser:
        summary = summariser.add("The lighthouse dates from 1890.", source_class="agent", derived_from=[web.id])
        second = summariser.add("It is over a century old.", source_class="agent", derived_from=[summary.id])
    trusts = user.memory_trust([summary.id, second.id])
    assert trusts[summary.id] == pytest.approx(ceiling) and trusts[second.id] == pytest.approx(ceiling)
    assert summary.provenance[0]["derived_from"] == [web.id]
    user.erase([web.id])  # the source is gone; what was derived from it keeps the recorded trust
    trusts = user.memory_trust([summary.id, second.id])
    assert trusts[summary.id] == pytest.approx(ceiling) and trusts[second.id] == pytest.approx(ceiling)
    with pytest.raises(InputError, match="derived_from"):
        user.add("From nowhere.", derived_from=[999_999])


def test_contradicting_a_trusted_memory_is_quarantined_and_costs_trust(settings: Settings, user: MemoryEngine) -> None:
    truth = user.add(FACT)  # the user's own memory: trust 1.0, a reference
    with _as(settings, "poisoner") as poisoner:
        held = poisoner.add(FALSE)
    assert held.quarantined and held.agent_id == "poisoner"
    (entry,) = user.quarantine()
    assert entry["id"] == held.id and f"contradicts trusted memory {truth.id} (numbers)" in entry["reason"]
    (signal,) = user.trust_history("poisoner")
    assert signal["kind"] == "contradiction" and signal["detail"]["contradicts"] == truth.id
    # alpha halved (betrayal discount), beta + 3: 2 / 7
    assert _trust(user, "poisoner") == pytest.approx(2 / 7, abs=1e-6)


def test_a_prior_trust_agent_is_no_reference_for_contradictions(settings: Settings, user: MemoryEngine) -> None:
    with _as(settings, "first") as first:
        first.add(FALSE)  # an unproven agent writes first
    with _as(settings, "second") as second:
        record = second.add(FACT)
    assert not record.quarantined
    assert user.trust_history("second") == []


def test_a_fresh_identity_may_not_overrule_an_established_writer_below_the_reference_level(
    settings: Settings, user: MemoryEngine
) -> None:
    with _as(settings, "honest") as honest:
        voucher = honest.add("A lighthouse keeper trims the wick every evening.")
        truth = honest.add(FACT)
    user.feedback(voucher.id, "up")  # vouched: alpha 4 -> 6
    user.feedback(voucher.id, "down")  # beta 2 -> 4: trust 0.6, under the reference level 0.75
    assert 0.5 < _trust(user, "honest") < settings.trust_reference_level
    with _as(settings, "newcomer") as newcomer:
        assert newcomer.add(FALSE).quarantined  # a fresh identity against an established writer
    with _as(settings, "peer") as peer:
        own = peer.add("The fog horn sounds twice a minute.")
    user.feedback(own.id, "up")  # the peer is vouched for too: below the reference level it is held for review only
    with _as(settings, "peer") as peer:
        held = peer.add(FALSE + " ")
    assert held.quarantined
    (entry,) = [q for q in user.quarantine() if q["id"] == held.id]
    assert "below the reference level, for review" in entry["reason"] and entry["conflicts_with"]["id"] == truth.id
    assert "contradiction" not in [h["kind"] for h in user.trust_history("peer")]  # no signal: the user settles it
    assert truth.id in [r.id for r in user.search(FACT, k=3)]


def test_a_write_burst_is_held_beyond_the_limit_and_signalled_once(settings: Settings, user: MemoryEngine) -> None:
    texts = [f"Observation {i}: the beam rotated {i + 10} times in a minute at station {i}." for i in range(6)]
    with _as(settings, "flooder", trust_burst_max_writes=3) as flooder:
        results = flooder.add_many(texts, progress=False)
    assert [r.quarantined for r in results] == [False, False, False, True, True, True]
    assert [e["kind"] for e in user.trust_history("flooder")] == ["burst"]
    assert user.stats()["memories"] == 3 and user.stats()["quarantined"] == 3


def test_user_overwrite_or_deletion_soon_after_a_write_counts_against_the_writer(
    settings: Settings, user: MemoryEngine
) -> None:
    with _as(settings, "hasty") as hasty:
        one = hasty.add("The fog horn sounds twice a minute.")
        two = hasty.add("The keeper's cottage has three rooms.")
        hasty.update(one.id, title="own edit")  # its own change is no signal
    user.update(one.id, content="The fog horn sounds once a minute.")
    user.erase([two.id])
    kinds = [(e["kind"], e["weight"]) for e in user.trust_history("hasty")]
    assert kinds == [("user_overwrite", 2.0), ("user_delete", 2.0)]
    assert _trust(user, "hasty") == pytest.approx(4 / 10)


def test_a_distrusted_agent_may_not_change_memories(settings: Settings, user: MemoryEngine) -> None:
    record = user.add("The light is visible for twenty nautical miles.")
    for _ in range(2):
        user.trust.signal("t", "vandal", "contradiction")
    with _as(settings, "vandal") as vandal, pytest.raises(WriteBlockedError, match="below"):
        vandal.update(record.id, content="The light is visible for two nautical miles.")
    assert user.get(record.id).content == "The light is visible for twenty nautical miles."


def test_search_weighs_evidence_by_trust(settings: Settings, user: MemoryEngine) -> None:
    with _as(settings, "liar") as liar:
        lie = liar.add("Sourdough starter is fed with flour and water every single day.")
    with _as(settings, "baker") as baker:
        fact = baker.add("Sourdough starter is fed with flour and water every day or two.")
    for _ in range(3):
        user.feedback(fact.id, "up")
    for _ in range(4):
        user.trust.signal("t", "liar", "contradiction")
    for mode in ("lexical", "dense", "hybrid"):
        results = user.search("sourdough starter fed with flour and water every single day", mode=mode, k=2)
        assert [r.id for r in results] == [fact.id, lie.id], mode
        assert results[0].trust is not None and results[1].trust is not None
        assert results[0].trust > 0.8 > 0.1 > results[1].trust
    with open_engine(settings.model_copy(update={"trust_ranking": False}), tenant="t") as plain:
        lexical = plain.search("sourdough starter fed with flour and water every single day", mode="lexical", k=2)
        assert [r.id for r in lexical] == [lie.id, fact.id]  # without trust the closer wording wins
        assert lexical[0].trust is None


def test_a_failure_inside_the_trust_check_blocks_the_write(
    settings: Settings, user: MemoryEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    user.add("Something stored before the failure.")

    def broken(self: TrustModel, *args: object, **kwargs: object) -> object:
        raise RuntimeError("injected trust failure")

    monkeypatch.setattr(TrustModel, "agents_trust", broken)
    with _as(settings, "any") as agent:
        with pytest.raises(WriteBlockedError, match=r"check failed .*injected trust failure.*nothing was written"):
            agent.add("This must not be stored.")
        with pytest.raises(WriteBlockedError):
            agent.add_many(["Neither this.", "Nor this."], progress=False)
    monkeypatch.undo()
    assert user.stats()["memories"] == 1 and user.stats()["quarantined"] == 0
    assert not user.store.contents_of("t") or "must not" not in " ".join(user.store.contents_of("t").values())


def test_a_failure_in_the_bookkeeping_inside_the_transaction_rolls_the_write_back(
    settings: Settings, user: MemoryEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: TrustModel, *args: object, **kwargs: object) -> int:
        raise RuntimeError("injected bookkeeping failure")

    monkeypatch.setattr(TrustModel, "count_writes", broken)
    with _as(settings, "any") as agent, pytest.raises(WriteBlockedError, match="bookkeeping failed"):
        agent.add("This must not be stored either.")
    monkeypatch.undo()
    assert user.store.contents_of("t") == {}
    assert user.stats()["vectors"] == 0


def test_the_error_message_is_one_sentence(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, one_sentence: Any
) -> None:
    monkeypatch.setattr(TrustModel, "agents_trust", lambda *a, **k: (_ for _ in ()).throw(KeyError("x")))
    with _as(settings, "any") as agent, pytest.raises(WriteBlockedError) as info:
        agent.add("Blocked.")
    one_sentence(str(info.value))
