"""The user's corrections as trust signals (``hopmem.memory.trust.corrections``): a correction judges someone else's
text only, goes to the author of the current text, and commits with the change or not at all.

The rule misfired in ``hopmem bench concurrency``: each worker writes through the user's handle labelled with its
agent id and erases some of its own writes; every erase counted as the user deleting the agent's fresh memory
(``user_delete``, weight 2), two took the agent from 0.67 to 0.40, below the threshold, and from then on its adds
were quarantined and its updates refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hopmem.memory.engine import MemoryEngine
from hopmem.memory.records import MemoryRecord
from hopmem.memory.trust.corrections import content_author, fresh_author
from hopmem.memory.trust.model import TrustModel
from hopmem.settings import Settings, get_settings
from tests.memory.engines import open_engine

NOTES = [
    "The north pier was lengthened by forty metres after the storm of the previous winter.",
    "The harbour master logs every vessel that enters after sunset in a separate book.",
    "The tide gauge at the harbour mouth is read twice a day by the assistant keeper.",
    "The lifeboat station keeps two boats, one for the open sea and one for the estuary.",
    "The harbour's dredger works only at high water, when the channel is deep enough.",
]


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return get_settings(data_dir=tmp_path / "data", trust_gate=True)


@pytest.fixture()
def user(settings: Settings) -> Iterator[MemoryEngine]:
    with open_engine(settings, tenant="t") as opened:
        yield opened


def _record(provenance: list[dict[str, object]], agent: str | None = "a", quarantined: bool = False) -> MemoryRecord:
    return MemoryRecord(
        id=1, tenant="t", title="", content="x", source_class="agent", agent_id=agent, created_at=100.0,
        provenance=provenance, quarantined=quarantined,
    )  # fmt: skip


def test_the_author_of_the_current_text_is_who_last_set_it_through_its_own_handle() -> None:
    add = {"at": 100.0, "action": "add", "agent": "a"}
    assert content_author(_record([add])) == ("a", 100.0)
    imported = {**add, "via": "user"}
    assert content_author(_record([imported])) == (None, 100.0)  # the user's handle wrote it for "a"
    retitled = {"at": 150.0, "action": "update", "agent": "b", "fields": ["title"]}
    assert content_author(_record([add, retitled])) == ("a", 100.0)  # a new title is not a new text
    rewritten = {"at": 200.0, "action": "update", "agent": "b", "fields": ["content"]}
    assert content_author(_record([add, rewritten])) == ("b", 200.0)
    by_user = {"at": 300.0, "action": "update", "agent": None, "fields": ["content", "title"]}
    assert content_author(_record([add, rewritten, by_user])) == (None, 300.0)
    assert content_author(_record([], agent="old")) == ("old", 100.0)  # no chain: the row's writer
    assert fresh_author(_record([add]), now=150.0, window_s=60.0) == "a"
    assert fresh_author(_record([add]), now=161.0, window_s=60.0) is None  # too old to be a correction
    assert fresh_author(_record([add], quarantined=True), now=150.0, window_s=60.0) is None


def test_the_user_erasing_or_rewriting_its_own_imports_for_an_agent_is_no_correction(
    settings: Settings, user: MemoryEngine
) -> None:
    # The concurrency benchmark's pattern: the user's handle labels writes with an agent id, then changes and
    # erases some of them. None of it judges the agent.
    records = [user.add(text, agent="importer") for text in NOTES]
    first = records[0].provenance[0]
    assert (first["agent"], first["via"]) == ("importer", "user")
    user.update(records[0].id, content=NOTES[0] + " It took two summers.", agent="importer")
    user.update(records[1].id, content=NOTES[1].replace("every", "each"))  # the user's own rewrite of its import
    user.erase([records[2].id])
    user.erase([records[3].id, records[4].id])
    assert user.trust_history("importer") == []
    assert user.trust_of("importer")[0].mean == pytest.approx(4 / 6)
    later = user.add("The breakwater lamp is green so that it is not taken for the lighthouse.", agent="importer")
    assert not later.quarantined
    assert user.update(records[0].id, title="pier", agent="importer").title == "pier"
    assert user.get(records[0].id).provenance[-1]["via"] == "user"


def test_the_user_correcting_an_agents_own_fresh_text_still_counts_against_that_agent(
    settings: Settings, user: MemoryEngine
) -> None:
    with open_engine(settings, tenant="t", agent="scribe") as scribe:
        first, second, third = (scribe.add(text) for text in NOTES[:3])
        scribe.erase([third.id])  # an agent retracting its own write: no signal
    with open_engine(settings, tenant="t", agent="editor") as editor:
        editor.update(second.id, content=NOTES[1] + " The book is kept in the tower.")
    user.erase([first.id, second.id])
    kinds = [(e["agent"], e["kind"], e["weight"]) for a in ("scribe", "editor") for e in _history(user, a)]
    # the erase judges whoever wrote each current text: the scribe's first note, the editor's rewrite of the second
    assert kinds == [("scribe", "user_delete", 2.0), ("editor", "user_delete", 2.0)]


def _history(user: MemoryEngine, agent: str) -> list[dict[str, object]]:
    return [{**e, "agent": agent} for e in user.trust_history(agent)]


def test_a_failing_correction_signal_rolls_the_erase_and_the_update_back(
    settings: Settings, user: MemoryEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_engine(settings, tenant="t", agent="scribe") as scribe:
        one, two = scribe.add(NOTES[0]), scribe.add(NOTES[1])

    def broken(self: TrustModel, *args: object, **kwargs: object) -> object:
        raise RuntimeError("injected signal failure")

    monkeypatch.setattr(TrustModel, "record", broken)
    with pytest.raises(RuntimeError, match="injected"):
        user.erase([one.id])
    with pytest.raises(RuntimeError, match="injected"):
        user.update(two.id, content="The harbour master keeps no book at all.")
    monkeypatch.undo()
    assert user.get(one.id).content == NOTES[0] and one.id in user.store.vector_ids("t")
    assert user.get(two.id).content == NOTES[1]
    assert user.trust_history("scribe") == []
    user.erase([one.id])  # and once the bookkeeping works, the same erase goes through with its signal
    assert [e["kind"] for e in user.trust_history("scribe")] == ["user_delete"]
