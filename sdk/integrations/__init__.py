"""Framework integrations: hopmem's memory and agent behind LlamaIndex, LangChain and LangGraph interfaces.

Each framework has its own module, imported only when asked for, so ``import hopmem`` loads none of them:

* :mod:`hopmem.integrations.llama_index`: ``HopmemRetriever`` (a LlamaIndex ``BaseRetriever`` over
  :meth:`hopmem.Memory.search`) and ``HopmemQueryEngine`` (a ``BaseQueryEngine`` whose answer is
  :meth:`hopmem.Agent.ask`'s, its citations as source nodes);
* :mod:`hopmem.integrations.langchain`: ``HopmemRetriever`` (a LangChain ``BaseRetriever``), ``search_tool`` and
  ``remember_tool`` (tools an LLM agent calls: passages with ids, trust and sources; a write through the trust gate);
* :mod:`hopmem.integrations.chat_model`: ``HopmemChatModel``, hopmem's configured LLM as a LangChain chat model
  whose tool calls are generated under a JSON schema, so a LangGraph agent loop runs on a small local model;
* :mod:`hopmem.integrations.langgraph`: ``HopmemStore``, a LangGraph ``BaseStore`` whose items are hopmem memories,
  so a LangGraph agent's long-term memory is searched, trusted and erased like every other memory.

They are faces like the CLI and the servers: thin layers over ``hopmem.Memory`` and ``hopmem.Agent``, with no
policy of their own (tenant, trust and quarantine rules stay in the memory engine). See docs/integrations.md.
"""

from __future__ import annotations
