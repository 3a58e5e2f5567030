"""A LangGraph store whose items are hopmem memories: a LangGraph agent's long-term memory, searched, trusted and
erased like every other memory.

How LangGraph's model maps onto hopmem's:

* **tenant**: the ``Memory`` the store is opened over; a store never sees another tenant's items (open one store per
  user with ``Memory(settings, tenant=user)`` when users must not share).
* **agent**: who writes. ``HopmemStore(memory, agent="planner")`` (or a ``Memory`` opened with ``agent=``) makes
  every put that agent's write, so the trust gate judges it; without an agent the puts are the user's own.
* **namespace and key**: kept in the memory's metadata (``{"langgraph": {"namespace", "key", "value", "index"}}``,
  the value there exactly as put) and as tags (one per namespace prefix, one for the item, one, ``langgraph``, for
  every item), so ``get`` and query-less ``search`` are tag lookups (:meth:`hopmem.Memory.browse`) and ``search``
  with a query is :meth:`hopmem.Memory.search` restricted to the prefix's tag.
* **the text hopmem indexes** is what ``index`` names (LangGraph's field paths; the store's default is ``["$"]``,
  the whole value as JSON). ``index=False`` items are stored the same way but left out of query searches.

Trust and quarantine apply as to any write: a put the gate holds (a low-trust agent, a write burst, a
contradiction of a trusted memory) is stored in quarantine, so ``get`` and ``search`` do not see it until the user
approves it (``hopmem memory quarantine approve``); a put the gate refuses raises
:class:`~hopmem.memory.trust.gate.WriteBlockedError` and writes nothing. Search ranks by hopmem's trust-weighted
score, and ``min_trust`` hides items whose memory trust is lower. Delete goes through the one erase path (held
copies included). Items have no TTL (``supports_ttl`` is False).

Example::

    from langgraph.graph import StateGraph
    from hopmem.integrations.langgraph import HopmemStore

    store = HopmemStore(memory, agent="assistant")
    graph = StateGraph(State).add_node(...).compile(store=store)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from hopmem.integrations.base import memory_lock, missing_framework
from hopmem.memory.errors import InputError
from hopmem.memory.records import MemoryRecord
from hopmem.memory_api import Memory

try:
    from langgraph.store.base import (
        BaseStore,
        GetOp,
        InvalidNamespaceError,
        Item,
        ListNamespacesOp,
        MatchCondition,
        Op,
        PutOp,
        Result,
        SearchItem,
        SearchOp,
        validate_op_namespace,
    )
    from langgraph.store.base.embed import get_text_at_path, tokenize_path
except ImportError as exc:  # pragma: no cover - langgraph is a core dependency
    raise missing_framework("langgraph", "langgraph.store.base") from exc

__all__ = ["ROOT_TAG", "HopmemStore"]

log = logging.getLogger(__name__)

ROOT_TAG = "langgraph"
"""The tag every item of a :class:`HopmemStore` carries (``hopmem memory`` commands can filter by it)."""
UNINDEXED_TAG = "langgraph:unindexed"
"""The tag of items put with ``index=False`` (or whose index fields held no text): left out of query searches."""
MAX_SCAN = 1000
"""The most memories one query-less search or ``list_namespaces`` tag lookup reads (the limit of ``browse``)."""


def _digest(parts: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps(list(parts), ensure_ascii=False).encode()).hexdigest()[:32]


def prefix_tag(prefix: tuple[str, ...]) -> str:
    """The tag of every item whose namespace starts with ``prefix`` (the root tag for the empty prefix)."""
    return f"langgraph:ns:{_digest(prefix)}" if prefix else ROOT_TAG


def item_tag(namespace: tuple[str, ...], key: str) -> str:
    """The tag of the one item at ``namespace`` / ``key`` (hashed: labels and keys may be long or hold any text)."""
    return f"langgraph:item:{_digest((*namespace, '', key))}"  # '' is no label: the key stays apart


def _entry(record: MemoryRecord) -> dict[str, Any] | None:
    entry = record.metadata.get("langgraph")
    return entry if isinstance(entry, dict) and "namespace" in entry and "key" in entry else None


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """LangGraph's namespace match: a prefix or suffix pattern, ``*`` matching any one label."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    labels = namespace[: len(path)] if condition.match_type == "prefix" else namespace[len(namespace) - len(path) :]
    return all(p == "*" or p == label for p, label in zip(path, labels, strict=True))


