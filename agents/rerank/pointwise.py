"""Pointwise language-model reranker (ProRank / mxbai-rerank-v2 style), on the CPU through transformers + peft.

Each (query, passage) pair is put in the fixed relevance prompt of :func:`hopmem.agents.rerank.prompts.
pointwise_messages`; the score is ``logit("1") - logit("0")`` at the position where the answer starts, computed in
float32. No layer is added to the model, so a LoRA adapter trained by ``hopmem finetune reranker --recipe prorank``
is all that distinguishes a tuned reranker from its base, and the same scorer serves training (with gradients) and
inference (batched, under ``torch.inference_mode``).

On a GPU the same prompt is served by vLLM; see :mod:`hopmem.agents.rerank.served`.

Like the cross-encoder, a tuned adapter can be blended with the order the candidates came in
(:func:`hopmem.agents.rerank.cross_encoder.blend_with_order`): its training chooses the weight on held-out training
queries and records it as ``blend`` in ``hopmem_reranker.json``; the reranker applies it, so the agent's rerank step
adds what the model knows to the fused order instead of replacing it. ``blend=0.0`` gives the model alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hopmem.agents.rerank.base import BaseReranker
from hopmem.agents.rerank.cross_encoder import blend_with_order
from hopmem.agents.rerank.model_paths import read_reranker_record
from hopmem.agents.rerank.prompts import IRRELEVANT, RELEVANT, clip_tokens, pointwise_messages
from hopmem.memory.errors import ConfigError, ModelNotAvailableError

log = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_PASSAGE_TOKENS = 160
DEFAULT_QUERY_TOKENS = 64


def label_token_ids(tokenizer: Any) -> tuple[int, int]:
    """The token ids of ``"1"`` and ``"0"``; both must be single tokens for the logit difference to mean anything."""
    ids = []
    for text in (RELEVANT, IRRELEVANT):
        encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(encoded) != 1:
            raise ModelNotAvailableError(
                f"The tokenizer splits {text!r} into {len(encoded)} tokens; a pointwise reranker needs a model whose "
                "digits are single tokens."
            )
        ids.append(int(encoded[0]))
    return ids[0], ids[1]


def encode_pointwise(
    tokenizer: Any,
    query: str,
    passage: str,
    *,
    passage_tokens: int = DEFAULT_PASSAGE_TOKENS,
    query_tokens: int = DEFAULT_QUERY_TOKENS,
) -> list[int]:
    """Token ids of the templated prompt of one pair, ending where the answer digit would be generated."""
    messages = pointwise_messages(
        clip_tokens(tokenizer, query, query_tokens), clip_tokens(tokenizer, passage, passage_tokens)
    )
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return [int(t) for t in encoded["input_ids"]]


def relevance_logits(model: Any, batch: Sequence[Sequence[int]], yes_id: int, no_id: int, pad_id: int) -> Any:
    """``logit(yes) - logit(no)`` at the last position of each prompt of ``batch``, a float32 tensor (with grad
    when called outside ``inference_mode``).

    Prompts are left-padded and given explicit position ids, so every row's last position is its own last token and
    its positions start at 0 as they would alone; only the last position goes through the LM head.
    """
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
        mask[row, width - len(ids) :] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=1)
    last = out.logits[:, -1, :].float()
    return last[:, yes_id] - last[:, no_id]


class PointwiseLLMReranker(BaseReranker):
    """A causal LM (optionally with a peft LoRA adapter) scoring each pair by ``logit("1") - logit("0")``.

    Args:
        base_model: a local checkpoint folder, a GGUF file, or the packaged ``SmolLM2-135M-Instruct``; "" takes the
            base the adapter records, else SmolLM2;
            GGUF models are dequantized to float32 once and cached (see
            :class:`hopmem.agents.llm.transformers_llm.TransformersLLM`).
        adapter: a peft adapter folder trained by ``hopmem finetune reranker --recipe prorank``; "" for the base.
        batch_size: pairs per forward pass (sorted by length, so a batch pads little).
        passage_tokens: tokens kept of each passage; should match training (read from the adapter's
            ``hopmem_reranker.json`` when present).
        query_tokens: tokens kept of the query.
        cache_dir: where a GGUF model's conversion is cached.
        name: the name in traces and evaluations.
        llm: an already loaded :class:`TransformersLLM` to share (its model is used as it is).
        merge_adapter: fold the adapter into the base weights at load (faster scoring; the loaded model is then
            this reranker's own).
        blend: weight of the candidates' given order in the score (:func:`blend_with_order`); None reads the
            adapter's recorded ``blend`` (0, the model alone, without an adapter or a recorded weight).

    Raises:
        ModelNotAvailableError: when the model or adapter is not on disk or transformers/peft is missing.
        ConfigError: for a blend weight outside [0, 1].
    """

    def __init__(
        self,
        base_model: str = "",
        adapter: str | Path = "",
        *,
        batch_size: int = 16,
        passage_tokens: int | None = None,
        query_tokens: int | None = None,
        cache_dir: str | Path | None = None,
        name: str = "",
        llm: Any = None,
        merge_adapter: bool = True,
        blend: float | None = None,
    ) -> None:
        from hopmem.agents.llm.transformers_llm import TransformersLLM

        adapter_dir = Path(adapter).expanduser() if adapter else None
        recorded = read_reranker_record(adapter_dir) if adapter_dir else {}
        base = base_model or str(recorded.get("base_model") or DEFAULT_BASE_MODEL)
        self.llm = llm or TransformersLLM(base, adapter=str(adapter_dir or ""), cache_dir=cache_dir)
        self.tokenizer = self.llm.tokenizer
        self.model = self.llm.model
        if adapter_dir and llm is None and merge_adapter:
            # Scoring only: folding the LoRA weights into the base removes the adapter's extra matmuls (the
            # unmerged adapter on every projection cost ~40% more time per pair here); scores are unchanged up
            # to float32 rounding.
            self.model = self.model.merge_and_unload()
        self.model.eval()
        self.batch_size = max(1, int(batch_size))
        self.passage_tokens = int(passage_tokens or recorded.get("passage_tokens") or DEFAULT_PASSAGE_TOKENS)
        self.query_tokens = int(query_tokens or recorded.get("query_tokens") or DEFAULT_QUERY_TOKENS)
        self.yes_id, self.no_id = label_token_ids(self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else self.tokenizer.eos_token_id)
        self.adapter = adapter_dir
        self.name = name or ("prorank" if adapter_dir else "prorank-base")
        self.blend = float(recorded.get("blend") or 0.0) if blend is None else float(blend)
        if not 0.0 <= self.blend <= 1.0:
            raise ConfigError(f"The pointwise reranker's blend weight must lie in [0, 1], got {self.blend}.")

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 16,
        passage_tokens: int = DEFAULT_PASSAGE_TOKENS,
        query_tokens: int = DEFAULT_QUERY_TOKENS,
        name: str = "prorank",
    ) -> PointwiseLLMReranker:
        """A reranker over an already loaded model and tokenizer (no copy), e.g. the model being trained."""
        self = cls.__new__(cls)
        self.llm = None
        self.tokenizer = tokenizer
        self.model = model
        self.batch_size = max(1, int(batch_size))
        self.passage_tokens = int(passage_tokens)
        self.query_tokens = int(query_tokens)
        self.yes_id, self.no_id = label_token_ids(tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else tokenizer.eos_token_id)
        self.adapter = None
        self.name = name
        self.blend = 0.0
        return self

    def encode(self, query: str, passage: str) -> list[int]:
        return encode_pointwise(
            self.tokenizer, query, passage, passage_tokens=self.passage_tokens, query_tokens=self.query_tokens
        )

    def _score(self, query: str, docs: list[str]) -> list[float]:
        if self.blend >= 1.0:  # the given order alone: the model's scores would have no weight
            return blend_with_order([0.0] * len(docs), 1.0)
        return blend_with_order(self.model_scores(query, docs), self.blend)

    def model_scores(self, query: str, docs: list[str]) -> list[float]:
        """The model's own ``logit("1") - logit("0")`` per passage, without the blend."""
        import torch

        encoded = [self.encode(query, d) for d in docs]
        was_training = bool(getattr(self.model, "training", False))
        self.model.eval()
        order = sorted(range(len(docs)), key=lambda i: len(encoded[i]))
        scores = [0.0] * len(docs)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                values = relevance_logits(self.model, [encoded[i] for i in rows], self.yes_id, self.no_id, self.pad_id)
                for i, value in zip(rows, values.tolist(), strict=True):
                    scores[i] = float(value)
        if was_training:
            self.model.train()
        return scores
