"""The transformers backend with the real packaged SmolLM2-135M (its GGUF dequantized to float32), a real peft LoRA
adapter, and the agent running on it end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers", reason="the transformers extra is not installed")
pytest.importorskip("gguf", reason="the transformers extra is not installed")

from hopmem.agents.llm import load_llm
from hopmem.agents.llm.schema import schema_errors
from hopmem.agents.llm.transformers_llm import TransformersLLM, _stop_prefix_len, json_part
from hopmem.memory.errors import ConfigError, LLMError, ModelNotAvailableError

MODEL = "SmolLM2-135M-Instruct"
ASK = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
CITY: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "minLength": 1, "maxLength": 40}},
    "required": ["city"],
    "additionalProperties": False,
}
CITY_ASK = [
    {"role": "system", "content": 'You answer with a JSON object such as {"city": "Rome"}.'},
    {"role": "user", "content": "Which city is the capital of France?"},
]
LONG: dict[str, Any] = {
    "type": "object",
    "properties": {"essay": {"type": "string", "minLength": 400, "maxLength": 500}},
    "required": ["essay"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``XDG_CACHE_HOME`` of this module: the converted checkpoint lands in ``<root>/hopmem/transformers``."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(scope="module")
def tllm(cache_root: Path) -> TransformersLLM:
    """The packaged SmolLM2 through transformers (converted from its GGUF once per module, one thread)."""
    return TransformersLLM(MODEL, threads=1, cache_dir=cache_root / "hopmem" / "transformers")


def _checkpoint(cache_root: Path) -> Path:
    folders = [p for p in (cache_root / "hopmem" / "transformers").iterdir() if (p / "model.safetensors").is_file()]
    assert len(folders) == 1, folders
    return folders[0]


def test_the_gguf_is_converted_once_and_later_loads_read_the_cache(tllm: TransformersLLM, cache_root: Path) -> None:
    folder = _checkpoint(cache_root)
    assert not list(folder.parent.glob("*.partial-*"))
    again = TransformersLLM(MODEL, cache_dir=folder.parent, context_window=512)
    assert again.load_s < tllm.load_s / 3  # the cached float32 checkpoint, not a second conversion
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    assert tllm.context_window == 8192  # from the model config
    assert again.context_window == 512  # from the argument
    assert again.complete(ASK, max_tokens=8).text == tllm.complete(ASK, max_tokens=8).text


def test_complete_returns_text_usage_and_timing(tllm: TransformersLLM) -> None:
    reply = tllm.complete(ASK, max_tokens=16)
    assert "paris" in reply.text.lower()
    assert reply.model == MODEL
    assert reply.prompt_tokens > tllm.count_tokens(ASK[0]["content"])  # the chat template adds its markers
    assert 0 < reply.completion_tokens <= 16
    assert reply.ms > 0
    assert reply.usage() == {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens}
    assert tllm.complete(ASK, max_tokens=16).text == reply.text  # greedy at temperature 0


def test_max_tokens_bounds_the_reply(tllm: TransformersLLM) -> None:
    short = tllm.complete([{"role": "user", "content": "Tell me a long story about a dragon."}], max_tokens=5)
    assert short.completion_tokens == 5
    assert tllm.count_tokens(short.text) <= 6


def test_stream_yields_the_same_text_as_complete_piece_by_piece(tllm: TransformersLLM) -> None:
    pieces = list(tllm.stream(ASK, max_tokens=16))
    assert len(pieces) > 1
    assert "".join(pieces) == tllm.complete(ASK, max_tokens=16).text


def test_stop_strings_cut_both_complete_and_stream_before_the_stop(tllm: TransformersLLM) -> None:
    full = tllm.complete(ASK, max_tokens=16).text
    word = "Paris" if "Paris" in full else full.split()[2]
    stopped = tllm.complete(ASK, max_tokens=16, stop=[word])
    assert stopped.text == full[: full.index(word)]
    assert stopped.completion_tokens < tllm.complete(ASK, max_tokens=16).completion_tokens
    assert "".join(tllm.stream(ASK, max_tokens=16, stop=[word])) == stopped.text


def test_sampling_is_seeded(tllm: TransformersLLM) -> None:
    story = [{"role": "user", "content": "Write one sentence about a dragon."}]
    first = tllm.complete(story, max_tokens=12, temperature=1.2).text
    assert tllm.complete(story, max_tokens=12, temperature=1.2).text == first


def test_complete_json_returns_a_value_that_follows_the_schema(tllm: TransformersLLM) -> None:
    value, reply = tllm.complete_json(CITY_ASK, CITY, max_tokens=24)
    assert schema_errors(value, CITY) == []
    assert isinstance(value, dict) and "paris" in value["city"].lower()
    assert reply.completion_tokens > 0


def test_complete_json_raises_llm_error_when_the_reply_is_cut_off_or_breaks_the_schema(tllm: TransformersLLM) -> None:
    with pytest.raises(LLMError) as cut:
        tllm.complete_json(CITY_ASK, LONG, max_tokens=3)
    assert "transformers model" in str(cut.value) and str(cut.value).endswith(".")
    with pytest.raises(LLMError, match=r"breaks the schema|not return valid JSON"):
        tllm.complete_json(CITY_ASK, LONG, max_tokens=24)


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
        ('Sure! {"a": [1, 2]} Hope it helps.', '{"a": [1, 2]}'),
        ("[1, 2]", "[1, 2]"),
        ("no json here", "no json here"),
    ],
)
def test_the_json_value_is_taken_out_of_fences_and_chatter(text: str, part: str) -> None:
    assert json_part(text) == part


def test_text_that_may_begin_a_stop_string_is_held_back() -> None:
    assert _stop_prefix_len("the end of St", ["Stop"]) == 2
    assert _stop_prefix_len("the end", ["Stop"]) == 0
    assert _stop_prefix_len("abc", None) == 0


def test_a_prompt_longer_than_the_context_window_is_an_llm_error(tllm: TransformersLLM, cache_root: Path) -> None:
    small = TransformersLLM(MODEL, cache_dir=_checkpoint(cache_root).parent, context_window=32)
    with pytest.raises(LLMError, match="context window is 32") as info:
        small.complete([{"role": "user", "content": "word " * 60}], max_tokens=4)
    assert str(info.value).endswith(".")


def test_a_lora_adapter_changes_the_output(tllm: TransformersLLM, cache_root: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(_checkpoint(cache_root), dtype=torch.float32)
    torch.manual_seed(0)
    # init_lora_weights=False: random A and B, so the adapter's product is non-zero from the start
    lora = get_peft_model(
        base, LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    assert any(float(p.detach().abs().sum()) > 0 for n, p in lora.named_parameters() if "lora_B" in n)
    lora.save_pretrained(tmp_path / "lora")
    tuned = TransformersLLM(MODEL, adapter=str(tmp_path / "lora"), cache_dir=_checkpoint(cache_root).parent)
    assert tuned.name == f"{MODEL}+lora"
    prompt = tllm._tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        before = tllm._model(**prompt).logits
        after = tuned._model(**prompt).logits
    assert float((before - after).abs().max()) > 1e-2
    assert tuned.complete(ASK, max_tokens=12).text != tllm.complete(ASK, max_tokens=12).text


def test_missing_models_and_adapters_are_one_sentence_errors(tmp_path: Path, cache_root: Path) -> None:
    with pytest.raises(ModelNotAvailableError) as missing:
        TransformersLLM(str(tmp_path / "nowhere.gguf"), cache_dir=tmp_path)
    with pytest.raises(ModelNotAvailableError, match=r"adapter_config\.json") as no_adapter:
        TransformersLLM(MODEL, adapter=str(tmp_path / "no-adapter"), cache_dir=_checkpoint(cache_root).parent)
    for error in (missing.value, no_adapter.value):
        assert str(error).endswith(".") and len(str(error)) < 400
    with pytest.raises(ModelNotAvailableError):
        load_llm("transformers", str(tmp_path / "no-such-folder"))
    with pytest.raises(ConfigError, match="transformers backend only"):
        load_llm("llamacpp", MODEL, adapter=str(tmp_path))
    with pytest.raises(ConfigError, match="llamacpp, openai, transformers or none"):
        load_llm("torch", MODEL)


def test_the_agent_answers_with_the_transformers_backend(
    tllm: TransformersLLM, cache_root: Path, tmp_path: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hopmem import Agent, Memory
    from hopmem.settings import get_settings

    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_root))  # the module's converted checkpoint: no second conversion
    memory = Memory(get_settings(data_dir=tmp_path, llm_backend="transformers", llm_threads=1, llm_max_tokens=40))
    assert memory.ingest([sample_dir], progress=False).added == 4
    agent = Agent(memory)
    answer = agent.ask("How do honeybees tell other bees where flowers are?")
    step = next(s for s in answer.trace if s["step"] == "answer")
    assert step["mode"] == "llm"
    assert step["model"] == MODEL
    assert 0 < step["usage"]["completion_tokens"] <= 40
    assert answer.answer.strip()
    assert answer.citations[0]["title"] == "How honeybees share directions"
    agent.close()


@pytest.mark.slow
def test_a_conversion_that_another_process_finished_first_is_used(
    tllm: TransformersLLM, cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes (pytest workers, two users' first runs) convert the same file: the other one renames its folder
    # into place after this one checked for it and before this one renames, so the rename meets a full folder.
    import shutil

    from hopmem.agents.llm.transformers_checkpoint import convert_gguf
    from hopmem.memory.model_paths import resolve_gguf_path

    finished = _checkpoint(cache_root)
    target = tmp_path / finished.name
    real_exists = Path.exists

    def exists_then_the_other_process_finishes(self: Path, *args: Any, **kwargs: Any) -> bool:
        if self == target and not real_exists(target):
            shutil.copytree(finished, target)
            return False
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists_then_the_other_process_finishes)
    assert convert_gguf(resolve_gguf_path(MODEL), tmp_path) == target
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # this process' partial folder is gone