def _compare(value: Any, wanted: Any) -> bool:
    """LangGraph's filter semantics (as its in-memory store): equality, nested dicts, ``$eq $ne $gt $gte $lt $lte``."""
    if isinstance(wanted, dict):
        if any(k.startswith("$") for k in wanted):
            return all(_operator(value, op, operand) for op, operand in wanted.items())
        return isinstance(value, dict) and all(_compare(value.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list | tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(wanted)
            and all(_compare(a, b) for a, b in zip(value, wanted, strict=True))
        )
    return bool(value == wanted)


def _operator(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(value == operand)
    if op == "$ne":
        return bool(value != operand)
    if value is None:
        return False
    comparisons = {"$gt": float.__gt__, "$gte": float.__ge__, "$lt": float.__lt__, "$lte": float.__le__}
    if op not in comparisons:
        raise ValueError(f"Unsupported filter operator {op!r}; use $eq, $ne, $gt, $gte, $lt or $lte.")
    return bool(comparisons[op](float(value), float(operand)))


class HopmemStore(BaseStore):
    """A LangGraph ``BaseStore`` over one tenant of a hopmem memory (see the module's docstring for the mapping).

    Args:
        memory: the memory (and tenant) the items live in.
        agent: the agent the puts are written as (default: the memory's own agent; None writes as the user).
        source_class: the source class of the items' memories (default ``agent`` when there is an agent, else
            ``user``).
        index: the field paths whose text hopmem indexes when a put names none (LangGraph's syntax; default
            ``["$"]``, the whole value as JSON).
        min_trust: items whose memory trust is below this are left out of ``get`` and ``search`` (default: none).

    Raises:
        InputError: when ``agent`` differs from the agent ``memory`` was opened as (a handle acts only as its agent).
    """

    supports_ttl = False

    def __init__(
        self,
        memory: Memory,
        *,
        agent: str | None = None,
        source_class: str | None = None,
        index: list[str] | None = None,
        min_trust: float | None = None,
    ) -> None:
        if agent is not None and memory.agent is not None and agent != memory.agent:
            raise InputError(
                f"This Memory acts as agent {memory.agent!r}, so its store cannot write as {agent!r}; "
                "open a Memory with that agent."
            )
        self.memory = memory
        self.agent = agent or memory.agent
        self.source_class = source_class or ("agent" if self.agent else "user")
        self.index_fields = list(index) if index else ["$"]
        self.min_trust = min_trust

    # --- the BaseStore contract ------------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order, one at a time (a put is seen by a later get of the same batch)."""
        results: list[Result] = []
        with memory_lock(self.memory):
            for op in ops:
                validate_op_namespace(op)
                if isinstance(op, GetOp):
                    results.append(self._get(op.namespace, op.key))
                elif isinstance(op, PutOp):
                    self._put(op)
                    results.append(None)
                elif isinstance(op, SearchOp):
                    results.append(self._search(op))
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list_namespaces(op))
                else:
                    raise ValueError(f"Unknown store operation {type(op).__name__}.")
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread, so the event loop is free while SQLite and the embedder work."""
        return await asyncio.to_thread(self.batch, list(ops))

    # --- operations ------------------------------------------------------------------------------------------------

    def _find(self, namespace: tuple[str, ...], key: str) -> tuple[MemoryRecord, float] | None:
        """The newest visible memory of the item (an approved held copy may sit beside an older one)."""
        for record, trust in self.memory.browse(tags=[item_tag(namespace, key)], limit=10):
            entry = _entry(record)
            if entry is not None and tuple(entry["namespace"]) == namespace and entry["key"] == key:
                return record, trust
        return None

    def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        found = self._find(namespace, key)
        if found is None or not self._trusted(found[1]):
            return None
        record = found[0]
        entry = _entry(record) or {}
        return Item(
            value=dict(entry.get("value") or {}),
            key=key,
            namespace=namespace,
            created_at=_when(record.created_at),
            updated_at=_when(record.updated_at),
        )

    def _text(self, value: Mapping[str, Any], index: list[str] | bool | None) -> tuple[str, bool]:
        """The text hopmem indexes for a value, and whether query searches may find it.

        Raises:
            InputError: when the value is not JSON (LangGraph's contract; hopmem keeps it as JSON metadata).
        """
        try:
            whole = json.dumps(dict(value), sort_keys=True, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"A store value must be JSON (strings, numbers, lists, objects): {exc}.") from exc
        if index is False:
            return whole, False
        fields = self.index_fields if index is None or index is True else list(index)
        texts = [t for f in fields for t in (get_text_at_path(value, f if f == "$" else tokenize_path(f)))]
        text = "\n".join(t for t in texts if t.strip())
        return (text, True) if text else (whole, False)

    def _put(self, op: PutOp) -> None:
        namespace, key = tuple(op.namespace), str(op.key)
        if op.value is None:
            self.memory.erase(tags=[item_tag(namespace, key)])  # every copy, held ones too
            return
        if op.ttl is not None:
            raise NotImplementedError("HopmemStore keeps items until they are deleted; put them with ttl=None.")
        if len(namespace) > 60:
            raise InvalidNamespaceError(f"HopmemStore takes namespaces of at most 60 labels, not {len(namespace)}.")
        value = dict(op.value)
        text, searchable = self._text(value, op.index)
        entry = {"namespace": list(namespace), "key": key, "value": value, "index": op.index}
        title = "/".join(namespace) + f": {key}"
        tags = [ROOT_TAG, *(prefix_tag(namespace[:n]) for n in range(1, len(namespace) + 1))]
        tags.append(item_tag(namespace, key))
        if not searchable:
            tags.append(UNINDEXED_TAG)
        found = self._find(namespace, key)
        if found is not None:
            record = found[0]
            if record.content == text and _entry(record) == entry and sorted(record.tags) == sorted(tags):
                return  # unchanged: no provenance event
            self.memory.update(
                record.id, content=text, title=title, tags=tags, metadata={"langgraph": entry}, agent=self.agent
            )
            return
        options: dict[str, Any] = {"title": title, "tags": tags, "metadata": {"langgraph": entry}}
        options |= {"agent": self.agent, "source_class": self.source_class}
        added = self.memory.add(text, **options)
        stored = _entry(added)
        if stored is None or tuple(stored["namespace"]) != namespace or stored["key"] != key:
            # The same text is already another memory (hopmem keeps one memory per text): name the item in it.
            self.memory.add(f"{text}\n\n({'/'.join(namespace)}/{key})", **options)

    def _trusted(self, trust: float | None) -> bool:
        return self.min_trust is None or trust is None or trust >= self.min_trust

    def _search(self, op: SearchOp) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        wanted = max(0, op.offset) + max(0, op.limit)
        if wanted == 0:
            return []
        tag = prefix_tag(prefix)
        found: Iterator[tuple[MemoryRecord, float | None, float | None]]
        if op.query:
            k = min(1000, wanted * (4 if op.filter else 2) + 10)
            found = ((r.record, r.trust, r.score) for r in self.memory.search(op.query, k=k, tags=[tag]))
        else:
            found = ((r, t, None) for r, t in self.memory.browse(tags=[tag], limit=MAX_SCAN))
        items: list[SearchItem] = []
        seen: set[tuple[tuple[str, ...], str]] = set()
        for record, trust, score in found:
            entry = _entry(record)
            if entry is None or (op.query and UNINDEXED_TAG in record.tags) or not self._trusted(trust):
                continue
            namespace, key = tuple(entry["namespace"]), str(entry["key"])
            value = dict(entry.get("value") or {})
            if namespace[: len(prefix)] != prefix or (namespace, key) in seen:
                continue
            if op.filter and not all(_compare(value.get(f), w) for f, w in op.filter.items()):
                continue
            seen.add((namespace, key))
            items.append(
                SearchItem(
                    namespace=namespace,
                    key=key,
                    value=value,
                    created_at=_when(record.created_at),
                    updated_at=_when(record.updated_at),
                    score=None if score is None else float(score),
                )
            )
            if len(items) >= wanted:
                break
        return items[op.offset :]

    def _namespaces(self) -> set[tuple[str, ...]]:
        """Every namespace holding a visible item: a tag lookup, or a scan of the tenant when there are more."""
        listed = self.memory.browse(tags=[ROOT_TAG], limit=MAX_SCAN)
        records: Iterable[MemoryRecord] = (r for r, _ in listed)
        if len(listed) >= MAX_SCAN:
            log.info("more than %d LangGraph items: list_namespaces scans the tenant's memories", MAX_SCAN)
            records = self.memory.export()
        return {tuple(entry["namespace"]) for r in records if (entry := _entry(r)) is not None}

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        namespaces = [ns for ns in self._namespaces() if all(_matches(c, ns) for c in op.match_conditions or ())]
        if op.max_depth is not None:
            namespaces = [ns[: op.max_depth] for ns in namespaces]
        return sorted(set(namespaces))[op.offset : op.offset + op.limit]
