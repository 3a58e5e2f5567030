"""Text embedders. torch and sentence-transformers are imported only when a model is loaded."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hopmem.memory.errors import ModelNotAvailableError
from hopmem.memory.model_paths import resolve_embedder_path

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> NDArray[np.float32]:
        """Return an array of shape (len(texts), dim), each row of unit norm."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from local files on the CPU."""

    def __init__(
        self,
        name: str,
        *,
        batch_size: int = 64,
        max_seq_length: int = 256,
        query_runtime: str = "torch",
        cache_dir: Path | None = None,
    ) -> None:
        path = resolve_embedder_path(name)
        self._path = Path(path)
        self.query_runtime = query_runtime
        self._cache_dir = cache_dir
        self._onnx: Any = None
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelNotAvailableError(
                "sentence-transformers is not installed: run `make install` or pip install sentence-transformers."
            ) from exc
        log.info("loading embedder %s from %s", name, path)
        quiet_transformers()
        try:
            self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(f"Could not load the embedder {name!r} from {path}: {exc}.") from exc
        self._model.max_seq_length = min(max_seq_length, self._model.max_seq_length or max_seq_length)
        self._model.eval()  # loaded in training mode: dropout would make the direct query path random
        self.name = name
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ModelNotAvailableError(f"The embedder {name!r} does not report its dimension.")
        self.dim = int(dim)
        self.batch_size = batch_size
        self._direct: bool | None = None

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> NDArray[np.float32]:
        """One text's vector, for search: the same numbers as :meth:`embed`, with less per-call overhead.

        ``encode`` spends milliseconds on batching and bookkeeping that a single short query does not need, and a
        query's embedding is most of a dense search's latency. The direct path runs only for the usual
        transformer + mean pooling + normalise stack; anything else goes through :meth:`embed`.
        """
        if self._direct is None:
            self._direct = _mean_pooled_stack(self._model)
            if self._direct and self.query_runtime in ("onnx", "onnx-int8") and self._cache_dir is not None:
                from hopmem.memory.onnx_query import build_query_encoder

                first_module: Any = self._model[0]
                self._onnx = build_query_encoder(
                    first_module.auto_model,
                    first_module.tokenizer,
                    self._path,
                    int(self._model.max_seq_length or 256),
                    self._cache_dir,
                    self._embed_query_torch,
                    quantize=self.query_runtime == "onnx-int8",
                )
        if self._onnx is not None:
            return self._onnx.encode(text)
        if not self._direct:
            return self.embed([text])[0]
        return self._embed_query_torch(text)

    def _embed_query_torch(self, text: str) -> NDArray[np.float32]:
        import torch

        first: Any = self._model[0]
        with torch.inference_mode():
            batch = first.tokenizer(
                [text], return_tensors="pt", truncation=True, max_length=self._model.max_seq_length, padding=True
            )
            hidden = first.auto_model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vector = torch.nn.functional.normalize(pooled, p=2, dim=1)[0]
        return np.ascontiguousarray(vector.numpy(), dtype=np.float32)


def _mean_pooled_stack(model: object) -> bool:
    """Whether ``model`` is exactly Transformer -> mean Pooling -> Normalize (what :meth:`embed_query` reproduces)."""
    try:
        modules = list(model)  # type: ignore[call-overload]
        names = [type(m).__name__ for m in modules]
        if names != ["Transformer", "Pooling", "Normalize"]:
            return False
        config = modules[1].get_config_dict()
        mean_only = config.get("pooling_mode") == "mean" or (
            config.get("pooling_mode_mean_tokens") and not config.get("pooling_mode_cls_token")
        )
        return bool(mean_only) and hasattr(modules[0], "auto_model") and hasattr(modules[0], "tokenizer")
    except (TypeError, AttributeError):
        return False


def quiet_transformers() -> None:
    """Keep transformers' load reports and progress bars out of a user's terminal (hopmem shows its own progress)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        pass


_CACHE: dict[tuple[str, int, int, str, str], SentenceTransformerEmbedder] = {}


def load_embedder(
    name: str,
    *,
    batch_size: int = 64,
    max_seq_length: int = 256,
    query_runtime: str = "torch",
    cache_dir: Path | None = None,
) -> SentenceTransformerEmbedder:
    """Load (once per process) the embedder called ``name``.

    Args:
        query_runtime: ``onnx`` embeds single search queries with ONNX Runtime (same vectors, about 3x faster on a
            small CPU; the graph is exported once into ``cache_dir``), ``onnx-int8`` the same with int8 weights
            (faster, slightly different vectors), ``torch`` keeps them on PyTorch.
    """
    key = (name, batch_size, max_seq_length, query_runtime, str(cache_dir))
    if key not in _CACHE:
        _CACHE[key] = SentenceTransformerEmbedder(
            name,
            batch_size=batch_size,
            max_seq_length=max_seq_length,
            query_runtime=query_runtime,
            cache_dir=cache_dir,
        )
    return _CACHE[key]
