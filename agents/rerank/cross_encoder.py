"""The cross-encoder reranker (``cross-encoder``, the product's default): a sentence-transformers ``CrossEncoder``.

The model is read from a local folder and run batched in float32 on the CPU. The product's default is trained from the
packaged MiniLM weights by ``hopmem finetune reranker --recipe cross-encoder`` and ships in the package, packed
(:mod:`hopmem.agents.rerank.cross_encoder_pack`); a user's own training goes to
:func:`~hopmem.agents.rerank.model_paths.default_cross_encoder_dir` and is found first
(:func:`~hopmem.agents.rerank.model_paths.find_cross_encoder`). Its scores can be blended with the order the
candidates came in (:func:`blend_with_order`), by a weight saved with the model.

torch and sentence-transformers are imported inside the functions that need them, so importing this module stays
light.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.agents.rerank.base import BaseReranker
from hopmem.agents.rerank.cross_encoder_pack import apply_packed_weights, is_packed_cross_encoder, read_pack_record
from hopmem.agents.rerank.model_paths import is_cross_encoder_dir
from hopmem.memory.embeddings import quiet_transformers
from hopmem.memory.errors import ConfigError, ModelNotAvailableError
from hopmem.memory.model_paths import resolve_embedder_path

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

log = logging.getLogger(__name__)

BLEND_FILE = "hopmem_cross_encoder.json"
"""Written beside a trained cross-encoder: the blend weight its training chose (see :func:`blend_with_order`)."""
DEFAULT_MAX_LENGTH = 128
"""Tokens of one (query, passage) pair: MiniLM costs grow with length; a 2-core CPU scores about 50 pairs/s at 128."""


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


class CrossEncoderReranker(BaseReranker):
    """A sentence-transformers ``CrossEncoder`` from a local folder, batched, float32, on the CPU.

    Scores are the model's raw logit (no sigmoid), so they keep their full resolution; with a blend weight above 0
    they are mixed with the candidates' given order (:func:`blend_with_order`), so only their order means anything.
    Pairs are scored in batches sorted by length, so a batch pads little; results come back in the given order.

    Args:
        folder: a folder written by ``CrossEncoder.save`` (``hopmem finetune reranker`` writes one), or a packed
            one (:mod:`hopmem.agents.rerank.cross_encoder_pack`; the shipped default).
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

    def with_blend(self, weight: float) -> CrossEncoderReranker:
        """This reranker with another blend weight (the same model, shared, not copied).

        The agent blends conversation memories by their own weight (``conversation_rerank_blend``): the saved weight
        was chosen on document passages.

        Raises:
            ConfigError: when ``weight`` lies outside [0, 1].
        """
        if not 0.0 <= weight <= 1.0:
            raise ConfigError(f"The cross-encoder's blend weight must lie in [0, 1], got {weight}.")
        twin = copy.copy(self)
        twin.blend = float(weight)
        return twin

    def _score(self, query: str, docs: list[str]) -> list[float]:
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
