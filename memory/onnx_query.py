"""An ONNX Runtime copy of a sentence-transformers encoder, used to embed one search query quickly.

On a small CPU, PyTorch spends most of a short query's embedding time dispatching small operators (about 22 ms
for MiniLM-L6 on the 2-core reference machine); ONNX Runtime runs the same graph in a fraction of that. Batched
ingestion stays on PyTorch, which is as fast there. The graph is exported once from the local weights (no
download), cached on disk under a name derived from the model's files, and checked against PyTorch before it is
used: if it disagrees, or ONNX Runtime is missing, the query path stays on PyTorch and says why in the log.

The export runs the model's eager attention, so that ONNX Runtime's transformer optimizer can fuse each layer's
attention, the embeddings' layer norm, the GELUs and the residual layer norms into single kernels (about 670 graph
nodes become 46): the same float32 arithmetic (within 1e-6 of PyTorch), with less per-operator overhead. When the
fusion is not possible the unfused graph is used.

``quantize=True`` (the ``onnx-int8`` query runtime) also quantizes the fused graph's weights to int8 (dynamic,
per channel): faster again, but the vectors move (cosine about 0.98-0.99 to the float ones), so it is a choice,
not the default; its cost in retrieval quality has not been measured on a BEIR set yet.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

PROBE = "How do honeybees tell each other where the flowers are?"
PROBES: tuple[str, ...] = (
    PROBE,
    "  Ünïcode, CAPITALS & punctuation!? x" + " long" * 600,  # accents, case, spacing and truncation
    "tokenization_with-underscores 3.14159 e-mail@example.org",
)
MAX_DIFF = 1e-4  # largest element difference to PyTorch accepted for the float graph
MIN_INT8_COSINE = 0.97  # smallest cosine to PyTorch accepted for the int8 graph
GRAPH_VERSION = 2  # part of the cached file's name: 2 = eager-attention export, fused


class OnnxQueryEncoder:
    """Tokenizer + ONNX transformer + mean pooling + L2 normalisation, matching the PyTorch stack it came from.

    A single query skips the Hugging Face tokenizer's call (batching and padding bookkeeping, about 0.1 ms) when a
    private copy of its Rust tokenizer, set to truncate at ``max_length`` and not to pad, gives the same token ids
    on :data:`PROBES`; otherwise it calls the Hugging Face tokenizer.
    """

    def __init__(self, session: Any, tokenizer: Any, max_length: int) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._max_length = max_length
        self._inputs = {i.name for i in session.get_inputs()}
        self._rust = _rust_tokenizer(tokenizer, max_length)

    def _token_ids(self, text: str) -> NDArray[np.int64]:
        if self._rust is not None:
            return np.asarray([self._rust.encode(text).ids], dtype=np.int64)
        batch = self._tokenizer([text], return_tensors="np", truncation=True, max_length=self._max_length)
        return np.asarray(batch["input_ids"], dtype=np.int64)

    def encode(self, text: str) -> np.ndarray:
        ids = self._token_ids(text)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {name: value for name, value in feeds.items() if name in self._inputs})[0]
        pooled = hidden[0].mean(axis=0)  # one unpadded text: every position counts
        vector = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return np.ascontiguousarray(vector, dtype=np.float32)


def _rust_tokenizer(tokenizer: Any, max_length: int) -> Any:
    """An independent copy of ``tokenizer``'s Rust tokenizer that truncates like it and never pads, or None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    try:
        from tokenizers import Tokenizer

        rust = Tokenizer.from_str(backend.to_str())
        rust.no_padding()
        rust.enable_truncation(max_length)
        for text in PROBES:
            want = tokenizer([text], truncation=True, max_length=max_length)["input_ids"][0]
            if rust.encode(text).ids != list(want):
                log.info("the Rust tokenizer disagrees with the Hugging Face one; queries use the latter")
                return None
    except Exception as exc:  # only a speed-up: the Hugging Face tokenizer stays correct
        log.info("no direct Rust tokenizer for queries (%s)", exc)
        return None
    return rust


