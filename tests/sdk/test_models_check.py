"""`hopmem models check`: every model on a realistic input, in a child process whose crash is named in one sentence."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from hopmem.memory.errors import ModelNotAvailableError
from hopmem.models_check import (
    MIN_CHAT_TOKENS,
    NativeLibraryCrash,
    check_llm,
    check_models,
    check_reranker,
    crash_message,
    sample_passages,
)
from hopmem.settings import get_settings
from tests.conftest import run_hopmem

pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed")


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and message.count(". ") == 0 and "\n" not in message


def test_the_llm_check_answers_a_chat_of_at_least_500_tokens_and_names_the_build() -> None:
    line = check_llm(get_settings(llm_backend="llamacpp"))
    assert line.startswith("llm ok: llamacpp")
    prompt_tokens = int(line.split("(")[1].split(" prompt tokens")[0])
    assert prompt_tokens >= MIN_CHAT_TOKENS
    assert "llama.cpp build: AVX+AVX2+FMA+F16C, no AVX-512/VNNI/AMX" in line


def test_the_reranker_check_scores_a_batch_with_the_shipped_model(tmp_path: Path) -> None:
    line = check_reranker(get_settings(reranker="cross-encoder", cache_dir=tmp_path))
    assert line.startswith("reranker ok: cross-encoder") and "16 passages" in line
    assert "the one about bees ranked 1 of 16" in line  # 14 sample sentences on other topics and one on rain below it
    assert len(sample_passages()) >= 10


def test_an_unloadable_model_fails_the_check_in_one_sentence(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)  # a GGUF header and nothing a loader can use
    settings = get_settings(llm_backend="llamacpp", llm_model=str(broken), cache_dir=tmp_path)
    with pytest.raises(ModelNotAvailableError) as failed:
        check_models(settings)
    assert "could not load" in str(failed.value) and str(broken) in str(failed.value)
    result = run_hopmem("models", "check", env={"HOPMEM_LLM_MODEL": str(broken), "HOPMEM_CACHE_DIR": str(tmp_path)})
    assert result.returncode != 0
    (error,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert "could not load" in error
    assert "embedder ok" in result.stdout  # the checks before the LLM ran and were shown


def test_a_child_killed_by_a_signal_is_named_in_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    # A real child process that announces the LLM check and dies of SIGILL, as llama.cpp's AMX kernels did on a
    # machine whose kernel does not grant AMX tiles (the fault itself cannot be provoked on this CPU).
    script = (
        "import os, signal, sys; sys.stdin.read(); print('hopmem-check-begin embedder', flush=True); "
        "print('hopmem-check-line embedder ok: stand-in', flush=True); print('hopmem-check-begin llm', flush=True); "
        "os.kill(os.getpid(), signal.SIGILL)"
    )
    monkeypatch.setattr("hopmem.models_check._child_command", lambda: [sys.executable, "-c", script])
    seen: list[str] = []
    with pytest.raises(NativeLibraryCrash) as crashed:
        check_models(get_settings(llm_backend="llamacpp"), echo=seen.append)
    message = str(crashed.value)
    assert seen == ["embedder ok: stand-in"]
    assert message.startswith("llama.cpp (llama-cpp-python) crashed with SIGILL") and "llm check" in message
    assert "make install" in message and _one_sentence(message)


@pytest.mark.parametrize(
    ("check", "signum", "library", "advice"),
    [
        ("llm", signal.SIGSEGV, "llama.cpp", "reinstall it"),
        ("reranker", signal.SIGILL, "PyTorch (the reranker)", "reinstall it"),
        ("embedder", signal.SIGKILL, "ONNX Runtime or PyTorch", "lack of memory"),
    ],
)
def test_crash_messages_name_the_library_and_what_to_do(check: str, signum: int, library: str, advice: str) -> None:
    message = crash_message(check, signum, get_settings(llm_backend="llamacpp"))
    assert message.startswith(library) and advice in message and _one_sentence(message)


def test_the_installed_llama_cpp_has_no_kernel_beyond_the_portable_baseline() -> None:
    from hopmem.agents.llm.llamacpp import BASELINE_FEATURES, beyond_baseline, llama_cpp_build_features

    features = llama_cpp_build_features()
    assert all(features.get(name) for name in BASELINE_FEATURES), features
    assert beyond_baseline(features) == [], features


def test_a_native_build_is_told_apart_from_the_portable_one() -> None:
    from hopmem.agents.llm.llamacpp import beyond_baseline, describe_build, parse_system_info

    # The system-info line of a native build on a CPU that reports AVX-512 and AMX (as on the machine of the issue).
    native = parse_system_info(
        "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
        "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | "
    )
    assert beyond_baseline(native) == ["AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8"]
    assert "(not portable)" in describe_build(native)
    portable = parse_system_info(
        "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 0 | AMX_INT8 = 0 |"
    )
    assert beyond_baseline(portable) == [] and describe_build(portable).endswith("no AVX-512/VNNI/AMX")


def test_make_install_built_llama_cpp_with_the_portable_options() -> None:
    import importlib.metadata as md
    import json as json_

    marker = Path(str(md.distribution("llama_cpp_python").locate_file("llama_cpp"))) / "hopmem-build.json"
    assert marker.is_file(), "llama-cpp-python was not installed by tools/build_llama_cpp.sh"
    options = json_.loads(marker.read_text())["cmake_args"].split()
    assert "-DGGML_NATIVE=OFF" in options and "-DGGML_AMX_INT8=OFF" in options and "-DGGML_AVX512=OFF" in options
