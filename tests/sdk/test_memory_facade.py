"""``hopmem.Memory`` is a thin facade: it builds the memory engine's configuration from the settings, by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hopmem import Memory
from hopmem.memory.engine import EngineConfig, MemoryEngine
from hopmem.settings import Settings, get_settings


def test_every_engine_field_is_a_setting_of_the_same_name() -> None:
    settings = get_settings()
    config = EngineConfig.from_settings(settings)
    for item in dataclasses.fields(EngineConfig):
        assert hasattr(Settings, item.name) or item.name in Settings.model_fields, item.name
        value = getattr(settings, item.name)
        assert getattr(config, item.name) == (value() if callable(value) else value), item.name


def test_a_missing_setting_is_a_programming_error_not_a_silent_default() -> None:
    with pytest.raises(AttributeError):
        EngineConfig.from_settings(object())


def test_the_facade_opens_the_engine_the_settings_describe(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", tenant="team", trust_gate=False, llm_backend="none")
    with Memory(settings) as memory:
        assert isinstance(memory, MemoryEngine)
        assert memory.settings is settings
        assert memory.tenant == "team"
        assert memory.config.trust_gate is False
        assert memory.config.store_path == settings.store_path
        assert memory.store.path == settings.store_path
    other = tmp_path / "elsewhere.sqlite"
    with Memory(settings, path=other, tenant="x") as memory:
        assert memory.config.store_path == other and memory.tenant == "x"
        memory.add("the facade writes where it was told")
    assert other.is_file()
