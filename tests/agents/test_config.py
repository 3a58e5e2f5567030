"""AgentConfig is named as the settings name it: every field is a Settings field with the same default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hopmem.agents.config import AgentConfig
from hopmem.settings import Settings, get_settings


@pytest.mark.parametrize("field", dataclasses.fields(AgentConfig), ids=lambda f: f.name)
def test_every_field_is_a_setting_with_the_same_default(field: dataclasses.Field[object]) -> None:
    assert field.name in Settings.model_fields, f"AgentConfig.{field.name} is not a field of hopmem.Settings"
    assert Settings.model_fields[field.name].default == field.default


def test_from_settings_copies_every_field_by_name(tmp_path: Path) -> None:
    settings = get_settings(
        data_dir=tmp_path, top_k=5, agent_fusion="rrf", treehop_weight=0.5, remember_answers=False, llm_max_tokens=7
    )
    config = AgentConfig.from_settings(settings)
    assert config == AgentConfig(
        top_k=5, agent_fusion="rrf", treehop_weight=0.5, remember_answers=False, llm_max_tokens=7
    )
    assert {f.name: getattr(config, f.name) for f in dataclasses.fields(AgentConfig)} == {
        f.name: getattr(settings, f.name) for f in dataclasses.fields(AgentConfig)
    }
    assert AgentConfig.from_settings(settings, top_k=1).top_k == 1


def test_from_settings_refuses_what_is_not_a_field(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="no field"):
        AgentConfig.from_settings(get_settings(data_dir=tmp_path), max_tokens=3)
    with pytest.raises(AttributeError):
        AgentConfig.from_settings(object())
