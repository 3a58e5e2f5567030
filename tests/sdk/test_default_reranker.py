"""The agent's default reranker: the blended cross-encoder from the cache, or the fused order with a warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopmem.agent_api import Agent
from hopmem.agents.rerank.cross_encoder import BLEND_FILE, init_cross_encoder
from hopmem.agents.rerank.model_paths import default_cross_encoder_dir
from hopmem.memory.errors import ConfigError
from hopmem.memory.model_paths import resolve_embedder_path
from hopmem.memory_api import Memory
from hopmem.settings import Settings, get_settings

TEXTS = [
    "Honeybees perform a waggle dance that encodes the direction and distance of flowers.",
    "Karl von Frisch decoded the honeybee dance and won the Nobel Prize in 1973.",
    "The recipe needs two eggs and a cup of flour.",
]


def _ask(settings: Settings) -> dict[str, object]:
    memory = Memory(settings)
    for text in TEXTS:
        memory.add(text)
    answer = Agent(memory).ask("Who decoded the honeybee dance?")
    (step,) = [s for s in answer.trace if s["step"] == "rerank"]
    memory.close()
    return step


def test_the_default_is_the_cross_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOPMEM_RERANKER")
    assert get_settings().reranker == Settings.model_fields["reranker"].default == "cross-encoder"


def test_without_a_trained_cross_encoder_the_shipped_one_reranks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOPMEM_RERANKER")
    settings = get_settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", llm_backend="none")
    step = _ask(settings)
    assert step["reranker"] == "cross-encoder" and "warning" not in step


def test_without_any_cross_encoder_the_fused_order_is_kept_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An install whose package lacks the shipped weights (a stripped copy): the agent still answers.
    monkeypatch.delenv("HOPMEM_RERANKER")
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr("hopmem.agents.rerank.model_paths.shipped_cross_encoder_dir", lambda: tmp_path / "empty")
    step = _ask(get_settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", llm_backend="none"))
    assert step["reranker"] == "none"
    assert "No cross-encoder" in str(step["warning"]) and "fused order is kept" in str(step["warning"])


def test_a_configured_model_that_is_missing_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOPMEM_RERANKER")
    (tmp_path / "empty").mkdir()
    settings = get_settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", llm_backend="none")
    settings.reranker_model = str(tmp_path / "empty")
    with pytest.raises(ConfigError, match="No cross-encoder in"):
        _ask(settings)


def test_a_cross_encoder_in_the_cache_reranks_with_its_saved_blend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOPMEM_RERANKER")
    cache = tmp_path / "cache"
    folder = default_cross_encoder_dir(cache)
    init_cross_encoder(resolve_embedder_path("all-MiniLM-L6-v2"), seed=0, max_length=64).save(str(folder))
    (folder / BLEND_FILE).write_text(json.dumps({"blend": 0.7}))
    step = _ask(get_settings(data_dir=tmp_path / "data", cache_dir=cache, llm_backend="none"))
    assert step["reranker"] == "cross-encoder" and "warning" not in step
