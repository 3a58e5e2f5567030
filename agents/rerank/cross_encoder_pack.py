"""The packed cross-encoder: a trained MiniLM cross-encoder stored as what it adds to the packaged MiniLM.

A full MiniLM-L6 cross-encoder is 90 MB in float32, and half of its parameters are the word embeddings. The default
recipe keeps those frozen (``freeze_word_embeddings``), so a trained model is the packaged all-MiniLM-L6-v2's word
embeddings plus about 11 M trained parameters. A packed folder stores only the latter, in float16 (22 MB), and
records which base it needs with a hash of the base's word embeddings; loading rebuilds the model from the packaged
MiniLM and lays the stored tensors over it in float32. The shipped default reranker is such a folder
(``agents/reranker_weights/cross-encoder``), written by ``python -m hopmem.finetune.export --recipe cross-encoder``.

A packed folder holds ``cross_encoder.safetensors`` and ``hopmem_cross_encoder.json`` (the blend weight, as beside
any trained cross-encoder, and a ``packed`` record: base model, its hash, omitted tensors, dtype, pair length).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.memory.errors import ConfigError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

log = logging.getLogger(__name__)

PACK_WEIGHTS = "cross_encoder.safetensors"
PACK_RECORD = "hopmem_cross_encoder.json"  # the same file that carries a trained model's blend weight


def read_pack_record(folder: Path) -> dict[str, Any]:
    """The ``packed`` record of ``folder`` (empty when the folder is not a packed cross-encoder)."""
    path = Path(folder) / PACK_RECORD
    if not (Path(folder) / PACK_WEIGHTS).is_file() or not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8")).get("packed")
    except (ValueError, AttributeError) as exc:
        raise ConfigError(f"{path} is not valid JSON; export the cross-encoder again.") from exc
    return record if isinstance(record, dict) else {}


def is_packed_cross_encoder(folder: Path) -> bool:
    """True when ``folder`` holds a packed cross-encoder (weights and a ``packed`` record)."""
    return bool(read_pack_record(folder))


def tensor_sha256(tensor: Any) -> str:
    """SHA-256 of a tensor's float32 values, the fingerprint a packed model keeps of its base's omitted tensors."""
    return hashlib.sha256(tensor.detach().float().contiguous().cpu().numpy().tobytes()).hexdigest()


def apply_packed_weights(model: CrossEncoder, folder: Path) -> CrossEncoder:
    """Lay the tensors packed in ``folder`` over ``model``, a cross-encoder just built on the record's base encoder.

    Raises:
        ConfigError: when the record is incomplete, the base encoder is not the one the model was trained on (its
            omitted tensors differ), or the stored tensors do not fit the base's architecture.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    record = read_pack_record(folder)
    try:
        base_name = str(record["base_model"])
        omitted: dict[str, str] = dict(record["omitted"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{folder / PACK_RECORD} lacks its 'packed' record; export the model again.") from exc
    net: Any = model.model
    base_state = net.state_dict()
    for key, digest in omitted.items():
        if key not in base_state or tensor_sha256(base_state[key]) != digest:
            raise ConfigError(
                f"The cross-encoder in {folder} was trained on another {base_name} than the one installed "
                f"({key} differs); retrain it with `make finetune-cross-encoder`."
            )
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(folder / PACK_WEIGHTS)).items()}
    missing, unexpected = net.load_state_dict(tensors, strict=False)
    absent = sorted(set(missing) - set(omitted))
    if absent or unexpected:
        raise ConfigError(
            f"The cross-encoder in {folder} does not fit {base_name} (missing {absent[:3]}, unexpected "
            f"{list(unexpected)[:3]}); export it again."
        )
    model.float()
    log.info("loaded packed cross-encoder from %s on %s", folder, base_name)
    return model
