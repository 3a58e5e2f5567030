"""One agent run in a worker thread, so that a stopped or abandoned answer never keeps the agent locked.

The chat's event handler is a generator that gradio advances step by step; when the user presses Stop, gradio
cancels it and may leave it suspended, so a lock held across its ``yield`` would stay held and the next question
would wait forever. Here the worker thread holds the agent's lock and runs ``Agent.stream`` to its end, or until
the run's ``stop`` event is set (by the Stop button, or when the handler is closed), and the handler only reads the
events from a queue, checking the stop flag while it waits, so that a stopped handler returns at once even while
the run waits on an LLM server. The run itself then ends at its next event (no later step, no write-back), or when
the server answers or times out (``llm_timeout_s``); until then that agent is busy, and a question to it waits.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hopmem import Agent

_DONE = object()
POLL_S = 0.2
"""How often a reader waiting for the next event checks whether the run was stopped."""


def stream_in_worker(
    agent: Agent, lock: threading.Lock, question: str, thread_id: str, stop: threading.Event
) -> Iterator[dict[str, Any]]:
    """The events of ``agent.stream(question, thread_id=...)``, produced in a worker thread that holds ``lock``.

    Raises:
        Exception: whatever the run raised (a hopmem error in one sentence), in the caller's thread.
    """
    events: queue.Queue[Any] = queue.Queue()

    def work() -> None:
        try:
            with lock:
                run = agent.stream(question, thread_id=thread_id)
                try:
                    for event in run:
                        events.put(event)
                        if stop.is_set():
                            break
                finally:
                    close = getattr(run, "close", None)  # a generator: closing it ends the graph's run where it stands
                    if close is not None:
                        close()
        except Exception as exc:
            events.put(exc)
        finally:
            events.put(_DONE)

    threading.Thread(target=work, name="hopmem-ui-run", daemon=True).start()
    try:
        while True:
            try:
                item = events.get(timeout=POLL_S)
            except queue.Empty:
                if stop.is_set():  # stopped while the run waits (on an LLM server, say): leave it to end alone
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
