"""``hopmem.Agent``: ask questions over the memory, one-off or as a conversation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from hopmem.agents.config import AgentConfig
from hopmem.agents.deps import GraphDeps
from hopmem.agents.graph import build_graph
from hopmem.agents.llm import ChatLLM, load_llm
from hopmem.agents.llm.metered import MeteredLLM
from hopmem.answer import Answer
from hopmem.memory.errors import ConfigError, InputError
from hopmem.memory_api import Memory
from hopmem.settings import Settings, get_settings

if TYPE_CHECKING:
    from hopmem.agents.multihop import TreeHopRetriever
    from hopmem.agents.rerank import Reranker

logger = logging.getLogger(__name__)


def validate_question(question: object, max_chars: int) -> str:
    """Refuse empty, non-string and oversized questions with one sentence."""
    if not isinstance(question, str):
        raise InputError(f"The question must be text, not {type(question).__name__}.")
    if not question.strip():
        raise InputError("The question is empty; ask something.")
    if len(question) > max_chars:
        raise InputError(
            f"The question has {len(question):,} characters, above the limit of {max_chars:,} "
            "(HOPMEM_MAX_QUESTION_CHARS); shorten it."
        )
    return question.strip()


def configured_llm(settings: Settings) -> ChatLLM | None:
    """The LLM the settings name (loaded once per process), or None when ``llm_backend`` is ``none``."""
    return load_llm(
        settings.llm_backend,
        settings.llm_model,
        context_window=settings.llm_context,
        threads=settings.llm_threads,
        seed=settings.llm_seed,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        timeout_s=settings.llm_timeout_s,
        repeat_penalty=settings.llm_repeat_penalty,
        adapter=settings.llm_adapter,
        flash_attn=settings.llm_flash_attn,
    )


class Agent:
    """The question-answering agent over a :class:`Memory`.

    Args:
        memory: the memory to answer from (opened from ``settings`` when omitted).
        settings: configuration; read from the environment when omitted.
        llm: an LLM to use instead of the configured backend (``None`` uses the settings).
        planner_llm: the model that plans instead of ``llm``: with ``planner="tuned"`` the tuned planner's (instead of
            loading the decomposer adapter), with ``planner="llm"`` a planning-only LLM (``hopmem eval qa`` passes
            one so that plans come from SmolLM2 while answers stay extractive).

    Examples:
        Ask over the bundled sample documents without an LLM (the answer is then extractive, and says so):

        >>> import asyncio, tempfile, hopmem
        >>> from hopmem.demo import sample_dir
        >>> settings = hopmem.get_settings(
        ...     data_dir=tempfile.mkdtemp(), llm_backend="none", reranker="none", remember_answers=False
        ... )
        >>> memory = hopmem.Memory(settings)
        >>> _ = memory.ingest([sample_dir()], progress=False)
        >>> agent = hopmem.Agent(memory, settings=settings)
        >>> answer = agent.ask("How do honeybees share directions?")
        >>> [c["title"] for c in answer.citations if c.get("cited")]
        ['How honeybees share directions']
        >>> [name for name, ms in answer.trace_view().timings()]
        ['plan', 'retrieve', 'hop', 'fuse', 'rerank', 'answer', 'remember']
        >>> answer.trace_view().warnings()[0]
        ('answer', 'no LLM configured: extractive answer')

        The same from async code (a server; in a notebook cell ``await agent.aask(...)`` directly):

        >>> asyncio.run(agent.aask("How do honeybees share directions?")).answer == answer.answer
        True
        >>> async def steps():
        ...     events = agent.astream("How do honeybees share directions?")
        ...     return [e["step"]["step"] async for e in events if e["type"] == "step"]
        >>> asyncio.run(steps())[-1]
        'remember'
        >>> agent.close()
    """

    def __init__(
        self,
        memory: Memory | None = None,
        *,
        settings: Settings | None = None,
        llm: ChatLLM | None = None,
        planner_llm: ChatLLM | None = None,
    ) -> None:
        self.settings = settings or (memory.settings if memory else get_settings())
        self.memory = memory or Memory(self.settings)
        self._llm = llm
        self._llm_loaded = llm is not None
        self._planner_llm = planner_llm
        self._graphs: dict[bool, Any] = {}
        self._checkpoint_conn: sqlite3.Connection | None = None

    @property
    def llm(self) -> ChatLLM | None:
        if not self._llm_loaded:
            self._llm = configured_llm(self.settings)
            self._llm_loaded = True
        return self._llm

    def _graph(self, conversational: bool) -> Any:
        if conversational not in self._graphs:
            checkpointer = None
            if conversational:
                from langgraph.checkpoint.sqlite import SqliteSaver

                path = self.settings.checkpoint_path
                path.parent.mkdir(parents=True, exist_ok=True)
                self._checkpoint_conn = sqlite3.connect(str(path), check_same_thread=False)
                checkpointer = SqliteSaver(self._checkpoint_conn)
            reranker, reranker_warning = self._reranker()
            planner_llm = self._tuned_planner()
            deps = GraphDeps(
                searcher=self.memory.searcher,
                llm=MeteredLLM(self.llm) if self.llm is not None else None,  # each call's cost goes into the trace
                config=AgentConfig.from_settings(self.settings),
                hopper=self._hopper(),
                reranker=reranker,
                reranker_warning=reranker_warning,
                remember=self._remember,
                planner_llm=MeteredLLM(planner_llm) if planner_llm is not None else None,
            )
            self._graphs[conversational] = build_graph(deps, checkpointer=checkpointer)
        return self._graphs[conversational]

    def _tuned_planner(self) -> ChatLLM | None:
        """The model that plans besides the LLM: with ``planner="tuned"`` the one given, else the decomposer adapter
        loaded (None, with a warning, when none is installed: the rules plan then); with ``planner="llm"`` the
        planning-only LLM given, if any; else None."""
        if self.settings.planner != "tuned":
            return self._planner_llm if self.settings.planner == "llm" else None
        if self._planner_llm is None:
            from hopmem.agents.tuned_planner import load_tuned_planner
            from hopmem.memory.errors import ModelNotAvailableError

            try:
                self._planner_llm = load_tuned_planner(self.settings.planner_adapter or None, self.settings.cache_dir)
            except ModelNotAvailableError as exc:
                logger.warning("The tuned planner is not available (%s); the rules plan instead.", exc)
                return None
        return self._planner_llm

    def _hopper(self) -> TreeHopRetriever | None:
        """TreeHop for the hop step (the packaged model unless ``treehop_model`` names one); None when hops < 2."""
        from hopmem.agents.multihop import configured_hopper

        s = self.settings
        return configured_hopper(
            self.memory.store,
            self.memory.index,
            self.memory.embedder,
            model_dir=s.treehop_model,
            top_n=s.treehop_top_n,
            hops=s.treehop_hops,
        )

    def _reranker(self) -> tuple[Reranker | None, str | None]:
        """The configured reranker; without the default cross-encoder, none and a warning for the trace.

        Raises:
            ConfigError: when ``reranker_model`` names a folder that holds no model (an explicit choice fails loudly).
        """
        s = self.settings
        if s.reranker == "none":
            return None, None
        from hopmem.agents.rerank import load_reranker

        try:
            reranker = load_reranker(
                s.reranker,
                s.reranker_model or None,
                cache_dir=s.cache_dir,
                batch_size=s.rerank_batch_size,
                server=s.reranker_server,
                served_model=s.reranker_served_model,
            )
        except ConfigError as exc:
            if s.reranker_model:
                raise
            logger.warning("%s The fused order is kept.", exc)
            return None, f"{exc} The fused order is kept."
        return reranker, None

    def _remember(self, question: str, answer: str, cited: list[int]) -> dict[str, Any]:
        """Write an answer back as an ``agent`` memory derived from the memories it cites (through the trust gate)."""
        record = self.memory.add(
            f"Question: {question}\nAnswer: {answer}",
            title=f"Answer: {question[:80]}",
            agent=self.memory.agent or self.settings.agent_name,
            source_class="agent",
            derived_from=cited,
            metadata={"kind": "answer", "question": question, "cited": cited},
        )
        return {"id": record.id, "quarantined": record.quarantined, "derived_from": cited}

    def ask(self, question: str) -> Answer:
        """Answer one question from the memory, with numbered citations and a trace."""
        question = validate_question(question, self.settings.max_question_chars)
        state = self._graph(False).invoke({"question": question, "tenant": self.memory.tenant, "history": []})
        return Answer(question, state["answer"], state["citations"], state["trace"])

    def chat(self, question: str, *, thread_id: str | None = None) -> Answer:
        """Answer within a conversation; the thread (default: a new one) is checkpointed in SQLite."""
        question = validate_question(question, self.settings.max_question_chars)
        thread_id = thread_id or uuid.uuid4().hex[:12]
        state = self._graph(True).invoke(
            {"question": question, "tenant": self.memory.tenant}, config=self._thread(thread_id)
        )
        return Answer(question, state["answer"], state["citations"], state["trace"], thread_id=thread_id)

    def stream(self, question: str, *, thread_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Answer while reporting progress: the events of one run, in order.

        ``{"type": "step", "step": {...}}`` when a step ends (the trace record), ``{"type": "token", "text": ...}``
        for each piece of the answer as the LLM generates it, and last ``{"type": "answer", "answer": Answer}``.
        With ``thread_id`` the run is a turn of that checkpointed conversation.
        """
        question = validate_question(question, self.settings.max_question_chars)
        conversational = thread_id is not None
        config: dict[str, Any] = self._thread(thread_id) if thread_id is not None else {"configurable": {}}
        config["configurable"]["stream_tokens"] = True
        inputs: dict[str, Any] = {"question": question, "tenant": self.memory.tenant}
        if not conversational:
            inputs["history"] = []
        final: dict[str, Any] = {}
        for mode, chunk in self._graph(conversational).stream(
            inputs, config=config, stream_mode=["updates", "custom", "values"]
        ):
            if mode == "custom" and isinstance(chunk, dict) and "token" in chunk:
                yield {"type": "token", "text": chunk["token"]}
            elif mode == "updates" and isinstance(chunk, dict):
                for update in chunk.values():
                    if isinstance(update, dict) and update.get("trace"):
                        yield {"type": "step", "step": update["trace"][-1]}
            elif mode == "values":
                final = chunk
        answer = Answer(question, final["answer"], final["citations"], final["trace"], thread_id=thread_id)
        yield {"type": "answer", "answer": answer}

    async def aask(self, question: str) -> Answer:
        """:meth:`ask` for async code (a notebook cell, a server): the run goes to a worker thread."""
        return await asyncio.to_thread(self.ask, question)

    async def astream(self, question: str, *, thread_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """The events of :meth:`stream` for ``async for``; each arrives as soon as the run produces it.

        The run goes on in a worker thread; leaving the loop early (``break``, a cancelled task) stops it at its next
        event, and nodes not yet started (the write-back of the answer) never run.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        done = object()

        def hand_over(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed first: nobody is listening any more
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def pump() -> None:
            events = self.stream(question, thread_id=thread_id)
            try:
                for event in events:
                    if stop.is_set():
                        break
                    hand_over(event)
            except Exception as exc:  # re-raised in the consumer, where the caller can handle it
                hand_over(exc)
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
                hand_over(done)

        threading.Thread(target=pump, daemon=True, name="hopmem-astream").start()
        try:
            while True:
                item = await queue.get()
                if item is done:
                    return
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            stop.set()

    def _thread(self, thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": f"{self.memory.tenant}:{thread_id}"}}

    def history(self, thread_id: str) -> list[dict[str, str]]:
        """The turns of a conversation so far."""
        snapshot = self._graph(True).get_state(self._thread(thread_id))
        return list(snapshot.values.get("history", [])) if snapshot and snapshot.values else []

    def threads(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """This tenant's conversations, most recent first: ``thread_id``, ``title`` (the first question), ``turns``.

        Read from the checkpoint file (``checkpoint_path``); a tenant's threads are the ones :meth:`chat` and
        :meth:`stream` wrote under its name, so another tenant's never show.
        """
        path = self.settings.checkpoint_path
        if not path.exists():
            return []
        prefix = f"{self.memory.tenant}:"
        conn = sqlite3.connect(str(path), timeout=10.0)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "checkpoints" not in tables:
                return []
            rows = conn.execute(
                "SELECT thread_id FROM checkpoints WHERE substr(thread_id, 1, ?) = ? GROUP BY thread_id"
                " ORDER BY max(checkpoint_id) DESC LIMIT ?",
                (len(prefix), prefix, limit),
            ).fetchall()
        finally:
            conn.close()
        found = []
        for (full,) in rows:
            thread_id = str(full)[len(prefix) :]
            turns = self.history(thread_id)
            questions = [t["content"] for t in turns if t.get("role") == "user"]
            if questions:
                found.append({"thread_id": thread_id, "title": questions[0][:80], "turns": len(questions)})
        return found

    def close(self) -> None:
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None
        self.memory.close()
