"""One settings object: defaults, TOML file, HOPMEM_* variables, keyword overrides, in that order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopmem.memory.errors import ConfigError
from hopmem.settings import Settings, get_settings
from tests.conftest import run_hopmem


def test_defaults_work_offline_with_bundled_models(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert settings.llm_backend == "llamacpp"
    assert settings.embedder == "all-MiniLM-L6-v2"
    assert settings.vector_backend == "exact"
    assert settings.store_path.name == "hopmem.sqlite"


def test_precedence_toml_then_env_then_kwargs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "hopmem.toml"
    toml.write_text('top_k = 7\nfusion = "rsf"\nchunk_size = 128\n')
    monkeypatch.setenv("HOPMEM_CONFIG", str(toml))
    monkeypatch.setenv("HOPMEM_TOP_K", "9")
    settings = get_settings(chunk_size=64)
    assert settings.fusion == "rsf"  # from the file
    assert settings.top_k == 9  # env beats file
    assert settings.chunk_size == 64  # keyword beats both


def test_invalid_value_is_one_sentence_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOPMEM_TOP_K", "-3")
    with pytest.raises(ConfigError) as info:
        get_settings()
    message = str(info.value)
    assert "HOPMEM_TOP_K" in message
    assert message.count("\n") == 0


def test_missing_config_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOPMEM_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml does not exist"):
        get_settings()


def test_unknown_key_in_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "hopmem.toml"
    toml.write_text("tpo_k = 3\n")
    monkeypatch.setenv("HOPMEM_CONFIG", str(toml))
    with pytest.raises(ConfigError, match="tpo_k"):
        get_settings()


def test_config_show_prints_effective_values(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('llm_backend = "none"\n')
    result = run_hopmem("config", "show", "--json", env={"HOPMEM_CONFIG": str(toml), "HOPMEM_RRF_K": "42"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["config_file"] == str(toml)
    assert data["settings"]["llm_backend"] == "none"
    assert data["settings"]["rrf_k"] == 42
    assert set(data["settings"]) == set(Settings.model_fields)


def test_api_key_is_masked() -> None:
    assert get_settings(llm_api_key="sk-secret").effective()["llm_api_key"] == "***"
