"""Structured (JSON-schema constrained) output of both LLM backends: the real SmolLM2 in-process through llama.cpp,
and the OpenAI-compatible client against a real llama-cpp-python server process serving the same model."""

from __future__ import annotations

from typing import Any

import pytest

from hopmem.agents.llm import ChatLLM
from hopmem.agents.llm.openai_compat import OpenAICompatLLM
from hopmem.agents.llm.schema import parse_json_reply, schema_errors
from hopmem.memory.errors import LLMError

PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 40},
        "languages": {"type": "array", "items": {"type": "string", "maxLength": 20}, "minItems": 1, "maxItems": 2},
        "kind": {"type": "string", "enum": ["writer", "painter", "scientist"]},
    },
    "required": ["name", "languages", "kind"],
    "additionalProperties": False,
}
ASK: list[dict[str, str]] = [
    {"role": "system", "content": "Reply with JSON only."},
    {"role": "user", "content": "Describe Bram Stoker, the author of Dracula: his name, languages and kind."},
]
# llama.cpp's grammar cannot express "minimum": the model is free to write a number the schema then rejects.
HUGE_YEAR: dict[str, Any] = {
    "type": "object",
    "properties": {"year": {"type": "integer", "minimum": 5_000_000, "maximum": 5_000_001}},
    "required": ["year"],
    "additionalProperties": False,
}
LONG: dict[str, Any] = {
    "type": "object",
    "properties": {"essay": {"type": "string", "minLength": 400, "maxLength": 500}},
    "required": ["essay"],
    "additionalProperties": False,
}


def _one_sentence(message: str) -> None:
    assert message.endswith(".")
    assert len(message) < 500


def _check_person(value: object) -> None:
    assert isinstance(value, dict)
    assert schema_errors(value, PERSON) == []
    assert set(value) == {"name", "languages", "kind"}
    assert value["kind"] in ("writer", "painter", "scientist")


# --- the validator on its own ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"name": "A", "languages": ["en"]}, "missing 'kind'"),
        ({"name": "A", "languages": ["en"], "kind": "poet"}, "is not one of"),
        ({"name": "A", "languages": [], "kind": "writer"}, "fewer than 1 items"),
        ({"name": "A", "languages": ["a", "b", "c"], "kind": "writer"}, "more than 2 items"),
        ({"name": "A", "languages": ["en"], "kind": "writer", "x": 1}, "unexpected key"),
        ({"name": True, "languages": ["en"], "kind": "writer"}, "expected string"),
        ({"name": "x" * 41, "languages": ["en"], "kind": "writer"}, "longer than 40"),
    ],
)
def test_schema_errors_name_each_violation(value: dict[str, Any], problem: str) -> None:
    errors = schema_errors(value, PERSON)
    assert any(problem in e for e in errors), errors


def test_booleans_are_not_integers() -> None:
    assert schema_errors({"year": True}, HUGE_YEAR) and schema_errors({"year": 5_000_000}, HUGE_YEAR) == []
    assert any("below" in e for e in schema_errors({"year": 1897}, HUGE_YEAR))


@pytest.mark.parametrize("text", ["", '{"name": "Bram', "not json", "42", '"a string"', "[" * 100_000])
def test_parse_json_reply_refuses_what_is_not_a_json_object(text: str) -> None:
    with pytest.raises(LLMError) as info:
        parse_json_reply(text, PERSON, source="test model")
    _one_sentence(str(info.value))


# --- llama.cpp in-process (grammar-constrained) --------------------------------------------------------------------


def test_llamacpp_output_follows_the_schema(smollm2: ChatLLM) -> None:
    value, completion = smollm2.complete_json(ASK, PERSON, max_tokens=96)
    _check_person(value)
    assert completion.completion_tokens > 0
    assert completion.text.lstrip().startswith("{")


def test_llamacpp_reply_cut_off_by_max_tokens_is_an_llm_error(smollm2: ChatLLM) -> None:
    with pytest.raises(LLMError, match="did not return valid JSON") as info:
        smollm2.complete_json(ASK, LONG, max_tokens=12)
    _one_sentence(str(info.value))


def test_llamacpp_reply_breaking_a_schema_the_grammar_cannot_express_is_an_llm_error(smollm2: ChatLLM) -> None:
    ask = [{"role": "user", "content": "In which year was Dracula published? Reply with JSON."}]
    with pytest.raises(LLMError, match="breaks the schema") as info:
        smollm2.complete_json(ask, HUGE_YEAR, max_tokens=24)
    _one_sentence(str(info.value))


# --- OpenAI-compatible client against a real server -----------------------------------------------------------------


def test_server_output_follows_the_schema_and_the_dialect_is_remembered(llama_server: str) -> None:
    llm = OpenAICompatLLM("smollm2", base_url=llama_server, timeout_s=120, retries=0)
    assert llm.json_format == "auto"
    value, completion = llm.complete_json(ASK, PERSON, max_tokens=96)
    _check_person(value)
    # llama-cpp-python's server refuses OpenAI's json_schema form; the client switched to json_object + schema.
    assert llm.json_format == "json_object"
    assert completion.completion_tokens > 0
    again, _ = llm.complete_json(ASK, PERSON, max_tokens=96)
    assert again == value  # temperature 0, same server: same answer


def test_server_that_refuses_json_schema_gives_one_clear_error(llama_server: str) -> None:
    llm = OpenAICompatLLM("smollm2", base_url=llama_server, timeout_s=120, retries=2, json_format="json_schema")
    with pytest.raises(LLMError, match="refused the structured-output request") as info:
        llm.complete_json(ASK, PERSON, max_tokens=16)
    _one_sentence(str(info.value))


def test_server_reply_cut_off_by_max_tokens_is_an_llm_error(llama_server: str) -> None:
    llm = OpenAICompatLLM("smollm2", base_url=llama_server, timeout_s=120, retries=0, json_format="json_object")
    with pytest.raises(LLMError, match="did not return valid JSON"):
        llm.complete_json(ASK, LONG, max_tokens=12)


def test_server_plain_completion_still_works(llama_server: str) -> None:
    llm = OpenAICompatLLM("smollm2", base_url=llama_server, timeout_s=120, retries=0)
    reply = llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=8)
    assert reply.text.strip() and reply.completion_tokens > 0


def test_invalid_json_format_is_refused() -> None:
    with pytest.raises(ValueError, match="json_format"):
        OpenAICompatLLM("m", base_url="http://127.0.0.1:9/v1", json_format="guided_json")
