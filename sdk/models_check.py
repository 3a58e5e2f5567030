"""Check that the configured models load offline and work, for ``make install`` and ``hopmem models check``.

Each model runs once on a realistic input, so a fault of the machine shows at install and not at the first question:
the LLM answers a chat of the bundled sample documents (at least :data:`MIN_CHAT_TOKENS` prompt tokens: llama.cpp's
larger matrix kernels, AMX among them, only run on long prompts), the reranker scores a batch of passages, the
embedder embeds a batch, TreeHop computes a next query.

The checks run in a child process (``python -m hopmem.models_check``) that announces each check before it starts. A
native library that kills its process (an illegal instruction from a build for another CPU, a segmentation fault)
therefore cannot take the check down with it: the parent names the library and what to do in one sentence
(:class:`NativeLibraryCrash`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib import resources

from hopmem.memory.errors import HopmemError, ModelNotAvailableError
from hopmem.settings import Settings

MIN_CHAT_TOKENS = 500
"""The LLM check's prompt is at least this long: llama.cpp's AMX kernels fault only on long prompts (issue seen)."""
RERANK_BATCH = 16
"""Passages the reranker check scores in one call, as the agent's rerank step does."""

CHECKS: tuple[str, ...] = ("embedder", "llm", "reranker", "treehop")
_BEGIN = "hopmem-check-begin "
_LINE = "hopmem-check-line "
_ERROR = "hopmem-check-error "


class NativeLibraryCrash(HopmemError):
    """A native library killed the process that ran a model (a signal, not a Python error)."""


def check_models(settings: Settings, *, echo: Callable[[str], None] | None = None) -> list[str]:
    """Load and run every configured model once on a realistic input, in a child process; one line per model.

    Args:
        settings: the settings whose models are checked.
        echo: called with each line as soon as it is known (progress for a terminal).

    Raises:
        ModelNotAvailableError: when a model is not available offline or fails.
        NativeLibraryCrash: when a native library kills the process that runs a check.
    """
    return _check_in_child(settings, echo)


def run_checks(settings: Settings) -> Iterator[tuple[str, str]]:
    """Run the checks in this process, yielding ``(check, line)``; a check's start is announced by a ``(check, "")``."""
    from hopmem.memory.embeddings import load_embedder
    from hopmem.memory.model_paths import resolve_embedder_path

    yield "embedder", ""
    start = time.perf_counter()
    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    batch = embedder.embed(sample_passages()[:RERANK_BATCH])
    vector = embedder.embed(["hopmem checks its embedder"])[0]
    query = embedder.embed_query("hopmem checks its embedder")  # prepares the query runtime (ONNX export, once)
    runtime = "onnx" if getattr(embedder, "_onnx", None) is not None else "torch"
    yield (
        "embedder",
        f"embedder ok: {settings.embedder} from {resolve_embedder_path(settings.embedder)} "
        f"(dim {embedder.dim}, {len(batch)} passages, |v|={float((vector**2).sum()) ** 0.5:.3f}, query runtime "
        f"{runtime}, query/batch max diff {float(abs(query - vector).max()):.1e}, {time.perf_counter() - start:.1f} s)",
    )
    yield "llm", ""
    yield "llm", check_llm(settings)
    yield "reranker", ""
    yield "reranker", check_reranker(settings)
    yield "treehop", ""
    yield "treehop", check_treehop(settings, embedder.name, embedder.dim, vector)


def sample_passages() -> list[str]:
    """The paragraphs of the bundled sample documents (real prose, about 900 tokens in all)."""
    texts = []
    for name in sorted(p.name for p in resources.files("hopmem.sample").iterdir() if p.name.endswith(".md")):
        text = resources.files("hopmem.sample").joinpath(name).read_text(encoding="utf-8")
        texts += [p.strip() for p in text.split("\n\n") if len(p.split()) >= 12]
    return texts


def sample_sentences(*, skip: str = "") -> list[str]:
    """The sentences (8 words or more) of the bundled sample's paragraphs that do not mention ``skip``."""
    paragraphs = [p.replace("\n", " ") for p in sample_passages() if not skip or skip not in p.lower()]
    sentences = [s.strip().rstrip(".") + "." for p in paragraphs for s in p.split(". ")]
    return [s for s in sentences if len(s.split()) >= 8]


def check_llm(settings: Settings) -> str:
    """Answer one chat of at least :data:`MIN_CHAT_TOKENS` prompt tokens with the configured LLM."""
    from hopmem.agents.llm import load_llm

    start = time.perf_counter()
    llm = load_llm(
        settings.llm_backend,
        settings.llm_model,
        context_window=settings.llm_context,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
    )
    if llm is None:
        return "llm: none configured (answers are extractive)"
    context = "\n\n".join(f"[{i + 1}] {p}" for i, p in enumerate(sample_passages()))
    messages = [
        {"role": "system", "content": "Answer from the numbered passages only and cite them like [1]."},
        {"role": "user", "content": f"{context}\n\nQuestion: How do honeybees tell each other where flowers are?"},
    ]
    counted = getattr(llm, "count_tokens", None)
    if counted is not None and counted(context) < MIN_CHAT_TOKENS:
        raise ModelNotAvailableError(
            f"The model check's chat is shorter than {MIN_CHAT_TOKENS} tokens; the bundled sample is incomplete, "
            "reinstall hopmem."
        )
    reply = llm.complete(messages, max_tokens=16)
    seconds = time.perf_counter() - start
    build = ""
    if settings.llm_backend == "llamacpp":
        from hopmem.agents.llm.llamacpp import describe_build, llama_cpp_build_features

        build = f"; {describe_build(llama_cpp_build_features())}"
    return (
        f"llm ok: {settings.llm_backend} {llm.name} ({reply.prompt_tokens} prompt tokens, {reply.completion_tokens} "
        f"generated, {seconds:.1f} s{build})"
    )


