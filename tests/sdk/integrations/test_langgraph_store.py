"""``HopmemStore``: LangGraph's store contract over hopmem memories, used by real LangGraph graphs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TypedDict

import pytest
from langgraph.config import get_store
from langgraph.graph import START, StateGraph
from langgraph.store.base import BaseStore, GetOp, InvalidNamespaceError, PutOp

from hopmem import InputError, Memory
from hopmem.integrations.langgraph import ROOT_TAG, HopmemStore
from tests.sdk.integrations.conftest import settings_for

ALICE = ("users", "alice", "prefs")
BOB = ("users", "bob", "prefs")


@pytest.fixture()
def store(memory: Memory) -> Iterator[HopmemStore]:
    yield HopmemStore(memory, agent="assistant")


def test_put_get_update_delete_round_trip(store: HopmemStore, memory: Memory) -> None:
    assert store.get(ALICE, "food") is None
    store.put(ALICE, "food", {"text": "Alice likes pizza", "stars": 4})
    item = store.get(ALICE, "food")
    assert item is not None
    assert (item.namespace, item.key, item.value) == (ALICE, "food", {"text": "Alice likes pizza", "stars": 4})
    record = memory.get(memory.browse(tags=[ROOT_TAG])[0][0].id)  # the item is a hopmem memory, written as the agent
    assert (record.agent_id, record.source_class) == ("assistant", "agent")
    time.sleep(0.01)
    store.put(ALICE, "food", {"text": "Alice now prefers sushi", "stars": 5})
    updated = store.get(ALICE, "food")
    assert updated is not None and updated.value["text"] == "Alice now prefers sushi"
    assert updated.created_at == item.created_at and updated.updated_at > item.updated_at
    assert len(memory.browse(tags=[ROOT_TAG])) == 1  # updated in place, with its provenance
    assert [e["action"] for e in memory.get(record.id).provenance][-1] == "update"
    store.put(ALICE, "food", {"text": "Alice now prefers sushi", "stars": 5})  # unchanged: no new event
    assert len(memory.get(record.id).provenance) == 2
    store.delete(ALICE, "food")
    assert store.get(ALICE, "food") is None
    assert memory.browse(tags=[ROOT_TAG]) == []


def test_equal_values_under_two_keys_stay_two_items(store: HopmemStore, memory: Memory) -> None:
    memory.add('{"text": "tea"}')  # the user already holds this very text
    store.put(ALICE, "drink", {"text": "tea"})
    store.put(BOB, "drink", {"text": "tea"})
    alice, bob = store.get(ALICE, "drink"), store.get(BOB, "drink")
    assert alice is not None and bob is not None and alice.namespace == ALICE and bob.namespace == BOB
    store.delete(ALICE, "drink")
    assert store.get(ALICE, "drink") is None and store.get(BOB, "drink") is not None


def test_search_by_query_filter_prefix_and_pages(store: HopmemStore) -> None:
    store.put(ALICE, "food", {"text": "Alice likes pizza with olives", "stars": 4})
    store.put(ALICE, "drink", {"text": "Alice drinks green tea in the morning", "stars": 2})
    store.put(BOB, "food", {"text": "Bob likes pizza too", "stars": 5})
    store.put(("users", "alicia"), "food", {"text": "Alicia likes pizza", "stars": 3})
    found = store.search(("users", "alice"), query="what pizza does she like")
    assert [(i.namespace, i.key) for i in found] == [(ALICE, "food"), (ALICE, "drink")]
    assert found[0].score is not None and found[0].score >= found[1].score
    assert {i.key for i in store.search(("users",), query="pizza", limit=10)} == {"food", "drink"}
    pizza = store.search(("users",), query="pizza", filter={"stars": {"$gte": 4}}, limit=10)
    assert sorted(i.namespace for i in pizza) == [ALICE, BOB]
    listed = store.search(("users",), filter={"stars": 3})
    assert [(i.namespace, i.value["stars"], i.score) for i in listed] == [(("users", "alicia"), 3, None)]
    newest_first = [i.key for i in store.search(("users",), limit=10)]
    assert newest_first == ["food", "food", "drink", "food"]
    assert [i.key for i in store.search(("users",), limit=2, offset=1)] == newest_first[1:3]
    assert store.search(("nobody",), query="pizza") == []


def test_index_fields_and_index_false(store: HopmemStore, memory: Memory) -> None:
    value = {"title": "Harbour notes", "body": {"text": "The ferry leaves at nine."}}
    store.put(ALICE, "doc", value, index=["body.text"])
    hit = memory.search("ferry leaves", k=1)[0]
    assert hit.record.content == "The ferry leaves at nine."  # hopmem indexes the named field's text
    store.put(ALICE, "secret", {"text": "The ferry code word is heron."}, index=False)
    assert [i.key for i in store.search(ALICE, query="ferry code word heron")] == ["doc"]
    assert "secret" in [i.key for i in store.search(ALICE)]  # still listed and fetched without a query
    assert store.get(ALICE, "secret") is not None


def test_list_namespaces_with_conditions_depth_and_pages(store: HopmemStore) -> None:
    for namespace in (ALICE, BOB, ("users", "alice", "notes"), ("teams", "blue", "prefs")):
        store.put(namespace, "k", {"text": "/".join(namespace)})
    assert store.list_namespaces() == [("teams", "blue", "prefs"), ("users", "alice", "notes"), ALICE, BOB]
    assert store.list_namespaces(prefix=("users", "alice")) == [("users", "alice", "notes"), ALICE]
    assert store.list_namespaces(suffix=("prefs",)) == [("teams", "blue", "prefs"), ALICE, BOB]
    assert store.list_namespaces(prefix=("users", "*", "prefs")) == [ALICE, BOB]
    assert store.list_namespaces(max_depth=2) == [("teams", "blue"), ("users", "alice"), ("users", "bob")]
    assert store.list_namespaces(limit=2, offset=1) == [("users", "alice", "notes"), ALICE]


def test_batch_runs_ops_in_order_and_checks_labels(store: HopmemStore) -> None:
    results = store.batch([PutOp(ALICE, "a", {"x": 1}), GetOp(ALICE, "a"), PutOp(ALICE, "a", None), GetOp(ALICE, "a")])
    assert results[0] is None and results[1] is not None and results[1].value == {"x": 1} and results[3] is None
    with pytest.raises(InvalidNamespaceError):
        store.batch([GetOp(("users", "a.b"), "k")])
    with pytest.raises(NotImplementedError):
        store.put(ALICE, "k", {"x": 1}, ttl=5.0)


def test_tenants_are_isolated(tmp_path: Path) -> None:
    alice_memory = Memory(settings_for(tmp_path), tenant="alice")
    bob_memory = Memory(settings_for(tmp_path), tenant="bob")
    alice, bob = HopmemStore(alice_memory), HopmemStore(bob_memory)
    alice.put(("prefs",), "food", {"text": "pizza"})
    bob.put(("prefs",), "food", {"text": "soup"})
    alice_item, bob_item = alice.get(("prefs",), "food"), bob.get(("prefs",), "food")
    assert alice_item is not None and bob_item is not None
    assert (alice_item.value, bob_item.value) == ({"text": "pizza"}, {"text": "soup"})
    assert [i.value for i in bob.search(("prefs",), query="pizza")] == [{"text": "soup"}]
    bob.delete(("prefs",), "food")
    assert alice.get(("prefs",), "food") is not None and bob.list_namespaces() == []
    alice_memory.close()
    bob_memory.close()


def test_quarantine_hides_held_puts_until_the_user_approves(tmp_path: Path) -> None:
    user = Memory(settings_for(tmp_path))
    strict = HopmemStore(Memory(settings_for(tmp_path, trust_threshold=0.9)), agent="newcomer")
    strict.put(ALICE, "claim", {"text": "The ferry is free on Sundays."})
    assert strict.get(ALICE, "claim") is None and strict.search(ALICE) == []
    held = [q["id"] for q in user.quarantine()]
    assert len(held) == 1
    user.approve(held)
    item = strict.get(ALICE, "claim")
    assert item is not None and item.value == {"text": "The ferry is free on Sundays."}
    strict.delete(ALICE, "claim")
    assert user.quarantine() == [] and strict.get(ALICE, "claim") is None
    user.close()


def test_min_trust_hides_items_of_distrusted_writers(tmp_path: Path) -> None:
    user = Memory(settings_for(tmp_path))
    HopmemStore(Memory(settings_for(tmp_path)), agent="rumours").put(ALICE, "gossip", {"text": "Bob sold his boat."})
    HopmemStore(Memory(settings_for(tmp_path)), agent="scribe").put(ALICE, "fact", {"text": "Bob owns a red boat."})
    gossip = user.browse(agent="rumours")[0][0].id
    for _ in range(3):
        user.feedback(gossip, "down")
    wary = HopmemStore(user, min_trust=0.5)
    assert wary.get(ALICE, "gossip") is None and wary.get(ALICE, "fact") is not None
    assert [i.key for i in wary.search(ALICE, query="Bob boat")] == ["fact"]
    assert {i.key for i in HopmemStore(user).search(ALICE, query="Bob boat")} == {"fact", "gossip"}
    user.close()


class Turn(TypedDict, total=False):
    user: str
    said: str
    recalled: list[str]


def remember_and_recall(state: Turn, *, store: BaseStore) -> Turn:
    """A graph node with the store injected by LangGraph (``store=`` at compile time)."""
    namespace = ("users", state["user"], "memories")
    store.put(namespace, f"m{len(store.search(namespace, limit=100))}", {"text": state["said"]})
    return {"recalled": [i.value["text"] for i in store.search(namespace, query=state["said"], limit=3)]}


def recall_with_get_store(state: Turn) -> Turn:
    """A node that reaches the store through ``langgraph.config.get_store()``."""
    items = get_store().search(("users", state["user"], "memories"), query="boats", limit=1)
    return {"recalled": [*state.get("recalled", []), *(i.value["text"] for i in items)]}


def test_a_langgraph_graph_uses_the_store_as_its_long_term_memory(store: HopmemStore, memory: Memory) -> None:
    graph = (
        StateGraph(Turn)
        .add_node("remember", remember_and_recall)
        .add_node("recall", recall_with_get_store)
        .add_edge(START, "remember")
        .add_edge("remember", "recall")
        .compile(store=store)
    )
    graph.invoke({"user": "alice", "said": "I keep a small sailing boat in Fundy."})
    result = graph.invoke({"user": "alice", "said": "My favourite food is pizza."})
    assert result["recalled"][0] == "My favourite food is pizza."
    assert result["recalled"][-1] == "I keep a small sailing boat in Fundy."
    assert graph.invoke({"user": "bob", "said": "Hello."})["recalled"][0] == "Hello."
    assert store.list_namespaces() == [("users", "alice", "memories"), ("users", "bob", "memories")]
    # what the graph remembered is hopmem memory: hopmem's own search finds it, with the writer's trust
    hit = memory.search("sailing boat Fundy", k=1)[0]
    assert hit.record.agent_id == "assistant" and hit.trust is not None

    async def async_node(state: Turn, *, store: BaseStore) -> Turn:
        await store.aput(("users", state["user"], "memories"), "async", {"text": state["said"]})
        found = await store.asearch(("users", state["user"], "memories"), query=state["said"], limit=1)
        item = await store.aget(("users", state["user"], "memories"), "async")
        assert item is not None
        return {"recalled": [found[0].value["text"], item.key]}

    async_graph = StateGraph(Turn).add_node("n", async_node).add_edge(START, "n").compile(store=store)
    result = asyncio.run(async_graph.ainvoke({"user": "carol", "said": "Tides at Fundy exceed fifteen metres."}))
    assert result["recalled"] == ["Tides at Fundy exceed fifteen metres.", "async"]
    assert ("users", "carol", "memories") in asyncio.run(store.alist_namespaces())


def test_values_must_be_json_and_a_handle_writes_only_as_its_agent(store: HopmemStore, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must be JSON"):
        store.put(ALICE, "when", {"at": datetime(2026, 1, 1)})
    assert store.get(ALICE, "when") is None
    as_bot = Memory(settings_for(tmp_path / "bot"), agent="bot")
    with pytest.raises(InputError, match="cannot write as 'other'"):
        HopmemStore(as_bot, agent="other")
    assert HopmemStore(as_bot).agent == "bot"
    as_bot.close()
