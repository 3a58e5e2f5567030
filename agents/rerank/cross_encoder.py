"""The reranker slot of the agent: one small interface and its backends.

A reranker re-scores the fused candidates of a question, one ``(query, passage)`` pair at a time. Every backend
implements :class:`Reranker`: ``score`` gives one float per passage (higher is more relevant; only the order within
one call means anything), ``rank`` gives ``(index into docs, score)`` pairs, best first, ties in the given order.

Backends here:

- :class:`PassThroughReranker` (``none``): keeps the order it was given (the fused order);
- :class:`CrossEncoderReranker` (``cross-encoder``): a sentence-transformers ``CrossEncoder`` read from a local
  folder, run batched in float32 on the CPU. The product's default is trained from the packaged MiniLM weights by
  ``hopmem finetune reranker --recipe cross-encoder`` and ships in the package, packed
  (:mod:`hopmem.agents.cross_encoder_pack`); a user's own training goes to :func:`default_cross_encoder_dir` and is
  found first (:func:`find_cross_encoder`).

The LLM rerankers have a module each: :mod:`hopmem.agents.rerank_pointwise` (``prorank``, ``prorank-base``),
:mod:`hopmem.agents.rerank_setwise` (``rank-r1``) and :mod:`hopmem.agents.rerank_served` (``prorank`` through vLLM);
:func:`load_reranker` builds any of them by name, and :func:`find_adapter` finds their LoRA adapters.

torch and sentence-transformers are imported inside the functions that need them, so ``import hopmem.agents`` stays
light.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hopmem.agents.cross_encoder_pack import apply_packed_weights, is_packed_cross_encoder, read_pack_record
from hopmem.memory.embeddings import quiet_transformers
from hopmem.memory.errors import ConfigError, ModelNotAvailableError
from hopmem.memory.model_paths import resolve_embedder_path

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

log = logging.getLogger(__name__)

RERANKERS: tuple[str, ...] = ("prorank", "prorank-base", "rank-r1", "cross-encoder", "none")
BLEND_FILE = "hopmem_cross_encoder.json"
"""Written beside a trained cross-encoder: the blend weight its training chose (see :func:`blend_with_order`)."""
DEFAULT_MAX_LENGTH = 128
"""Tokens of one (query, passage) pair: MiniLM costs grow with length; a 2-core CPU scores about 50 pairs/s at 128."""


@runtime_checkable
class Reranker(Protocol):
    """Scores passages against a query; every backend of the agent's rerank step implements this."""

    name: str

    def score(self, query: str, docs: Sequence[str]) -> list[float]:
        """One relevance score per passage of ``docs`` (higher is better), in the order of ``docs``."""
        ...

    def rank(self, query: str, docs: Sequence[str], top_k: int | None = None) -> list[tuple[int, float]]:
        """``(index into docs, score)`` pairs, best first (ties keep the given order), at most ``top_k`` of them."""
        ...


def rank_by_scores(scores: Sequence[float], top_k: int | None = None) -> list[tuple[int, float]]:
    """Indices sorted by descending score; a stable sort, so equal scores keep the given order."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranked = [(i, float(scores[i])) for i in order]
    return ranked if top_k is None else ranked[: max(top_k, 0)]


def _zscores(values: Sequence[float]) -> list[float]:
    n = len(values)
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / n) ** 0.5
    return [(v - mean) / std if std > 0 else 0.0 for v in values]


def blend_with_order(scores: Sequence[float], weight: float) -> list[float]:
    """Mix a reranker's scores with the order the candidates came in: ``(1 - w) * z(scores) + w * z(-log(1 + i))``.

    The candidates arrive in the first stage's order (the fused hybrid ranking), so position ``i`` carries what
    retrieval knew; z-scores put both on one scale within the call. ``weight`` 0 is the reranker alone, 1 the given
    order. A small reranker trained on little data ranks worse than hybrid search alone but still knows things it
    does not; the blend keeps both (the weight is chosen on held-out training queries, never on dev).
    """
    if not scores or weight <= 0:
        return [float(v) for v in scores]
    prior = _zscores([-math.log(1 + i) for i in range(len(scores))])
    own = _zscores([float(v) for v in scores])
    return [(1 - weight) * a + weight * b for a, b in zip(own, prior, strict=True)]


def read_blend_weight(folder: Path) -> float:
    """The blend weight saved beside a cross-encoder (0, the model alone, when none was saved)."""
    path = Path(folder) / BLEND_FILE
    if not path.is_file():
        return 0.0
    try:
        return float(json.loads(path.read_text(encoding="utf-8")).get("blend", 0.0))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not valid JSON with a number 'blend'; train the cross-encoder again.") from exc


def passage_text(title: str | None, body: str) -> str:
    """The text a reranker reads for a stored passage: ``title: body``, without a title the body already begins with.

    Training and inference must format passages the same way; Cranfield's abstracts, for one, repeat their title.
    """
    title = (title or "").strip()
    body = body.strip()
    if not title or body.lower().startswith(title.lower()):
        return body
    return f"{title}: {body}"


class PassThroughReranker:
    """Keeps the candidates' own order (scores ``1/1, 1/2, 1/3, ...``); the reranker named ``none``."""

    name = "none"

    def score(self, query: str, docs: Sequence[str]) -> list[float]:
        return [1.0 / (i + 1) for i in range(len(docs))]

    def rank(self, query: str, docs: Sequence[str], top_k: int | None = None) -> list[tuple[int, float]]:
        return rank_by_scores(self.score(query, docs), top_k)


