"""``make serve-vllm``'s launcher (:mod:`hopmem.app.vllm_serve`) without a server: adapters by name, the command
line and the settings block. The server itself is started for real by the vLLM lane (tests/vllm/, ``make test-vllm``),
whose fixture uses the same :class:`LaunchPlan`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopmem.agents.rerank.model_paths import default_llm_reranker_dir, shipped_adapter_dir
from hopmem.app.vllm_serve import (
    BLOCK_START,
    LaunchPlan,
    ServedAdapter,
    max_lora_rank,
    remove_block,
    reranker_adapters,
    settings_values,
    write_settings,
)
from hopmem.memory.errors import ConfigError
from hopmem.settings import get_settings


def _fake_adapter(folder: Path, rank: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "base_model_name_or_path": "SmolLM2"}))
    (folder / "adapter_model.safetensors").write_bytes(b"")
    return folder


def test_the_adapter_the_agent_picks_is_served_under_the_recipe_name(tmp_path: Path) -> None:
    shipped = reranker_adapters(tmp_path)  # an empty cache: the shipped prorank only
    assert [(a.name, a.folder) for a in shipped] == [("prorank", shipped_adapter_dir("prorank"))]
    assert shipped[0].rank == 16 and shipped[0].base_model == "SmolLM2-135M-Instruct"
    trained = _fake_adapter(default_llm_reranker_dir("prorank", tmp_path), 32)
    rank_r1 = _fake_adapter(default_llm_reranker_dir("rank-r1", tmp_path), 8)
    found = {a.name: a for a in reranker_adapters(tmp_path)}
    assert set(found) == {"prorank", "prorank-shipped", "rank-r1"}
    assert found["prorank"].folder == trained and found["rank-r1"].folder == rank_r1
    assert found["prorank-shipped"].folder == shipped_adapter_dir("prorank")
    assert max_lora_rank(list(found.values())) == 32


def test_max_lora_rank_rounds_up_to_a_value_vllm_accepts() -> None:
    def adapters(*ranks: int) -> list[ServedAdapter]:
        return [ServedAdapter(f"a{r}", Path("x"), r, "") for r in ranks]

    assert [max_lora_rank(adapters(r)) for r in (1, 4, 8, 9, 16, 17, 300)] == [1, 8, 8, 16, 16, 32, 320]
    with pytest.raises(ConfigError, match="up to 512"):
        max_lora_rank(adapters(1024))


def test_the_command_serves_each_adapter_by_name_in_float32(tmp_path: Path) -> None:
    adapters = [ServedAdapter("prorank", tmp_path / "p", 16, ""), ServedAdapter("rank-r1", tmp_path / "r", 8, "")]
    plan = LaunchPlan(Path("py"), tmp_path / "ckpt", adapters=adapters, port=8123, device="cpu", max_model_len=1024)
    command = plan.command()
    assert command[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    assert command[command.index("--dtype") + 1] == "float32" and "--enforce-eager" in command
    assert command[command.index("--max-lora-rank") + 1] == "16" and command[command.index("--max-loras") + 1] == "2"
    assert command[-2:] == [f"prorank={tmp_path / 'p'}", f"rank-r1={tmp_path / 'r'}"]
    assert plan.base_url == "http://127.0.0.1:8123/v1" and plan.env()["VLLM_CPU_KVCACHE_SPACE"]
    gpu = LaunchPlan(Path("py"), tmp_path / "ckpt", device="cuda").command()
    assert "--enforce-eager" not in gpu and "--enable-lora" not in gpu


def test_settings_block_is_read_by_hopmem_and_removed_without_a_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    original = '# mine\nllm_backend = "llamacpp"\ntop_k = 4\n\n[trust_class_ceiling]\nllm_backend = 0.5\n'
    config.write_text(original)
    monkeypatch.setenv("HOPMEM_CONFIG", str(config))
    adapters = [ServedAdapter("prorank", tmp_path / "p", 16, "")]
    plan = LaunchPlan(Path("py"), tmp_path, adapters=adapters, port=8124, max_model_len=1024)
    write_settings(config, settings_values(plan), adapters)
    write_settings(config, settings_values(plan), adapters)  # a second run replaces the block
    assert config.read_text().count(BLOCK_START) == 1
    settings = get_settings()
    assert (settings.llm_backend, settings.llm_base_url, settings.llm_model) == (
        "openai",
        "http://127.0.0.1:8124/v1",
        "SmolLM2-135M-Instruct",
    )
    assert (settings.reranker_server, settings.reranker_served_model, settings.llm_context) == (
        "http://127.0.0.1:8124/v1",
        "prorank",
        1024,
    )
    assert settings.top_k == 4 and settings.trust_class_ceiling["llm_backend"] == 0.5  # the rest kept as it was
    config.write_text(remove_block(config.read_text()))
    assert config.read_text() == original
    no_adapter = settings_values(LaunchPlan(Path("py"), tmp_path))
    assert "reranker_server" not in no_adapter


def test_stop_process_group_stops_a_running_group_and_returns_at_once_for_a_killed_one() -> None:
    import os
    import signal
    import subprocess
    import time

    from hopmem.app.vllm_serve import stop_process_group

    running = subprocess.Popen(["sleep", "60"], start_new_session=True)
    assert stop_process_group(running.pid, proc=running, timeout_s=10)
    assert running.wait(timeout=5) == -signal.SIGTERM
    killed = subprocess.Popen(["sleep", "60"], start_new_session=True)
    os.killpg(killed.pid, signal.SIGKILL)
    started = time.monotonic()
    stop_process_group(killed.pid, proc=killed, timeout_s=10)  # its unreaped leader must not hold it for 10 s
    assert time.monotonic() - started < 5
    assert not stop_process_group(killed.pid, proc=killed)  # nothing left to stop
