"""Text embedders. torch and sentence-transformers are imported only when a model is loaded."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

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

    def __init__(self, name: str, *, batch_size: int = 64, max_seq_length: int = 256) -> None:
        path = resolve_embedder_path(name)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelNotAvailableError(
                "sentence-transformers is not installed: run `make install` or pip install sentence-transformers."
            ) from exc
        log.info("loading embedder %s from %s", name, path)
        _quiet_transformers()
        try:
            self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(f"Could not load the embedder {name!r} from {path}: {exc}.") from exc
        self._model.max_seq_length = min(max_seq_length, self._model.max_seq_length or max_seq_length)
        self.name = name
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ModelNotAvailableError(f"The embedder {name!r} does not report its dimension.")
        self.dim = int(dim)
        self.batch_size = batch_size

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


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        pass


_CACHE: dict[tuple[str, int, int], SentenceTransformerEmbedder] = {}


def load_embedder(name: str, *, batch_size: int = 64, max_seq_length: int = 256) -> SentenceTransformerEmbedder:
    """Load (once per process) the embedder called ``name``."""
    key = (name, batch_size, max_seq_length)
    if key not in _CACHE:
        _CACHE[key] = SentenceTransformerEmbedder(name, batch_size=batch_size, max_seq_length=max_seq_length)
    return _CACHE[key]
