"""``make demo``: ingest the bundled sample documents and answer a question over them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from hopmem.agent_api import Agent
from hopmem.answer import Answer
from hopmem.memory.ingest import IngestReport
from hopmem.memory_api import Memory
from hopmem.settings import Settings


def sample_dir() -> Path:
    """The folder of the bundled sample (a few short Markdown articles written for hopmem)."""
    return Path(str(resources.files("hopmem.sample")))


def run_demo(question: str, settings: Settings) -> tuple[Answer, IngestReport]:
    """Ingest the sample into ``settings.data_dir`` and answer ``question``."""
    memory = Memory(settings)
    agent = Agent(memory)
    try:
        report = memory.ingest([sample_dir()], progress=False)
        return agent.ask(question), report
    finally:
        agent.close()