def check_treehop(settings: Settings, embedder: str, dim: int, vector: object) -> str:
    """Load the TreeHop model of the agent's hop step and compute one next query; a missing model is reported.

    Raises:
        ConfigError: when ``treehop_model`` names a model that is missing or made for other embeddings.
    """
    import numpy as np

    from hopmem.agents.treehop_model import load_selected_treehop, packaged_model_dir

    if settings.treehop_hops < 2:
        return "treehop: off (treehop_hops = 1)"
    if not settings.treehop_model and not (packaged_model_dir() / "config.json").exists():
        return "treehop missing: no TreeHop weights in the package; the hop step is skipped"
    model, note = load_selected_treehop(settings.treehop_model or None, embedder=embedder, dim=dim)
    q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    nxt = model.next_queries(q, q)
    return (
        f"treehop ok: {settings.treehop_model or packaged_model_dir().name} ({model.n_parameters():,} parameters, "
        f"|q_next|={float(np.linalg.norm(nxt)):.3f}); the agent runs the {note}"
    )


def check_reranker(settings: Settings) -> str:
    """Load the configured reranker and score a batch of passages; a missing model is reported, not raised.

    The default cross-encoder ships in the package, so "missing" means a configured model that is not on disk.
    """
    from hopmem.agents.rerank import load_reranker
    from hopmem.agents.rerank.cross_encoder import CrossEncoderReranker
    from hopmem.memory.errors import ConfigError

    start = time.perf_counter()
    try:
        reranker = load_reranker(
            settings.reranker,
            settings.reranker_model or None,
            cache_dir=settings.cache_dir,
            batch_size=settings.rerank_batch_size,
            server=settings.reranker_server,
            served_model=settings.reranker_served_model,
        )
    except ConfigError as exc:
        return f"reranker missing: {exc}"
    if reranker.name == "none":
        return "reranker: none (the fused order is kept)"
    query = "how do honeybees tell each other where flowers are"
    docs = [
        *sample_sentences(skip="bee")[: RERANK_BATCH - 2],
        "Rain is expected over the weekend.",
        "Honeybees dance to show the direction of flowers.",
    ]
    if isinstance(reranker, CrossEncoderReranker):
        reranker.blend = 0.0  # judge the model itself: the blend would follow the given order
    ranked = reranker.rank(query, docs)
    place = [i for i, _ in ranked].index(len(docs) - 1) + 1
    where = getattr(reranker, "adapter", None) or getattr(reranker, "folder", "")
    return (
        f"reranker ok: {reranker.name} from {where} ({len(docs)} passages, the one about bees ranked {place} of "
        f"{len(docs)}, {time.perf_counter() - start:.1f} s)"
    )


def native_library(check: str, settings: Settings) -> str:
    """The native library a check runs on, as a user would name it."""
    if check == "llm":
        return {
            "llamacpp": "llama.cpp (llama-cpp-python)",
            "transformers": "PyTorch (the transformers LLM)",
            "openai": "the OpenAI-compatible client",
        }.get(settings.llm_backend, f"the {settings.llm_backend} LLM backend")
    if check == "embedder":
        return "ONNX Runtime or PyTorch (the embedder)"
    return f"PyTorch (the {check})"


def crash_message(check: str, signum: int, settings: Settings) -> str:
    """One sentence: which library killed the check, with what signal, and what to do."""
    library = native_library(check, settings)
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == signal.SIGILL:
        what = "an illegal instruction: it was built for CPU features this machine does not grant"
        advice = (
            "rebuild it for the portable baseline with `make install` (remove a llama-cpp-python wheel you built "
            "natively elsewhere)"
            if check == "llm" and settings.llm_backend == "llamacpp"
            else "reinstall it with `make install`"
        )
    elif signum == signal.SIGKILL:
        what = "the process was killed, most often for lack of memory"
        advice = "free memory or configure a smaller model"
    else:
        what = "a fault inside the library"
        advice = "reinstall it with `make install`, and report the crash if it happens again"
    return f"{library} crashed with {name} ({what}) during the {check} check; {advice}."


def _child_command() -> list[str]:
    return [sys.executable, "-m", "hopmem.models_check"]


def _check_in_child(settings: Settings, echo: Callable[[str], None] | None) -> list[str]:
    payload = json.dumps(settings.model_dump(mode="json"))
    child = subprocess.Popen(
        _child_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(payload)
    child.stdin.close()
    lines: list[str] = []
    current = "startup"
    error = ""
    for raw in child.stdout:
        text = raw.rstrip("\n")
        if text.startswith(_BEGIN):
            current = text[len(_BEGIN) :]
        elif text.startswith(_LINE):
            lines.append(text[len(_LINE) :])
            if echo:
                echo(lines[-1])
        elif text.startswith(_ERROR):
            error = text[len(_ERROR) :]
    code = child.wait()
    if code < 0:
        raise NativeLibraryCrash(crash_message(current, -code, settings))
    if code != 0:
        raise ModelNotAvailableError(error or f"The {current} check failed (exit {code}); see the messages above.")
    return lines


def _child_main() -> int:
    """The child's side: settings as JSON on stdin, one announced line per check on stdout."""
    settings = Settings(**json.loads(sys.stdin.read()))
    try:
        for check, line in run_checks(settings):
            print((_LINE + line) if line else (_BEGIN + check), flush=True)
    except HopmemError as exc:
        print(_ERROR + str(exc), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