def build_query_encoder(
    auto_model: Any,
    tokenizer: Any,
    model_dir: Path,
    max_length: int,
    cache_dir: Path,
    reference: Any,
    *,
    quantize: bool = False,
) -> OnnxQueryEncoder | None:
    """The ONNX encoder of ``auto_model``, or None (with the reason logged) when it cannot be made or disagrees.

    Args:
        auto_model: the Hugging Face transformer inside the sentence-transformers model.
        tokenizer: its tokenizer.
        model_dir: the folder the weights came from (its files name the cached graph).
        max_length: the model's max sequence length.
        cache_dir: where exported graphs are kept.
        reference: a callable text -> vector (the PyTorch path) to check the graph against.
        quantize: use the int8 copy of the graph (checked by cosine, see :data:`MIN_INT8_COSINE`).
    """
    try:
        import onnxruntime as ort
    except ImportError:
        log.info("onnxruntime is not installed; queries are embedded with PyTorch")
        return None
    try:
        path = cache_dir / f"{_fingerprint(model_dir)}-v{GRAPH_VERSION}.onnx"
        if not path.is_file():
            _export(auto_model, tokenizer, path)
        if quantize:
            quantized = path.with_suffix(".int8.onnx")
            if not quantized.is_file():
                _quantize(path, quantized)
            path = quantized
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # leave the cores to others
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        encoder = OnnxQueryEncoder(session, tokenizer, max_length)
        got, want = encoder.encode(PROBE), np.asarray(reference(PROBE))
        diff = float(np.abs(got - want).max())
        cosine = float(got @ want / max(float(np.linalg.norm(want)), 1e-12))
    except Exception as exc:  # any failure here only costs speed: it is logged, never hidden
        log.warning("could not prepare the ONNX query encoder (%s); queries are embedded with PyTorch", exc)
        return None
    if (quantize and cosine < MIN_INT8_COSINE) or (not quantize and diff > MAX_DIFF):
        log.warning(
            "the ONNX query encoder differs from PyTorch (max diff %.2g, cosine %.4f); queries are embedded with "
            "PyTorch",
            diff,
            cosine,
        )
        return None
    return encoder


def _fingerprint(model_dir: Path) -> str:
    """A name for the exported graph that changes when the model's files change."""
    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    for file in sorted(model_dir.rglob("*")):
        if file.is_file():
            stat = file.stat()
            digest.update(f"{file.relative_to(model_dir)}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:20]


def _export(auto_model: Any, tokenizer: Any, path: Path) -> None:
    """Export the transformer (eager attention) to ONNX and fuse it; written atomically to ``path``."""
    import warnings

    import torch

    class _Hidden(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer([PROBE], return_tensors="pt")
    if "token_type_ids" not in sample:
        sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
    axes = {0: "batch", 1: "tokens"}
    was_training = auto_model.training
    config = auto_model.config
    attention = getattr(config, "_attn_implementation", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            if attention is not None:
                config._attn_implementation = "eager"  # the pattern ONNX Runtime's attention fusion recognises
            try:
                torch.onnx.export(
                    _Hidden(auto_model.eval()),
                    (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
                    tmp,
                    input_names=["input_ids", "attention_mask", "token_type_ids"],
                    output_names=["hidden"],
                    dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "hidden": axes},
                    opset_version=17,
                    dynamo=False,
                )
            finally:
                if attention is not None:
                    config._attn_implementation = attention
                auto_model.train(was_training)
        _fuse(tmp, config)
        os.replace(tmp, path)  # atomic: processes exporting at once each leave a whole file
        log.info("exported the query encoder to %s", path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fuse(path: str, config: Any) -> None:
    """Fuse attention, layer norms and GELUs of the BERT-style graph at ``path`` in place (kept as is on failure)."""
    try:
        from onnxruntime.transformers import optimizer

        model = optimizer.optimize_model(
            path,
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=0,  # fusions only; the session applies ONNX Runtime's own optimisations when it loads
        )
        fused = model.get_fused_operator_statistics()
        model.save_model_to_file(path)
        log.info("fused the query encoder: %s", {k: v for k, v in fused.items() if v})
    except Exception as exc:  # the unfused graph is correct, only slower
        log.warning("could not fuse the query encoder graph (%s); using it unfused", exc)


def _quantize(source: Path, target: Path) -> None:
    """Write an int8 copy of the graph (dynamic quantization of the weights, per channel), atomically."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        quantize_dynamic(
            str(source),
            tmp,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(tmp, target)
        log.info("quantized the query encoder to %s", target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
