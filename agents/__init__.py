"""hopmem.agents: the LangGraph agent, its nodes and the LLM backends.

Modules import LangGraph, llama.cpp and HTTP clients only inside the functions that need them.
"""

from __future__ import annotations
