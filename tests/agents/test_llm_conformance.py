"""The chat-model contract (agents/llm/base.py), checked the same way for every LLM backend.

Each rule is a plain function ``check_xxx(llm)`` that raises AssertionError when the backend breaks it, so the same
checks run on the real backends and, at the end of this module, on small deliberately broken chat models (one rule
broken each) to show that every check catches what it is about.

The backends are built by :func:`hopmem.agents.llm.load_llm`, all on the bundled SmolLM2-135M-Instruct: ``llamacpp``
in-process, ``transformers`` in-process (the GGUF converted to float32 once and cached), and ``openai`` against a real
llama-cpp-python server process (the session's ``llama_server``). A backend that cannot be built here is skipped with
the reason, never replaced by a stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hopmem.agents.llm import ChatLLM, Completion, Message, load_llm
from hopmem.agents.llm.schema import parse_json_reply, schema_errors
from hopmem.memory.errors import LLMError, ModelNotAvailableError

MODEL = "SmolLM2-135M-Instruct"
ASK: list[Message] = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
STORY: list[Message] = [{"role": "user", "content": "Write a long story about a dragon who learns to fly."}]
COUNT: list[Message] = [{"role": "user", "content": "List the numbers from 1 to 10, separated by commas."}]
CITY: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "minLength": 1, "maxLength": 40}},
    "required": ["city"],
    "additionalProperties": False,
}
CITY_ASK: list[Message] = [
    {"role": "system", "content": 'You answer with a JSON object such as {"city": "Rome"}.'},
    {"role": "user", "content": "Which city is the capital of France?"},
]
ESSAY: dict[str, Any] = {
    "type": "object",
    "properties": {"essay": {"type": "string", "minLength": 400, "maxLength": 500}},
    "required": ["essay"],
    "additionalProperties": False,
}


# ---- the checks ----------------------------------------------------------------------------------------------------


def assert_one_sentence(message: str) -> None:
    """A user-facing error: one line that ends a sentence."""
    assert message.strip() and "\n" not in message, f"not one line: {message!r}"
    assert message.rstrip().endswith("."), f"does not end a sentence: {message!r}"


def expect_llm_error(what: str, call: Callable[[], object]) -> None:
    """``call`` must raise an LLMError with a one-sentence message; anything else is an AssertionError."""
    try:
        outcome = call()
    except LLMError as exc:
        assert_one_sentence(str(exc))
        return
    except Exception as exc:
        raise AssertionError(f"{what} raised {type(exc).__name__}, not an LLMError: {exc}") from exc
    raise AssertionError(f"{what} gave {str(outcome)[:120]!r} instead of an LLMError")


def check_names_its_model_and_context(llm: ChatLLM) -> None:
    assert isinstance(llm.name, str) and llm.name, f"the backend has no name: {llm.name!r}"
    assert isinstance(llm.context_window, int) and llm.context_window > 0, f"context window {llm.context_window!r}"


def check_complete_returns_text_and_usage(llm: ChatLLM) -> None:
    reply = llm.complete(ASK, max_tokens=16)
    assert isinstance(reply, Completion), f"complete returned {type(reply).__name__}, not a Completion"
    assert isinstance(reply.text, str) and reply.text.strip(), f"{llm.name} replied {reply.text!r}"
    assert isinstance(reply.model, str) and reply.model, f"{llm.name}: the reply names no model"
    assert 0 < reply.completion_tokens <= 16, f"{llm.name}: {reply.completion_tokens} completion tokens"
    assert reply.prompt_tokens > 0, f"{llm.name}: {reply.prompt_tokens} prompt tokens"


def check_max_tokens_bounds_the_reply(llm: ChatLLM) -> None:
    """A story would run on; six tokens hold at most six words (every word takes at least one token)."""
    reply = llm.complete(STORY, max_tokens=6)
    assert reply.completion_tokens <= 6, f"{llm.name}: {reply.completion_tokens} tokens for max_tokens=6"
    assert len(reply.text.split()) <= 6, f"{llm.name}: {reply.text!r} for max_tokens=6"
    streamed = "".join(llm.stream(STORY, max_tokens=6))
    assert len(streamed.split()) <= 6, f"{llm.name} streamed {streamed!r} for max_tokens=6"


def check_same_messages_same_reply(llm: ChatLLM) -> None:
    first = llm.complete(ASK, max_tokens=16).text
    assert llm.complete(ASK, max_tokens=16).text == first, f"{llm.name}: two replies at temperature 0 differ"


def check_stream_joins_to_the_complete_reply(llm: ChatLLM) -> None:
    pieces = list(llm.stream(ASK, max_tokens=16))
    assert all(isinstance(p, str) for p in pieces), f"{llm.name} streamed {pieces!r}"
    expected = llm.complete(ASK, max_tokens=16).text
    assert "".join(pieces) == expected, f"{llm.name} streamed {''.join(pieces)!r}, completed {expected!r}"


def check_stop_strings_end_the_reply_and_are_left_out(llm: ChatLLM) -> None:
    reply = llm.complete(COUNT, max_tokens=12, stop=[","]).text
    assert "," not in reply, f"{llm.name}: {reply!r} runs past the stop string ','"
    streamed = "".join(llm.stream(COUNT, max_tokens=12, stop=[","]))
    assert "," not in streamed, f"{llm.name} streamed {streamed!r} past the stop string ','"


def check_json_output_follows_the_schema(llm: ChatLLM) -> None:
    value, reply = llm.complete_json(CITY_ASK, CITY, max_tokens=24)
    assert schema_errors(value, CITY) == [], f"{llm.name} returned {value!r}, which breaks the schema"
    assert isinstance(reply, Completion) and reply.text.strip(), f"{llm.name}: no completion with the JSON"


def check_json_cut_off_by_max_tokens_is_an_llm_error(llm: ChatLLM) -> None:
    expect_llm_error(f"{llm.name}: JSON cut off at 3 tokens", lambda: llm.complete_json(CITY_ASK, ESSAY, max_tokens=3))


def check_a_prompt_longer_than_the_context_is_an_llm_error(llm: ChatLLM) -> None:
    long = [{"role": "user", "content": "word " * (llm.context_window + 200)}]
    expect_llm_error(f"{llm.name}: a prompt over the context window", lambda: llm.complete(long, max_tokens=4))


def check_count_tokens(llm: ChatLLM) -> None:
    short = llm.count_tokens("The Seine flows through Paris.")
    longer = llm.count_tokens("The Seine flows through Paris and then on to the sea at Le Havre.")
    assert isinstance(short, int) and 0 < short < longer, f"{llm.name} counts {short} and {longer} tokens"


CHECKS: tuple[Callable[[ChatLLM], None], ...] = (
    check_names_its_model_and_context,
    check_complete_returns_text_and_usage,
    check_max_tokens_bounds_the_reply,
    check_same_messages_same_reply,
    check_stream_joins_to_the_complete_reply,
    check_stop_strings_end_the_reply_and_are_left_out,
    check_json_output_follows_the_schema,
    check_json_cut_off_by_max_tokens_is_an_llm_error,
    check_a_prompt_longer_than_the_context_is_an_llm_error,
    check_count_tokens,
)


# ---- the backends --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[pytest.FixtureRequest], ChatLLM | None]


CASES: tuple[Case, ...] = (
    Case("llamacpp", lambda request: load_llm("llamacpp", MODEL, threads=1, seed=0)),
    Case("transformers", lambda request: load_llm("transformers", MODEL, threads=1, seed=0)),
    Case(
        "openai",
        lambda request: load_llm("openai", "smollm2", base_url=request.getfixturevalue("llama_server"), timeout_s=120),
    ),
)


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def llm(request: pytest.FixtureRequest) -> Iterator[ChatLLM]:
    """The backend of one case, loaded once per module (``load_llm`` also keeps it for the rest of the session)."""
    spec: Case = request.param
    try:
        built = spec.build(request)
    except ModelNotAvailableError as exc:
        pytest.skip(f"{spec.id} cannot run here: {exc}")
    assert built is not None
    yield built


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_every_backend_keeps_the_contract(llm: ChatLLM, check: Callable[[ChatLLM], None]) -> None:
    check(llm)


# ---- the checks catch what they are about --------------------------------------------------------------------------


class ScriptedLLM:
    """A correct chat model with no model: its tokens are whitespace-separated words and it says one fixed thing."""

    name = "scripted"
    context_window = 256
    REPLY = "The Seine flows through Paris, the capital of France, and on to the sea at Le Havre."

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _say(self, messages: list[Message], text: str, max_tokens: int, stop: list[str] | None) -> Completion:
        prompt = sum(self.count_tokens(m["content"]) for m in messages)
        if prompt > self.context_window:
            raise LLMError(f"The prompt has {prompt} tokens but the context window is {self.context_window}.")
        words = text.split()[:max_tokens]
        said = " ".join(words)
        for s in stop or []:
            said = said.split(s)[0] if s else said
        return Completion(said, self.name, prompt_tokens=prompt, completion_tokens=len(words))

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0, stop: list[str] | None = None
    ) -> Completion:
        return self._say(messages, self.REPLY, max_tokens, stop)

    def stream(
        self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0, stop: list[str] | None = None
    ) -> Iterator[str]:
        text = self.complete(messages, max_tokens=max_tokens, temperature=temperature, stop=stop).text
        yield from (text[i : i + 5] for i in range(0, len(text), 5))

    def complete_json(
        self, messages: list[Message], schema: dict[str, Any], *, max_tokens: int, temperature: float = 0.0
    ) -> tuple[dict[str, Any] | list[Any], Completion]:
        value = {"city": "Paris"} if "city" in schema.get("properties", {}) else {"essay": "many words " * 100}
        reply = self._say(messages, json.dumps(value), max_tokens, None)
        return parse_json_reply(reply.text, schema, source=f"scripted model {self.name}"), reply


class EmptyReplies(ScriptedLLM):
    REPLY = ""


class IgnoresMaxTokens(ScriptedLLM):
    def _say(self, messages: list[Message], text: str, max_tokens: int, stop: list[str] | None) -> Completion:
        return super()._say(messages, text, 10_000, stop)


class Unrepeatable(ScriptedLLM):
    calls = 0

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0, stop: list[str] | None = None
    ) -> Completion:
        self.calls += 1
        return self._say(messages, f"{self.calls} {self.REPLY}", max_tokens, stop)


class StreamsAnotherText(ScriptedLLM):
    def stream(
        self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0, stop: list[str] | None = None
    ) -> Iterator[str]:
        yield self.complete(messages, max_tokens=max_tokens, stop=stop).text.upper()


class KeepsTheStopString(ScriptedLLM):
    def _say(self, messages: list[Message], text: str, max_tokens: int, stop: list[str] | None) -> Completion:
        return super()._say(messages, text, max_tokens, None)


class UncheckedJson(ScriptedLLM):
    def complete_json(
        self, messages: list[Message], schema: dict[str, Any], *, max_tokens: int, temperature: float = 0.0
    ) -> tuple[dict[str, Any] | list[Any], Completion]:
        reply = self.complete(messages, max_tokens=max_tokens)
        return {"city": ""}, reply  # a value the schema rejects, handed on without a check


class PlainErrors(ScriptedLLM):
    def _say(self, messages: list[Message], text: str, max_tokens: int, stop: list[str] | None) -> Completion:
        if sum(self.count_tokens(m["content"]) for m in messages) > self.context_window:
            raise RuntimeError("index out of range in self")
        return super()._say(messages, text, max_tokens, stop)


class NoTokenizer(ScriptedLLM):
    def count_tokens(self, text: str) -> int:
        return 1


BROKEN: list[tuple[Callable[[ChatLLM], None], type[ScriptedLLM]]] = [
    (check_complete_returns_text_and_usage, EmptyReplies),
    (check_max_tokens_bounds_the_reply, IgnoresMaxTokens),
    (check_same_messages_same_reply, Unrepeatable),
    (check_stream_joins_to_the_complete_reply, StreamsAnotherText),
    (check_stop_strings_end_the_reply_and_are_left_out, KeepsTheStopString),
    (check_json_output_follows_the_schema, UncheckedJson),
    (check_json_cut_off_by_max_tokens_is_an_llm_error, UncheckedJson),
    (check_a_prompt_longer_than_the_context_is_an_llm_error, PlainErrors),
    (check_count_tokens, NoTokenizer),
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_a_correct_chat_model_passes_every_check(check: Callable[[ChatLLM], None]) -> None:
    check(ScriptedLLM())


@pytest.mark.parametrize(
    ("check", "broken"), BROKEN, ids=[f"{b.__name__}-{c.__name__.removeprefix('check_')}" for c, b in BROKEN]
)
def test_each_check_catches_a_chat_model_breaking_its_rule(
    check: Callable[[ChatLLM], None], broken: type[ScriptedLLM]
) -> None:
    with pytest.raises(AssertionError):
        check(broken())
