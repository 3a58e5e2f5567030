"""The TreeHop next-query model in plain torch (after allen-li1231/TreeHop, arXiv:2504.20114).

TreeHop replaces "retrieve, rewrite with an LLM, embed, retrieve" with "retrieve, embed, retrieve": the next query
embedding is computed from the current query embedding ``q`` and the embedding of a retrieved passage ``c``::

    q_next = normalise(q - c + UpdateGate(q, c)),   UpdateGate(q, c) = W_out · heads(q, c) + m_q · q + m_c · c

``q - c`` removes what the passage already answered; the gate's heads (per head: projections of ``q`` and ``c``, a
softmax over the feature dimensions of their elementwise product that gates the projected passage, an MLP with a
residual) add back what the next hop needs, such as the bridge entity the passage names. The two learned scalars
``m_q`` and ``m_c`` are hopmem's addition for small training sets: they start at 0 and 1 and ``W_out`` at zero, so an
untrained model asks the question again (``q_next = q``, plain retrieval) and training can only move it from there
by what the validation questions reward. The dimension comes from the embedder; the original needs DGL, a GPU and a
1024-d embedder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from hopmem.memory.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class TreeHopConfig:
    """The shape of a TreeHop model; saved beside its weights.

    Args:
        dim: embedding dimension (from the embedder).
        attn_size: width of each head's projections.
        mlp_size: width of each head's MLP.
        n_mlp: hidden layers of each head's MLP.
        n_head: attention heads.
        dropout: dropout on the gated passage during training.
        embedder: the embedder whose vectors the model was trained on (checked when it is used).
    """

    dim: int
    attn_size: int = 192
    mlp_size: int = 384
    n_mlp: int = 2
    n_head: int = 3
    dropout: float = 0.1
    embedder: str = ""


class _GateHead(nn.Module):
    def __init__(self, dim: int, attn_size: int, mlp_size: int, n_mlp: int, dropout: float) -> None:
        super().__init__()
        self.w_q = nn.Linear(dim, attn_size)
        self.w_k = nn.Linear(dim, attn_size)
        self.w_v = nn.Linear(dim, attn_size)
        layers: list[nn.Module] = []
        width = attn_size
        for _ in range(n_mlp):
            layers += [nn.Linear(width, mlp_size), nn.GELU()]
            width = mlp_size
        self.mlp = nn.Sequential(*layers)
        self.mlp_out = nn.Linear(width, attn_size)
        self.dropout = nn.Dropout(dropout)
        self.scale = attn_size**-0.5

    def forward(self, q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        qp, kp, vp = self.w_q(q), self.w_k(c), self.w_v(c)
        gate = torch.softmax(qp * kp * self.scale, dim=-1)
        gated = self.dropout(gate) * vp
        out: torch.Tensor = self.mlp_out(self.mlp(gated)) + gated
        return out


class TreeHopModel(nn.Module):
    """``q_next = normalise(q - c + W_out · UpdateGate(q, c))`` for batches of (query, passage) pairs."""

    def __init__(self, config: TreeHopConfig) -> None:
        super().__init__()
        self.config = config
        self.heads = nn.ModuleList(
            _GateHead(config.dim, config.attn_size, config.mlp_size, config.n_mlp, config.dropout)
            for _ in range(config.n_head)
        )
        self.out = nn.Linear(config.attn_size * config.n_head, config.dim, bias=False)
        nn.init.zeros_(self.out.weight)
        self.mix = nn.Parameter(torch.tensor([0.0, 1.0]))

    def update_gate(self, q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        heads = self.out(torch.cat([head(q, c) for head in self.heads], dim=-1))
        return heads + self.mix[0] * q + self.mix[1] * c

    def forward(self, q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Next query embeddings (unit length) for query and passage embeddings of shape ``(n, dim)``."""
        return F.normalize(q - c + self.update_gate(q, c), dim=-1)

    @torch.inference_mode()
    def next_queries(self, q: NDArray[np.float32], c: NDArray[np.float32]) -> NDArray[np.float32]:
        """Inference on numpy arrays: ``q`` of shape ``(n, dim)`` or ``(dim,)`` broadcast over ``c`` ``(n, dim)``.

        Runs on one thread: the matrices are tiny, and torch's thread pool woken between ONNX Runtime's query
        embeddings made about one call in ten take 60-120 ms instead of 6 (measured on 2 cores).
        """
        cq = torch.as_tensor(c, dtype=torch.float32)
        qq = torch.as_tensor(q, dtype=torch.float32)
        if qq.dim() == 1:
            qq = qq.expand_as(cq)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                result: NDArray[np.float32] = self(qq, cq).numpy()
        finally:
            torch.set_num_threads(threads)
        return result

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save(self, folder: Path | str, *, card: str = "", metrics: dict[str, Any] | None = None) -> Path:
        """Write weights (safetensors), config, metrics and a model card into ``folder``."""
        from safetensors.torch import save_file

        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(target / WEIGHTS_FILE))
        (target / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n", encoding="utf-8")
        if metrics is not None:
            (target / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        if card:
            (target / CARD_FILE).write_text(card, encoding="utf-8")
        return target

    @classmethod
    def load(cls, folder: Path | str) -> TreeHopModel:
        """Load a saved model in eval mode.

        Raises:
            ConfigError: when the folder holds no TreeHop model.
        """
        from safetensors.torch import load_file

        source = Path(folder)
        if not (source / WEIGHTS_FILE).is_file() or not (source / CONFIG_FILE).is_file():
            raise ConfigError(
                f"No TreeHop model in {source} ({WEIGHTS_FILE} and {CONFIG_FILE} expected); train one with "
                "`hopmem finetune treehop` or unset HOPMEM_TREEHOP_MODEL to use the packaged one."
            )
        config = TreeHopConfig(**json.loads((source / CONFIG_FILE).read_text(encoding="utf-8")))
        model = cls(config)
        model.load_state_dict(load_file(str(source / WEIGHTS_FILE)))
        model.eval()
        return model


def packaged_model_dir() -> Path:
    """The folder of the TreeHop weights shipped in the package (trained by ``hopmem finetune treehop``)."""
    return Path(__file__).with_name("treehop_weights")


def measured_choice(metrics: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether the agent should use a trained TreeHop model, by what its card measured (``metrics.json``).

    The rule: the trained model is used only when its hop tree's recall on the card's test questions (training-pool
    questions that neither training nor early stopping saw) is above both the untrained model's (next query = the
    question) and direct retrieval's at the same number of chunks; otherwise the untrained model runs, i.e. the hop
    step adds the next passages of plain dense retrieval. A card from before test splits (no ``test_trained``) is
    judged on its validation figures, which early stopping chose and therefore flatter the trained model. A folder
    with no figures at all is used as given (someone named it; nothing measured says otherwise).

    Returns:
        ``(use_trained, reason)``; the reason quotes the figures.
    """
    if not metrics:
        return True, "the model's folder records no measurement; it is used as given"
    trained, untrained, where = metrics.get("test_trained"), metrics.get("test_untrained"), "test"
    if not trained or not untrained:
        trained, untrained, where = metrics.get("validation_best"), metrics.get("validation_untrained"), "validation"
    if not trained or not untrained:
        return True, "the model's card records no held-out figures; it is used as given"
    rival = max(float(untrained["recall"]), float(trained["direct_recall"]))
    figures = (
        f"{where} recall {float(trained['recall']):.4f} trained vs {float(untrained['recall']):.4f} untrained and "
        f"{float(trained['direct_recall']):.4f} direct at {int(trained['direct_k'])} chunks"
    )
    if float(trained["recall"]) > rival + 1e-9:
        return True, f"the trained model beat both: {figures}"
    return False, f"the trained model did not beat both: {figures}"


def read_metrics(folder: Path | str) -> dict[str, Any] | None:
    """The ``metrics.json`` of a model folder, or None when it has none (or it is unreadable)."""
    path = Path(folder) / METRICS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_selected_treehop(location: str | Path | None, *, embedder: str, dim: int) -> tuple[TreeHopModel, str]:
    """The model the agent's hop step runs: the trained one at ``location``, or its untrained twin, by
    :func:`measured_choice` on the folder's card.

    Returns:
        ``(model, note)``; the note says which was chosen and why (for logs, the trace and ``hopmem models``).

    Raises:
        ConfigError: as :func:`load_treehop`.
    """
    folder = Path(location).expanduser() if location else packaged_model_dir()
    model = load_treehop(folder, embedder=embedder, dim=dim)
    use_trained, reason = measured_choice(read_metrics(folder))
    if use_trained:
        return model, f"trained ({reason})"
    untrained = TreeHopModel(model.config)
    untrained.eval()
    return untrained, f"untrained ({reason})"


def load_treehop(location: str | Path | None, *, embedder: str, dim: int) -> TreeHopModel:
    """The TreeHop model at ``location`` (a folder; empty or None: the packaged one), checked against the embedder.

    Raises:
        ConfigError: when the model is missing or was trained for other embeddings.
    """
    folder = Path(location).expanduser() if location else packaged_model_dir()
    model = TreeHopModel.load(folder)
    trained_for = model.config.embedder
    if model.config.dim != dim or (trained_for and trained_for != embedder):
        raise ConfigError(
            f"The TreeHop model in {folder} was trained on {trained_for or 'unknown'} embeddings (dim "
            f"{model.config.dim}), not {embedder} (dim {dim}); "
            "train one for this embedder with `hopmem finetune treehop`."
        )
    return model
