"""Setwise reasoning reranker (Rank-R1 style, arXiv 2503.06034): a causal LM picks the most relevant of a few passages.

The model reads the prompt of :func:`hopmem.agents.rerank.prompts.setwise_messages` (a query and up to ``set_size``
numbered passages, each clipped to ``passage_tokens``), reasons inside ``<think>...</think>`` and names its choice as
``<answer>[k]</answer>``. A ranking is built by repeated selection: a tournament over windows of ``set_size``
candidates finds the best of the remaining ones, which is removed, and this repeats for the top ``depth`` (or
``top_k``) places; the candidates never selected keep their given (fused) order below the selected ones.

The tournament is a fixed tree: the leaves are the candidates cut into consecutive windows of ``set_size`` in their
given order, each level's winners are cut into windows again, up to a single winner. Decoding is greedy, so a window
whose members did not change gives the same answer; answers are remembered per window within one ranking, and after
the first selection (about ``(n - 1) / (set_size - 1)`` model calls) each further one only replays the windows the
removed winner sat in (about ``log_set_size(n)`` calls).

A reply that names no valid passage (no ``<answer>``, a number out of range, or a failed generation) falls back to
the first candidate of the window, which is the best of it by the given order; the fallback is logged, counted in
:attr:`SetwiseLLMReranker.stats` and marked in the trace. Every model call of the last ranking, with its window,
choice, reasoning and raw reply, is kept in :attr:`SetwiseLLMReranker.last_trace` for traces and the UI.

The adapter is trained by ``hopmem finetune reranker --recipe rank-r1`` (:mod:`hopmem.finetune.rank_r1`); its
``hopmem_reranker.json`` records the base model, the token budgets and the set size it was trained with.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hopmem.agents.rerank.base import BaseReranker, RankedPassage, check_input, check_top_k, rank_by_scores
from hopmem.agents.rerank.model_paths import read_reranker_record
from hopmem.agents.rerank.pointwise import DEFAULT_BASE_MODEL, DEFAULT_PASSAGE_TOKENS, DEFAULT_QUERY_TOKENS
from hopmem.agents.rerank.prompts import clip_tokens, parse_setwise, setwise_messages
from hopmem.memory.errors import ConfigError, LLMError

log = logging.getLogger(__name__)

DEFAULT_SET_SIZE = 4
DEFAULT_DEPTH = 10
"""Places filled by repeated selection when ``rank`` is given no ``top_k`` (the agent reads the top few)."""
DEFAULT_MAX_TOKENS = 128
ANSWER_END = "</answer>"
_OPEN_ANSWER = re.compile(r"<answer>\s*\[?\s*\d+\s*\]?\s*$", re.IGNORECASE)


class SetwiseLLMReranker(BaseReranker):
    """Ranks passages by repeated setwise selection with a reasoning causal LM (optionally with a LoRA adapter).

    Args:
        base_model: a local checkpoint folder, a GGUF file, or the packaged ``SmolLM2-135M-Instruct``; "" takes the
            base the adapter records, else SmolLM2.
        adapter: a peft adapter folder trained by ``hopmem finetune reranker --recipe rank-r1``; "" for the base.
        set_size: passages per prompt (should match training; read from the adapter's ``hopmem_reranker.json``).
        passage_tokens: tokens kept of each passage (from the adapter's record when not given).
        query_tokens: tokens kept of the query (from the adapter's record when not given).
        depth: places filled by selection when :meth:`rank` gets no ``top_k`` and in :meth:`score`.
        max_tokens: tokens of one reply (reasoning and answer); generation stops after ``</answer>``.
        cache_dir: where a GGUF model's conversion is cached.
        name: the name in traces and evaluations.
        llm: an object with ``complete(messages, *, max_tokens, temperature, stop)`` returning a completion (with
            ``.text``) or a string, used instead of loading a model: an already loaded
            :class:`~hopmem.agents.llm.transformers_llm.TransformersLLM` (shared as it is) or any chat model. When it
            has a ``tokenizer``, passages are clipped in its tokens, else in whitespace words.
        tokenizer: the tokenizer passages are clipped with, for an ``llm`` without one (a served model: the
            adapter's base tokenizer, so the prompts are those of training).

    Raises:
        ConfigError: when ``set_size`` is below 2.
        ModelNotAvailableError: when the model or adapter is not on disk or transformers/peft is missing.
    """

    def __init__(
        self,
        base_model: str = "",
        adapter: str | Path = "",
        *,
        set_size: int | None = None,
        passage_tokens: int | None = None,
        query_tokens: int | None = None,
        depth: int = DEFAULT_DEPTH,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        cache_dir: str | Path | None = None,
        name: str = "",
        llm: Any = None,
        tokenizer: Any = None,
    ) -> None:
        adapter_dir = Path(adapter).expanduser() if adapter else None
        recorded = read_reranker_record(adapter_dir) if adapter_dir else {}
        if llm is None:
            from hopmem.agents.llm.transformers_llm import TransformersLLM

            base = base_model or str(recorded.get("base_model") or DEFAULT_BASE_MODEL)
            # Training samples without a repetition penalty, so inference decodes without one too.
            llm = TransformersLLM(base, adapter=str(adapter_dir or ""), cache_dir=cache_dir, repeat_penalty=1.0)
        self.llm = llm
        self.tokenizer: Any = tokenizer if tokenizer is not None else getattr(llm, "tokenizer", None)
        self.set_size = int(set_size or recorded.get("set_size") or DEFAULT_SET_SIZE)
        if self.set_size < 2:
            raise ConfigError(f"A setwise reranker needs at least 2 passages per prompt, not {self.set_size}.")
        self.passage_tokens = int(passage_tokens or recorded.get("passage_tokens") or DEFAULT_PASSAGE_TOKENS)
        self.query_tokens = int(query_tokens or recorded.get("query_tokens") or DEFAULT_QUERY_TOKENS)
        self.depth = max(0, int(depth))
        self.max_tokens = max(1, int(max_tokens))
        self.adapter = adapter_dir
        self.name = name or ("rank-r1" if adapter_dir else "rank-r1-base")
        self.stats: dict[str, int] = {"rankings": 0, "calls": 0, "reused": 0, "fallbacks": 0, "errors": 0}
        """Running counts over this reranker's life: rankings, model calls, window answers reused within a ranking,
        fallbacks to a window's first candidate (no valid answer), and failed generations (also fallbacks)."""
        self.last_trace: list[dict[str, Any]] = []
        """The model calls of the last ranking, in order: ``round`` (0-based place being filled), ``window`` (indices
        into the docs, in prompt order), ``choice`` (index into the docs), ``reasoning``, ``reply``, ``well_formed``,
        ``fallback`` and, after a failed generation, ``error``."""
        self.last_order: list[int] = []
        """Indices into the docs of the last ranking, best first: the selected ones, then the rest in given order."""

    # --- the Reranker protocol -------------------------------------------------------------------------------------

    def score(self, query: str, docs: Sequence[str]) -> list[float]:
        """Scores consistent with :meth:`order` to ``depth`` places: ``k - position`` with ``k`` selected places, so
        the selected passages score ``k .. 1`` (positive) and the rest ``0, -1, ...`` in their given order. Only the
        order means anything; the sign tells selected from not."""
        return self._score(query, check_input(query, docs))

    def _score(self, query: str, docs: list[str]) -> list[float]:
        # Called for empty docs too (score is overridden), so every call counts as a ranking, as it always has.
        return self._scores(self.order(query, docs, self.depth), len(docs), min(self.depth, len(docs)))

    def rank(self, query: str, docs: Sequence[str], top_k: int | None = None) -> list[RankedPassage]:
        """The top ``top_k`` places by selection (``depth`` without ``top_k``), then the rest in given order."""
        check_top_k(top_k)
        docs = check_input(query, docs)
        depth = self.depth if top_k is None else max(0, top_k)
        order = self.order(query, docs, depth)
        return rank_by_scores(self._scores(order, len(docs), min(depth, len(docs))), top_k)

    # --- repeated selection ----------------------------------------------------------------------------------------

    def order(self, query: str, docs: Sequence[str], depth: int | None = None) -> list[int]:
        """Indices into ``docs``, best first: ``depth`` places filled by repeated selection, then the rest in the
        given order. Resets :attr:`last_trace`."""
        depth = self.depth if depth is None else max(0, depth)
        n = len(docs)
        self.last_trace = []
        self.stats["rankings"] += 1
        query_text = self._clip(query, self.query_tokens)
        texts = [self._clip(d, self.passage_tokens) for d in docs]
        answers: dict[tuple[int, ...], int] = {}
        chosen: list[int] = []
        taken: set[int] = set()
        for place in range(min(depth, n)):
            live = [i for i in range(n) if i not in taken]
            winner = self._tournament(query_text, texts, live, answers, place)
            chosen.append(winner)
            taken.add(winner)
        self.last_order = chosen + [i for i in range(n) if i not in taken]
        return list(self.last_order)

    def _tournament(
        self, query: str, texts: list[str], live: list[int], answers: dict[tuple[int, ...], int], place: int
    ) -> int:
        """The best of ``live``: windows of ``set_size`` (leaves fixed by the given order), winners of each level
        cut into windows again, up to one. Windows answered before in this ranking are not asked again."""
        leaves = [range(start, start + self.set_size) for start in range(0, len(texts), self.set_size)]
        alive = set(live)
        level = [[i for i in leaf if i in alive] for leaf in leaves]
        level = [window for window in level if window]
        while True:
            winners = [self._select(query, texts, window, answers, place) for window in level]
            if len(winners) == 1:
                return winners[0]
            level = [winners[i : i + self.set_size] for i in range(0, len(winners), self.set_size)]

    def _select(
        self, query: str, texts: list[str], window: list[int], answers: dict[tuple[int, ...], int], place: int
    ) -> int:
        """The index (into the docs) the model names as the best of ``window``; the window's first on no answer."""
        if len(window) == 1:
            return window[0]
        key = tuple(window)
        if key in answers:
            self.stats["reused"] += 1
            return answers[key]
        self.stats["calls"] += 1
        entry: dict[str, Any] = {"round": place, "window": list(window)}
        reply = ""
        try:
            reply = self._generate(query, [texts[i] for i in window])
        except LLMError as exc:
            self.stats["errors"] += 1
            entry["error"] = str(exc)
            log.warning("setwise reranker: generation failed (%s); taking the window's first candidate", exc)
        choice, reasoning, well_formed = parse_setwise(reply, len(window))
        fallback = choice is None
        if fallback:
            self.stats["fallbacks"] += 1
            if "error" not in entry:
                log.info("setwise reranker: no valid answer in %r; taking the window's first candidate", reply[-80:])
        picked = window[0] if choice is None else window[choice]
        entry.update(choice=picked, reasoning=reasoning, reply=reply, well_formed=well_formed, fallback=fallback)
        self.last_trace.append(entry)
        answers[key] = picked
        return picked

    def _generate(self, query: str, passages: list[str]) -> str:
        """The model's reply to one window, greedy, with a ``</answer>`` cut by the stop string put back."""
        completion = self.llm.complete(
            setwise_messages(query, passages), max_tokens=self.max_tokens, temperature=0.0, stop=[ANSWER_END]
        )
        text = str(getattr(completion, "text", completion))
        if _OPEN_ANSWER.search(text):
            text += ANSWER_END
        return text

    # --- helpers ---------------------------------------------------------------------------------------------------

    def _clip(self, text: str, max_tokens: int) -> str:
        """``text`` cut to ``max_tokens`` tokens of the model's tokenizer (whitespace words without one)."""
        if self.tokenizer is not None:
            return clip_tokens(self.tokenizer, text, max_tokens)
        return " ".join(text.split()[:max_tokens])

    @staticmethod
    def _scores(order: list[int], n: int, selected: int) -> list[float]:
        scores = [0.0] * n
        for position, index in enumerate(order):
            scores[index] = float(selected - position)
        return scores
