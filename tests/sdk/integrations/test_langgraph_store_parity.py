"""``HopmemStore`` and LangGraph's own ``InMemoryStore`` given the same random operations answer alike: every get,
namespace listing and filtered search (as sets where the two order differently: LangGraph's store lists in insertion
order, hopmem's newest first).

One difference is by design: ``InMemoryStore`` keeps listing a namespace after its last item is deleted (and lists
one a ``get`` merely looked in: its dict of namespaces is a ``defaultdict``), while ``HopmemStore`` lists the
namespaces that hold items, as LangGraph's database stores do. The listings are compared over namespaces that hold
items."""

from __future__ import annotations

import random

from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from hopmem import Memory
from hopmem.integrations.langgraph import HopmemStore

NAMESPACES = [("users", "ann"), ("users", "ann", "notes"), ("users", "bo"), ("teams", "red", "notes")]
KEYS = ["a", "b", "c"]


def _apply(stores: list[BaseStore], seed: int, steps: int) -> int:
    """Run the same random puts and deletes on every store; returns how many deletes removed an item."""
    rng = random.Random(seed)
    removed = 0
    for step in range(steps):
        namespace, key, delete = rng.choice(NAMESPACES), rng.choice(KEYS), rng.random() < 0.3
        removed += delete and stores[0].get(namespace, key) is not None
        for store in stores:
            if delete:
                store.delete(namespace, key)
            else:
                store.put(namespace, key, {"text": f"step {step} {namespace[-1]} {key}", "n": step % 5})
    return removed


def _view(store: BaseStore) -> dict[str, object]:
    live = {item.namespace for item in store.search((), limit=1000)}

    def holding(listed: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        return [ns for ns in listed if any(full[: len(ns)] == ns for full in live)]

    return {
        "items": {
            (ns, k): (item.value if (item := store.get(ns, k)) is not None else None) for ns in NAMESPACES for k in KEYS
        },
        "namespaces": holding(store.list_namespaces()),
        "prefix": holding(store.list_namespaces(prefix=("users",))),
        "suffix": holding(store.list_namespaces(suffix=("notes",))),
        "depth": holding(store.list_namespaces(max_depth=1)),
        "wild": holding(store.list_namespaces(prefix=("*", "ann"))),
        "filtered": sorted(
            (i.namespace, i.key) for i in store.search(("users",), filter={"n": {"$gte": 2}}, limit=100)
        ),
        "exact": sorted((i.namespace, i.key) for i in store.search((), filter={"n": 3}, limit=100)),
    }


def test_hopmem_store_answers_as_langgraphs_in_memory_store(memory: Memory) -> None:
    reference, hopmem_store = InMemoryStore(), HopmemStore(memory, agent="assistant")
    removed = _apply([reference, hopmem_store], seed=9, steps=30)
    expected = _view(reference)
    items = expected["items"]
    assert isinstance(items, dict) and removed >= 2
    assert 3 <= sum(v is not None for v in items.values()) < len(items)  # some slots filled, some emptied by deletes
    assert _view(hopmem_store) == expected
    assert hopmem_store.list_namespaces() == expected["namespaces"]  # hopmem lists only what holds items
