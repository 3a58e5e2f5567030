"""hopmem's configured LLM as a LangChain chat model, with tool calls made by constrained decoding.

``HopmemChatModel`` wraps the LLM the settings name (llama.cpp, transformers, an OpenAI-compatible server such as
vLLM: :func:`hopmem.agent_api.configured_llm`), so a LangGraph agent can run offline on the same model as hopmem's
own agent. Small local models rarely write tool calls on their own; here the model does not have to: after
``bind_tools``, a call is generated under a JSON schema (a llama.cpp grammar, a server's guided decoding), first the
tool's name among the bound ones (or ``none`` to answer in words), then its arguments under the tool's own
parameter schema. ``tool_choice`` (a tool's name, or ``any``) skips the first step and forces a call, as LangChain's
models do. How well the model picks and fills a tool is its own quality: the bundled SmolLM2-135M writes valid calls,
not necessarily sensible ones; a larger model named by ``llm_model`` does better.

Example::

    model = HopmemChatModel.from_settings(settings).bind_tools([search_tool(memory)], tool_choice="search_memory")
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from hopmem.agent_api import configured_llm
from hopmem.integrations.base import missing_framework
from hopmem.memory.errors import ConfigError
from hopmem.settings import Settings

try:
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from pydantic import ConfigDict, Field
except ImportError as exc:  # pragma: no cover - langchain-core comes with langgraph, a core dependency
    raise missing_framework("langchain-core", "langchain_core") from exc

__all__ = ["HopmemChatModel"]

NO_TOOL = "none"
"""The choice that answers in words instead of calling a tool (offered unless ``tool_choice`` forces a call)."""


def _role(message: BaseMessage) -> str:
    return {"system": "system", "human": "user", "ai": "assistant"}.get(message.type, "user")


def chat_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as hopmem's ``{"role", "content"}`` turns (system, user, assistant: what every chat
    template takes). A tool call becomes the assistant's line naming it; a tool result a user turn quoting it."""
    turns = []
    for message in messages:
        text = message.content if isinstance(message.content, str) else json.dumps(message.content)
        if isinstance(message, AIMessage) and message.tool_calls:
            called = "; ".join(f"{c['name']}({json.dumps(c['args'], ensure_ascii=False)})" for c in message.tool_calls)
            text = f"{text}\n(I called {called}.)".strip()
        elif isinstance(message, ToolMessage):
            text = f"Result of {message.name or 'the tool'}:\n{text}"
        turns.append({"role": _role(message), "content": text})
    return turns


class HopmemChatModel(BaseChatModel):
    """A LangChain chat model over a hopmem ``ChatLLM`` (see the module's docstring for how tool calls are made).

    Attributes:
        llm: the hopmem LLM (:func:`hopmem.agent_api.configured_llm`, or any object with its ``complete`` and
            ``complete_json``).
        max_tokens: the most tokens of a reply in words.
        max_call_tokens: the most tokens of a tool call's arguments.
        temperature: 0 is greedy (the same messages give the same reply).
        tools: the bound tools, as OpenAI function schemas (set by :meth:`bind_tools`).
        tool_choice: None or ``auto`` (the model may call a tool), ``any`` (it must call one), or a tool's name.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    llm: Any
    max_tokens: int = 256
    max_call_tokens: int = 128
    temperature: float = 0.0
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> HopmemChatModel:
        """The model over the LLM ``settings`` name.

        Raises:
            ConfigError: when ``llm_backend`` is ``none`` (there is no model to chat with).
        """
        llm = configured_llm(settings)
        if llm is None:
            raise ConfigError("HopmemChatModel needs an LLM, and llm_backend is 'none'; name a backend.")
        return cls(llm=llm, **options)

    @property
    def _llm_type(self) -> str:
        return "hopmem"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": getattr(self.llm, "name", type(self.llm).__name__), "temperature": self.temperature}

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any) -> HopmemChatModel:
        """A copy of this model that may call ``tools`` (LangChain tools, functions or schemas).

        Raises:
            ValueError: when ``tool_choice`` names a tool that is not among ``tools``.
        """
        schemas = [convert_to_openai_tool(t) for t in tools]
        names = [s["function"]["name"] for s in schemas]
        if tool_choice not in (None, "auto", "any", "required", *names):
            raise ValueError(f"tool_choice {tool_choice!r} is none of the tools ({', '.join(names)}) or any/auto.")
        return self.model_copy(update={"tools": schemas, "tool_choice": tool_choice})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turns = chat_messages(messages)
        name = self._pick_tool(turns) if self.tools else NO_TOOL
        if name == NO_TOOL:
            reply = self.llm.complete(turns, max_tokens=self.max_tokens, temperature=self.temperature, stop=stop)
            message = AIMessage(content=reply.text, usage_metadata=_usage(reply))
        else:
            message = self._call(turns, name)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _functions(self) -> dict[str, dict[str, Any]]:
        return {s["function"]["name"]: s["function"] for s in self.tools}

    def _pick_tool(self, turns: list[dict[str, str]]) -> str:
        """The tool to call (or ``none``): forced by ``tool_choice``, else the model's choice under an enum schema."""
        functions = self._functions()
        if self.tool_choice in functions:
            return str(self.tool_choice)
        forced = self.tool_choice in ("any", "required")
        options = list(functions) if forced else [*functions, NO_TOOL]
        if len(options) == 1:
            return options[0]
        menu = "\n".join(f"- {n}: {f.get('description', '')}" for n, f in functions.items())
        ask = f"Tools you can call:\n{menu}\nWhich tool do you call next? Answer with its name" + (
            "." if forced else f", or {NO_TOOL!r} to answer the user directly."
        )
        schema = {"type": "object", "properties": {"tool": {"enum": options}}, "required": ["tool"]}
        choice, _ = self.llm.complete_json(
            [*turns, {"role": "user", "content": ask}], schema, max_tokens=32, temperature=self.temperature
        )
        return str(choice["tool"]) if isinstance(choice, dict) else NO_TOOL

    def _call(self, turns: list[dict[str, str]], name: str) -> AIMessage:
        """A tool call of ``name``, its arguments generated under the tool's parameter schema."""
        function = self._functions()[name]
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        schema = {
            "type": "object",
            "properties": parameters.get("properties", {}),
            "required": parameters.get("required", []),
        }
        asked = next((t["content"] for t in reversed(turns) if t["role"] == "user"), "")
        fields = ", ".join(f"{k} ({v.get('description', v.get('type', ''))})" for k, v in schema["properties"].items())
        ask = (
            f"To answer {asked!r}, call the tool {name}: {function.get('description', '')}\n"
            f"Write its arguments as JSON with the fields {fields or 'none'}."
        )
        args, completion = self.llm.complete_json(
            [*turns, {"role": "user", "content": ask}],
            schema,
            max_tokens=self.max_call_tokens,
            temperature=self.temperature,
        )
        call = {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}
        return AIMessage(content="", tool_calls=[call], usage_metadata=_usage(completion))


def _usage(completion: Any) -> Any:
    prompt, generated = int(completion.prompt_tokens), int(completion.completion_tokens)
    return {"input_tokens": prompt, "output_tokens": generated, "total_tokens": prompt + generated}
