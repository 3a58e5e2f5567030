"""An agent's change of a memory's content meets the trust gate, and an agent's handle erases only its own memories.

Before these rules an agent key could rewrite the user's memory into a lie (no gate ran on updates) or erase the
whole tenant, past every defence a new write meets. Real engines on SQLite files, the real embedder and gate.
"""

from __future__ import annotations

import pytest

from hopmem.memory.engine import MemoryEngine
from hopmem.memory.errors import InputError
from hopmem.memory.trust.gate import WriteBlockedError
from hopmem.settings import Settings
from tests.memory.engines import open_engine
from tests.memory.test_trust import FACT, FALSE


def _as(settings: Settings, agent: str) -> MemoryEngine:
    return open_engine(settings, tenant="t", agent=agent)


def test_an_agent_cannot_rewrite_a_trusted_memory_into_its_contradiction(
    settings: Settings, user: MemoryEngine
) -> None:
    fact = user.add(FACT)
    with _as(settings, "alice") as alice:
        alices = alice.add("Alice measured the tide at 4.2 metres on Monday.")
    for _ in range(4):
        user.feedback(alices.id, "up")  # alice earns trust: her memory becomes a reference
    with _as(settings, "mallory") as mallory:
        with pytest.raises(WriteBlockedError, match=f"contradicts trusted memory {fact.id}"):
            mallory.update(fact.id, content=FALSE)
        with pytest.raises(WriteBlockedError, match=r"below 0\.50, so it may not change memories"):
            mallory.update(alices.id, content="Alice measured the tide at 1.2 metres on Monday.")  # it lost trust
    with (
        _as(settings, "trudy") as trudy,
        pytest.raises(WriteBlockedError, match=f"contradicts trusted memory {alices.id}"),
    ):
        trudy.update(alices.id, content="Alice measured the tide at 1.2 metres on Monday.")
    with _as(settings, "editor") as editor:
        # Editing without contradicting stays open to agents (the memory's trust becomes the lowest writer's).
        assert list(editor.update(fact.id, tags=["tunnel"]).tags) == ["tunnel"]
        # Having tagged it does not make the editor a writer of its text.
        with pytest.raises(WriteBlockedError, match=f"contradicts trusted memory {fact.id}"):
            editor.update(fact.id, content=FALSE)
        with pytest.raises(WriteBlockedError):
            editor.update(fact.id, tags=["tunnel", "x"])  # its failed rewrite cost it its trust
    assert user.get(fact.id).content == FACT
    assert user.get(alices.id).content == alices.content
    assert user.memory_trust([fact.id])[fact.id] < 4 / 6  # the editor is among its writers, now distrusted


def test_an_agent_changes_its_own_memory_and_the_user_changes_any(settings: Settings, user: MemoryEngine) -> None:
    with _as(settings, "alice") as alice:
        own = alice.add("Alice logged the tunnel's fan speed every morning.")
        changed = alice.update(own.id, content="Alice logged the tunnel's fan speed every evening.", title="fans")
    assert (changed.content, changed.title) == ("Alice logged the tunnel's fan speed every evening.", "fans")
    assert list(user.update(own.id, tags=["tunnel"]).tags) == ["tunnel"]


def test_an_agents_change_that_contradicts_a_trusted_memory_is_refused(settings: Settings, user: MemoryEngine) -> None:
    fact = user.add(FACT)
    with _as(settings, "sleeper") as sleeper:
        own = sleeper.add("The Cranfield wind tunnel was painted grey in its first year.")
        with pytest.raises(WriteBlockedError, match=f"contradicts trusted memory {fact.id}"):
            sleeper.update(own.id, content=FALSE)
        assert sleeper.get(own.id).content == own.content
        assert sleeper.trust_of("sleeper")[0].mean < 4 / 6  # a refused rewrite counts against the writer
        assert [e["kind"] for e in user.trust_history("sleeper")] == ["contradiction"]
        # The user's handle labelling the agent meets the same gate.
        with pytest.raises(WriteBlockedError):
            user.update(own.id, content=FALSE, agent="sleeper")
        # Written as a new memory, the same text goes where the gate sends it: held for the user's review.
        held = sleeper.add(FALSE)
    assert held.quarantined
    assert [h["id"] for h in user.quarantine()] == [held.id]
    # The user's own change is not gated.
    assert user.update(own.id, content=FALSE).content == FALSE


def test_an_agent_erases_only_its_own_memories(settings: Settings, user: MemoryEngine) -> None:
    fact = user.add(FACT, tags=["tunnel"])
    with _as(settings, "alice") as alice:
        alices = alice.add("Alice logged the tunnel's fan speed every morning.", tags=["tunnel"])
    with _as(settings, "mallory") as mallory:
        own = mallory.add("Mallory noted the tunnel's door was blue.", tags=["tunnel"])
        other = mallory.add("Mallory noted the tunnel's roof leaked.", tags=["tunnel"])
        with pytest.raises(InputError, match="Only the user can erase the whole tenant"):
            mallory.erase(everything=True)
        with pytest.raises(InputError, match=f"memory {fact.id}, {alices.id} was not written by 'mallory'"):
            mallory.erase([own.id, fact.id, alices.id])
        with pytest.raises(InputError, match="cannot erase 'alice'"):
            mallory.erase(agent="alice")
        assert user.stats()["memories"] == 4  # the refused calls erased nothing, not even mallory's own id
        report = mallory.erase(tags=["tunnel"])  # a filter on an agent's handle selects among its own
        assert report.memories == 2
        assert mallory.erase([own.id]).memories == 0
    assert sorted(r.id for r in user.get_many([fact.id, alices.id, own.id, other.id])) == sorted([fact.id, alices.id])
    assert user.erase(everything=True).memories == 2
