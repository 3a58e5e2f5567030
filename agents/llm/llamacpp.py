"""In-process llama.cpp backend (the CPU default), through llama-cpp-python."""

from __future__ import annotations

import atexit
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from hopmem.agents.llm.base import Completion, Message
from hopmem.agents.llm.schema import parse_json_reply
from hopmem.memory.errors import LLMError, ModelNotAvailableError
from hopmem.memory.model_paths import resolve_gguf_path

log = logging.getLogger(__name__)


def default_threads() -> int:
    """Threads for llama.cpp when none is set: the cores this process may use, physical ones where known.

    ``os.cpu_count()`` counts logical CPUs of the whole machine; llama.cpp's threads meet at a barrier after every
    layer, so a thread more than there are cores to run it (a container's CPU limit, the second hyper-thread of a
    core) slows every token down instead of speeding it up.
    """
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or allowed
    except ImportError:
        physical = allowed
    return max(1, min(allowed, physical))


class LlamaCppLLM:
    """A GGUF model run by llama.cpp on the CPU.

    Args:
        model: packaged alias (``SmolLM2-135M-Instruct``), a ``.gguf`` path, a folder or a cached HF id.
        context_window: tokens of context (prompt + answer).
        threads: CPU threads; 0 means :func:`default_threads` (one per usable physical core).
        seed: sampling seed, for repeatable answers.
        repeat_penalty: llama.cpp's penalty on repeated tokens; small models loop without it.
        flash_attn: llama.cpp's fused attention (prompt processing about 15% faster on this project's 2-core CPU).
    """

    def __init__(
        self,
        model: str,
        *,
        context_window: int = 2048,
        threads: int = 0,
        seed: int = 0,
        repeat_penalty: float = 1.3,
        flash_attn: bool = True,
    ) -> None:
        path = resolve_gguf_path(model)
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelNotAvailableError(
                "llama-cpp-python is not installed: run `make install` or pip install 'hopmem[llamacpp]'."
            ) from exc
        log.info("loading %s with llama.cpp", path)
        try:
            self._llm = Llama(
                model_path=str(path),
                n_ctx=context_window,
                n_threads=threads or default_threads(),
                seed=seed,
                flash_attn=flash_attn,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelNotAvailableError(f"llama.cpp could not load {path}: {exc}.") from exc
        self.name = path.stem
        self.context_window = context_window
        self.repeat_penalty = repeat_penalty
        atexit.register(self.close)

    def close(self) -> None:
        """Free the model now; llama-cpp-python's own finaliser fails when it runs at interpreter exit."""
        llm = self.__dict__.pop("_llm", None)
        if llm is not None:
            llm.close()

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Completion:
        start = time.perf_counter()
        try:
            out: Any = self._llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                stop=stop,
                repeat_penalty=self.repeat_penalty,
            )
        except (ValueError, RuntimeError) as exc:
            raise LLMError(
                f"llama.cpp failed to generate ({exc}); shorten the input or raise HOPMEM_LLM_CONTEXT."
            ) from exc
        usage = out.get("usage") or {}
        return Completion(
            text=str(out["choices"][0]["message"].get("content") or ""),
            model=self.name,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            ms=(time.perf_counter() - start) * 1000,
        )

    def complete_json(
        self,
        messages: list[Message],
        schema: dict[str, Any],
        *,
        max_tokens: int,
        temperature: float = 0.0,
    ) -> tuple[dict[str, Any] | list[Any], Completion]:
        """Generate under a grammar built from ``schema`` (llama-cpp-python's ``json_object`` response format).

        The repeat penalty is off here: JSON repeats quotes, braces and keys by nature, and the grammar already
        stops the loops the penalty guards against in free text. See :meth:`ChatLLM.complete_json` for the contract.
        """
        start = time.perf_counter()
        try:
            out: Any = self._llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                repeat_penalty=1.0,
                response_format={"type": "json_object", "schema": schema},
            )
        except (ValueError, RuntimeError) as exc:
            raise LLMError(
                f"llama.cpp failed to generate ({exc}); shorten the input or raise HOPMEM_LLM_CONTEXT."
            ) from exc
        usage = out.get("usage") or {}
        completion = Completion(
            text=str(out["choices"][0]["message"].get("content") or ""),
            model=self.name,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            ms=(time.perf_counter() - start) * 1000,
        )
        return parse_json_reply(completion.text, schema, source=f"llama.cpp model {self.name}"), completion

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        try:
            chunks: Any = self._llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                stop=stop,
                repeat_penalty=self.repeat_penalty,
                stream=True,
            )
            for chunk in chunks:
                delta = chunk["choices"][0].get("delta", {}).get("content")
                if delta:
                    yield str(delta)
        except (ValueError, RuntimeError) as exc:
            raise LLMError(
                f"llama.cpp failed to generate ({exc}); shorten the input or raise HOPMEM_LLM_CONTEXT."
            ) from exc


BASELINE_FEATURES = ("AVX", "AVX2", "FMA", "F16C")
"""CPU features the portable build (tools/build_llama_cpp.sh) compiles in: x86-64-v3."""
BEYOND_BASELINE_TAGS = ("AVX512", "AVX_VNNI", "AMX", "VNNI", "BF16")
"""A compiled-in feature whose name holds one of these is beyond the portable baseline: a CPU may report it and the
kernel still refuse it (AMX tiles), or an older CPU lack it."""


def parse_system_info(text: str) -> dict[str, bool]:
    """The features of a ggml system-info line (``CPU : AVX = 1 | AVX2 = 1 | ... |``), name -> compiled in."""
    features: dict[str, bool] = {}
    for part in text.split("|"):
        name, sep, value = part.rpartition("=")
        name = name.split(":")[-1].strip()
        if sep and name and value.strip().isdigit():
            features[name] = features.get(name, False) or value.strip() != "0"
    return features


def beyond_baseline(features: dict[str, bool]) -> list[str]:
    """The compiled-in features of ``features`` that lie beyond the portable x86-64-v3 baseline."""
    return [name for name, on in features.items() if on and any(tag in name for tag in BEYOND_BASELINE_TAGS)]


def llama_cpp_build_features() -> dict[str, bool]:
    """The CPU features the installed llama.cpp library was compiled with, read from its system-info line.

    ggml lists what was compiled in (a kernel that is not listed, or listed as 0, does not exist in the library,
    whatever the CPU reports), so this shows from the build itself which kernels can run.

    Raises:
        ModelNotAvailableError: when llama-cpp-python is not installed.
    """
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelNotAvailableError(
            "llama-cpp-python is not installed: run `make install` or pip install 'hopmem[llamacpp]'."
        ) from exc
    info = llama_cpp.llama_print_system_info()
    return parse_system_info(info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info))


def describe_build(features: dict[str, bool]) -> str:
    """A short account of a llama.cpp build: its baseline features, and any beyond the portable baseline."""
    on = [f for f in BASELINE_FEATURES if features.get(f)]
    beyond = beyond_baseline(features)
    return f"llama.cpp build: {'+'.join(on) or 'no AVX'}, " + (
        f"also {'+'.join(beyond)} (not portable)" if beyond else "no AVX-512/VNNI/AMX"
    )