def init_cross_encoder(base: str | Path, *, seed: int = 0, max_length: int = DEFAULT_MAX_LENGTH) -> CrossEncoder:
    """A cross-encoder whose encoder is read from ``base`` and whose 1-logit head is fresh (seeded).

    ``base`` is usually the packaged all-MiniLM-L6-v2 folder: sentence-transformers turns a bi-encoder folder into a
    ``BertForSequenceClassification`` with a new classifier. Training starts here, and the evaluation's
    "untrained" row is this same model, so the comparison shows what training added.

    Raises:
        ModelNotAvailableError: when sentence-transformers is missing or ``base`` cannot be read.
    """
    import torch

    CrossEncoder = _cross_encoder_class()
    quiet_transformers()
    torch.manual_seed(seed)
    st_log = logging.getLogger("sentence_transformers")
    level = st_log.level
    st_log.setLevel(logging.ERROR)  # "Converting SentenceTransformer model ... to CrossEncoder" is what we ask for
    try:
        model = CrossEncoder(str(base), num_labels=1, device="cpu", local_files_only=True, max_length=max_length)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(f"Could not read the encoder in {base} for a cross-encoder: {exc}.") from exc
    finally:
        st_log.setLevel(level)
    model.float()
    return model


def _cross_encoder_class() -> type[CrossEncoder]:
    try:
        from sentence_transformers import CrossEncoder
    except ImportError as exc:
        raise ModelNotAvailableError(
            "sentence-transformers is not installed: run `make install` or pip install sentence-transformers."
        ) from exc
    return CrossEncoder


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` from a local folder, batched, float32, on the CPU.

    Scores are the model's raw logit (no sigmoid), so they keep their full resolution; with a blend weight above 0
    they are mixed with the candidates' given order (:func:`blend_with_order`), so only their order means anything.
    Pairs are scored in batches sorted by length, so a batch pads little; results come back in the given order.

    Args:
        folder: a folder written by ``CrossEncoder.save`` (``hopmem finetune reranker`` writes one), or a packed
            one (:mod:`hopmem.agents.cross_encoder_pack`; the shipped default).
        batch_size: pairs per forward pass.
        max_length: tokens per pair (default: what the folder was saved with, else 128).
        model: an already built ``CrossEncoder`` (then ``folder`` is only recorded), e.g. from
            :func:`init_cross_encoder`.
        name: the name reported in traces and evaluations.
        blend: weight of the candidates' given order in the score (:func:`blend_with_order`); None reads the
            weight saved with the model (``hopmem_cross_encoder.json``; 0 when absent or when ``model`` is given).

    Raises:
        ConfigError: when the folder holds no cross-encoder.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        batch_size: int = 16,
        max_length: int | None = None,
        model: CrossEncoder | None = None,
        name: str = "cross-encoder",
        blend: float | None = None,
    ) -> None:
        self.folder = Path(folder).expanduser()
        self.name = name
        if blend is None:
            blend = 0.0 if model is not None else read_blend_weight(self.folder)
        if not 0.0 <= blend <= 1.0:
            raise ConfigError(f"The cross-encoder's blend weight must lie in [0, 1], got {blend}.")
        self.blend = float(blend)
        self.batch_size = max(1, int(batch_size))
        if model is None:
            if not is_cross_encoder_dir(self.folder):
                raise ConfigError(
                    f"No cross-encoder in {self.folder} (config.json and weights expected); train one with "
                    "`hopmem finetune reranker --recipe cross-encoder` or set HOPMEM_RERANKER=none."
                )
            model = _load_cross_encoder(self.folder, max_length)
        elif max_length is not None:
            model.max_seq_length = max_length
        if not model.max_seq_length:
            model.max_seq_length = DEFAULT_MAX_LENGTH
        model.float()
        model.eval()
        self.model = model

    @property
    def max_length(self) -> int:
        return int(self.model.max_seq_length or DEFAULT_MAX_LENGTH)

    def score(self, query: str, docs: Sequence[str]) -> list[float]:
        if not docs:
            return []
        if self.blend >= 1.0:  # the given order alone: the model's scores would have no weight
            return blend_with_order([0.0] * len(docs), 1.0)
        import torch

        order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
        pairs = [(query, docs[i]) for i in order]
        with torch.inference_mode():
            raw: Any = self.model.predict(
                pairs,
                batch_size=self.batch_size,
                show_progress_bar=False,
                activation_fn=torch.nn.Identity(),
                convert_to_numpy=True,
            )
        scores = [0.0] * len(docs)
        for position, value in zip(order, raw.reshape(-1).tolist(), strict=True):
            scores[position] = float(value)
        return blend_with_order(scores, self.blend)

    def rank(self, query: str, docs: Sequence[str], top_k: int | None = None) -> list[tuple[int, float]]:
        return rank_by_scores(self.score(query, docs), top_k)


def _load_cross_encoder(folder: Path, max_length: int | None) -> CrossEncoder:
    """A cross-encoder from a folder saved by sentence-transformers or a packed one, in float32 on the CPU."""
    if is_packed_cross_encoder(folder):
        record = read_pack_record(folder)
        base = resolve_embedder_path(str(record.get("base_model") or "all-MiniLM-L6-v2"))
        length = max_length or int(record.get("max_length") or DEFAULT_MAX_LENGTH)
        return apply_packed_weights(init_cross_encoder(base, seed=0, max_length=length), folder)
    CrossEncoder = _cross_encoder_class()
    quiet_transformers()
    log.info("loading cross-encoder from %s", folder)
    try:
        return CrossEncoder(str(folder), device="cpu", local_files_only=True, max_length=max_length)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"The cross-encoder in {folder} cannot be loaded ({exc}); train it again with "
            "`hopmem finetune reranker --recipe cross-encoder`."
        ) from exc


def is_cross_encoder_dir(folder: Path) -> bool:
    """True when ``folder`` looks like a saved cross-encoder (a config and a weights file) or a packed one."""
    folder = Path(folder)
    has_weights = any((folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin"))
    return ((folder / "config.json").is_file() and has_weights) or is_packed_cross_encoder(folder)


def default_cross_encoder_dir(cache_dir: Path) -> Path:
    """Where a user's own cross-encoder (``hopmem finetune reranker --recipe cross-encoder``) is saved by default."""
    return Path(cache_dir).expanduser() / "models" / "cross-encoder-minilm-l6"


def shipped_cross_encoder_dir() -> Path:
    """The default cross-encoder shipped inside the package, packed (:mod:`hopmem.agents.cross_encoder_pack`)."""
    return Path(__file__).resolve().parent / "reranker_weights" / "cross-encoder"


def find_cross_encoder(location: str | Path | None, cache_dir: Path) -> Path:
    """The cross-encoder folder: ``location`` when given, else the user's own (trained into the cache), else the
    shipped one.

    Raises:
        ConfigError: when ``location`` holds no cross-encoder, or no folder of the lookup does (the message says
            how to train one).
    """
    if location:
        folder = Path(location).expanduser()
        if is_cross_encoder_dir(folder):
            return folder
        raise ConfigError(
            f"No cross-encoder in {folder} (config.json and weights expected); train one with "
            "`hopmem finetune reranker --recipe cross-encoder` or set HOPMEM_RERANKER=none."
        )
    for folder in (default_cross_encoder_dir(cache_dir), shipped_cross_encoder_dir()):
        if is_cross_encoder_dir(folder):
            return folder
    raise ConfigError(
        f"No cross-encoder in {default_cross_encoder_dir(cache_dir)} nor in the package; train one with "
        "`make finetune-cross-encoder` or set HOPMEM_RERANKER=none."
    )


def default_llm_reranker_dir(recipe: str, cache_dir: Path) -> Path:
    """Where ``hopmem finetune reranker --recipe RECIPE`` saves its LoRA adapter by default (and the agent looks)."""
    return Path(cache_dir).expanduser() / "models" / f"{recipe}-adapter"


def shipped_adapter_dir(recipe: str) -> Path:
    """The adapter of ``recipe`` shipped inside the package (it may be absent for a recipe)."""
    return Path(__file__).resolve().parent / "reranker_weights" / recipe


def find_adapter(recipe: str, location: str | Path | None, cache_dir: Path) -> Path:
    """The adapter folder of ``recipe``: ``location`` when given, else the user's own (trained into the cache), else
    the shipped one.

    Raises:
        ConfigError: when none of them holds an adapter (the message says how to train one).
    """
    from hopmem.agents.rerank_pointwise import is_adapter_dir

    if location:
        folder = Path(location).expanduser()
        if is_adapter_dir(folder):
            return folder
        raise ConfigError(f"No LoRA adapter in {folder}; train one with `hopmem finetune reranker --recipe {recipe}`.")
    for folder in (default_llm_reranker_dir(recipe, cache_dir), shipped_adapter_dir(recipe)):
        if is_adapter_dir(folder):
            return folder
    raise ConfigError(
        f"No {recipe} adapter is installed; train one with `hopmem finetune reranker --recipe {recipe}` or set "
        "HOPMEM_RERANKER=none."
    )


def load_reranker(
    name: str,
    location: str | Path | None,
    *,
    cache_dir: Path,
    batch_size: int = 16,
    server: str = "",
    served_model: str = "prorank",
) -> Reranker:
    """The reranker called ``name``.

    - ``none``: pass-through; ``cross-encoder``: the MiniLM cross-encoder (``location``, else the user's trained one
      in the cache, else the shipped one);
    - ``prorank``: the pointwise LLM reranker with its LoRA adapter (``location``, else the user's trained one in the
      cache, else the shipped one); ``prorank-base``: that adapter's base model (and prompt budget) without it;
    - ``rank-r1``: the setwise reasoning reranker with its adapter (found like ``prorank``).

    Args:
        name: the backend (``HOPMEM_RERANKER``).
        location: the model's folder (``HOPMEM_RERANKER_MODEL``); empty or None means the default for ``name``.
        cache_dir: hopmem's cache folder (``HOPMEM_CACHE_DIR``).
        batch_size: pairs per forward pass.
        server: the OpenAI-compatible root of a vLLM server (``HOPMEM_RERANKER_SERVER``); when set, ``prorank``
            is scored there (:class:`hopmem.agents.rerank_served.ServedPointwiseReranker`) under ``served_model``.
        served_model: the name the server serves the adapter under (``--lora-modules NAME=folder``).

    Raises:
        ConfigError: for an unknown name, or when the model is not on disk (the message says how to train it).
    """
    key = (name or "").strip().lower()
    if key == "prorank" and server:
        from hopmem.agents.rerank_served import ServedPointwiseReranker

        try:
            adapter: str | Path = find_adapter("prorank", location, cache_dir)
        except ConfigError:
            adapter = ""  # the server has the adapter; only its record (prompt budget) is read here
        return ServedPointwiseReranker(served_model, base_url=server, adapter=adapter, batch_size=batch_size)
    if key == "none":
        return PassThroughReranker()
    if key == "cross-encoder":
        return CrossEncoderReranker(find_cross_encoder(location, cache_dir), batch_size=batch_size)
    if key in ("prorank", "prorank-base"):
        from hopmem.agents.rerank_pointwise import PointwiseLLMReranker, read_reranker_record

        if key == "prorank":
            return PointwiseLLMReranker(adapter=find_adapter("prorank", location, cache_dir), batch_size=batch_size)
        try:  # the base an adapter was trained on, so "prorank-base" is the tuned model minus its adapter
            record = read_reranker_record(find_adapter("prorank", location, cache_dir))
        except ConfigError:
            record = {}
        return PointwiseLLMReranker(
            str(record.get("base_model") or ""),
            batch_size=batch_size,
            passage_tokens=record.get("passage_tokens"),
            query_tokens=record.get("query_tokens"),
            name=key,
        )
    if key == "rank-r1":
        from hopmem.agents.rerank_setwise import SetwiseLLMReranker

        return SetwiseLLMReranker(adapter=find_adapter("rank-r1", location, cache_dir), name=key)
    raise ConfigError(f"Unknown reranker {name!r}; use one of {', '.join(RERANKERS)}.")
