"""Train a TreeHop next-query model for hopmem's embedder (``hopmem finetune treehop``).

Objective: for a chain ``(q, a -> b)``, the next query ``q_next = model(q, a)`` must rank ``b`` above hard negatives
mined from the corpus (the nearest passages to ``q``, to ``a`` and, re-mined every epoch, to the current ``q_next``;
the question's own supporting passages are never negatives) and above the other chains' targets in the batch
(InfoNCE with a temperature). Early stopping watches what the model is for: recall of the supporting passages by the
whole hop tree (``top_n`` per hop, ``hops`` layers) on validation questions that are not trained on.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from hopmem.agents.multihop import MatrixSearch, hop_tree
from hopmem.agents.treehop_model import TreeHopConfig, TreeHopModel
from hopmem.finetune.recipe import Recipe, TrainContext
from hopmem.finetune.treehop_data import (
    HopChains,
    HopQuestion,
    HopSplits,
    build_chains,
    mine_hard_negatives,
    split_questions,
)
from hopmem.memory.datasets.beir import folder_hash
from hopmem.memory.datasets.store_loader import CorpusVectors, corpus_vectors, open_indexed_corpus
from hopmem.memory.errors import InputError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)


@dataclass
class TreeHopTrainConfig:
    """Settings of one training run (all saved in the model card)."""

    dataset: str
    output: str
    train_splits: tuple[str, ...] = ("train", "dev")
    eval_split: str = "dev"
    holdout: int = 250
    val_fraction: float = 0.15
    seed: int = 0
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    temperature: float = 0.05
    n_hard: int = 32
    patience: int = 10
    top_n: int = 5
    hops: int = 2
    attn_size: int = 192
    mlp_size: int = 384
    n_mlp: int = 2
    n_head: int = 3
    dropout: float = 0.1
    extra: dict[str, Any] = field(default_factory=dict)


def tree_recall(
    model: TreeHopModel | None,
    questions: list[HopQuestion],
    query_vectors: NDArray[np.float32],
    vectors: CorpusVectors,
    *,
    top_n: int,
    hops: int,
) -> dict[str, float]:
    """Mean recall of supporting documents by the hop tree, its mean size, and direct retrieval at that size."""
    search = MatrixSearch(vectors.memory_ids, vectors.matrix)
    doc_of = {int(m): d for m, d in zip(vectors.memory_ids, vectors.doc_ids, strict=True)}
    recalls, sizes = [], []
    for question, qv in zip(questions, query_vectors, strict=True):
        result = hop_tree(model, qv, search.search, search.vectors, top_n=top_n, hops=hops)
        docs = {doc_of[i] for i in result.ids}
        recalls.append(len(docs & set(question.supporting)) / len(question.supporting))
        sizes.append(len(result.ids))
    k = max(1, round(float(np.mean(sizes))))
    direct = []
    for question, hits in zip(questions, search.search(query_vectors, k), strict=True):
        docs = {doc_of[i] for i, _ in hits}
        direct.append(len(docs & set(question.supporting)) / len(question.supporting))
    return {
        "recall": float(np.mean(recalls)),
        "avg_chunks": float(np.mean(sizes)),
        "direct_k": float(k),
        "direct_recall": float(np.mean(direct)),
    }


@dataclass
class TreeHopData:
    """What one TreeHop run trains and validates on: the question splits, the corpus vectors and the hop chains."""

    splits: HopSplits
    vectors: CorpusVectors
    train_q: NDArray[np.float32]
    val_q: NDArray[np.float32]
    chains: HopChains


def train_treehop(
    config: TreeHopTrainConfig,
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train, early-stop on validation tree recall, and save the best model with its card into ``config.output``.

    Returns:
        The training report (also saved as ``metrics.json`` beside the weights).
    """
    context = TrainContext(embedder, cache_dir, chunk_size, chunk_overlap, progress, command)
    return TreeHopRecipe(config, context).run()


class TreeHopRecipe(Recipe[TreeHopTrainConfig, TreeHopData]):
    """InfoNCE on hop chains with mined hard negatives, early stopping on the hop tree's validation recall."""

    name = "treehop"

    def __init__(self, config: TreeHopTrainConfig, context: TrainContext) -> None:
        super().__init__(config, context)
        self.model: TreeHopModel | None = None

    def load_data(self) -> TreeHopData:
        config, context = self.config, self.context
        torch.manual_seed(config.seed)
        root = Path(config.dataset)
        splits = split_questions(
            root,
            train_splits=config.train_splits,
            eval_split=config.eval_split,
            holdout=config.holdout,
            val_fraction=config.val_fraction,
            seed=config.seed,
        )
        store = open_indexed_corpus(
            root,
            context.embedder,
            cache_dir=context.cache_dir,
            chunk_size=context.chunk_size,
            chunk_overlap=context.chunk_overlap,
            progress=context.progress,
        )
        try:
            vectors = corpus_vectors(store)
        finally:
            store.close()
        if not len(vectors.memory_ids):
            raise InputError(f"The corpus of {root} produced no vectors; check corpus.jsonl.")
        train_q = context.embedder.embed([q.text for q in splits.train])
        val_q = context.embedder.embed([q.text for q in splits.validation])
        chains = build_chains(splits.train, vectors)
        if len(chains) == 0:
            raise InputError(f"No training chain could be built from {root}: supporting passages are missing.")
        return TreeHopData(splits, vectors, train_q, val_q, chains)

    def fit(self, data: TreeHopData) -> dict[str, Any]:
        from tqdm.auto import tqdm

        config = self.config
        splits, vectors, train_q, val_q, chains = data.splits, data.vectors, data.train_q, data.val_q, data.chains
        rng = np.random.default_rng(config.seed)
        matrix = torch.from_numpy(vectors.matrix.copy())  # a writable copy: the store hands out read-only arrays
        dim = int(vectors.matrix.shape[1])
        model = TreeHopModel(
            TreeHopConfig(
                dim=dim,
                attn_size=config.attn_size,
                mlp_size=config.mlp_size,
                n_mlp=config.n_mlp,
                n_head=config.n_head,
                dropout=config.dropout,
                embedder=self.context.embedder.name,
            )
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        exclude = [chains.gold_rows[i] for i in chains.query_index]
        static_neg = np.concatenate(
            [
                mine_hard_negatives(train_q[chains.query_index], vectors.matrix, exclude, config.n_hard),
                mine_hard_negatives(vectors.matrix[chains.first], vectors.matrix, exclude, config.n_hard),
            ],
            axis=1,
        )
        q_all = torch.from_numpy(np.ascontiguousarray(train_q[chains.query_index]))
        first = torch.from_numpy(chains.first)
        target = torch.from_numpy(chains.target)

        model.eval()
        untrained = tree_recall(model, splits.validation, val_q, vectors, top_n=config.top_n, hops=config.hops)
        history: list[dict[str, float]] = []
        best = {"epoch": 0, **untrained}
        best_state = copy.deepcopy(model.state_dict())
        bad_epochs = 0
        bar = tqdm(range(1, config.epochs + 1), desc="treehop epochs", unit="epoch", disable=not self.context.progress)
        for epoch in bar:
            with torch.no_grad():
                current = model(q_all, matrix[first]).numpy()
            dynamic = mine_hard_negatives(current, vectors.matrix, exclude, config.n_hard)
            pool = np.concatenate([static_neg, dynamic], axis=1)
            model.train()
            order = rng.permutation(len(chains))
            losses = []
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                picks = pool[batch[:, None], rng.integers(0, pool.shape[1], size=(len(batch), config.n_hard))]
                q_next = model(q_all[batch], matrix[first[batch]])
                positives = matrix[target[batch]]
                in_batch = q_next @ positives.T
                same = target[batch].unsqueeze(0) == target[batch].unsqueeze(1)
                in_batch = in_batch.masked_fill(same & ~torch.eye(len(batch), dtype=torch.bool), float("-inf"))
                hard = torch.einsum("bd,bnd->bn", q_next, matrix[torch.from_numpy(picks)])
                logits = torch.cat([in_batch, hard], dim=1) / config.temperature
                loss = F.cross_entropy(logits, torch.arange(len(batch)))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
            model.eval()
            scores = tree_recall(model, splits.validation, val_q, vectors, top_n=config.top_n, hops=config.hops)
            history.append({"epoch": epoch, "loss": float(np.mean(losses)), **scores})
            bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_recall=f"{scores['recall']:.4f}")
            if scores["recall"] > best["recall"] + 1e-9:
                best = {"epoch": epoch, **scores}
                best_state = copy.deepcopy(model.state_dict())
                bad_epochs = 0
            else:
                bad_epochs += 1
                if bad_epochs >= config.patience:
                    log.info("early stop at epoch %d (best %d)", epoch, best["epoch"])
                    break
        last_update_norm = float(model.out.weight.detach().norm())
        model.load_state_dict(best_state)
        model.eval()
        self.model = model
        return {
            "config": {**asdict(config), "train_splits": list(config.train_splits)},
            "embedder": self.context.embedder.name,
            "dim": dim,
            "parameters": model.n_parameters(),
            "chains": len(chains),
            "splits": splits.rule,
            "validation_untrained": untrained,
            "validation_best": best,
            "history": history,
            "last_update_norm": last_update_norm,
            "seconds": round(self.elapsed(), 1),
        }

    def write(self, report: dict[str, Any], data: TreeHopData) -> None:
        """The weights, config, ``metrics.json`` and card (:meth:`TreeHopModel.save`), and the splits in
        ``data.json``."""
        assert self.model is not None, "fit() runs before write()"
        self.model.save(self.out, card=model_card(report), metrics=report)
        (self.out / "data.json").write_text(json.dumps(data.splits.to_dict(), indent=1) + "\n", encoding="utf-8")

    def inputs(self, data: TreeHopData) -> dict[str, Any]:
        root = Path(self.config.dataset)
        return {"data": {root.name: folder_hash(root)}, "model": {"embedder": self.context.embedder.name}}


def model_card(report: dict[str, Any]) -> str:
    """The model card: data, split rule, settings and validation metrics."""
    cfg, rule, best, untrained = (
        report["config"],
        report["splits"],
        report["validation_best"],
        report["validation_untrained"],
    )
    return "\n".join(
        [
            "# hopmem TreeHop model",
            "",
            f"Next-query model for `{report['embedder']}` embeddings (dim {report['dim']}, "
            f"{report['parameters']:,} parameters), trained by `hopmem finetune treehop`.",
            "",
            "## Data",
            f"- data set: `{rule['dataset']}` (BEIR layout; questions with two or more supporting passages)",
            f"- held out for evaluation, never trained on: {rule['holdout']}",
            f"- validation (early stopping): {rule['counts']['validation']} questions drawn with seed {rule['seed']}",
            f"- training: {rule['counts']['train']} questions of splits {', '.join(rule['train_splits'])}, "
            f"{report['chains']} hop chains",
            "- the question ids of each set are in `data.json`; evaluation skips every trained or validation question",
            "",
            "## Settings",
            f"- loss: InfoNCE, temperature {cfg['temperature']}, {cfg['n_hard']} hard negatives per chain mined from "
            "the corpus (neighbours of the question, of the first passage and of the current next query) plus "
            "in-batch targets",
            f"- AdamW lr {cfg['lr']}, weight decay {cfg['weight_decay']}, batch {cfg['batch_size']}, "
            f"at most {cfg['epochs']} epochs, patience {cfg['patience']}, seed {cfg['seed']}",
            f"- shape: {cfg['n_head']} heads, attention {cfg['attn_size']}, MLP {cfg['mlp_size']} x {cfg['n_mlp']}, "
            f"dropout {cfg['dropout']}",
            "",
            f"## Validation (hop tree: top_n {cfg['top_n']}, {cfg['hops']} hops)",
            "| model | recall | avg chunks | direct retrieval at that many chunks |",
            "|---|---|---|---|",
            f"| untrained (next query = question) | {untrained['recall']:.4f} | {untrained['avg_chunks']:.2f} | "
            f"{untrained['direct_recall']:.4f} (k={int(untrained['direct_k'])}) |",
            f"| trained (epoch {best['epoch']}) | {best['recall']:.4f} | {best['avg_chunks']:.2f} | "
            f"{best['direct_recall']:.4f} (k={int(best['direct_k'])}) |",
            "",
            f"Training took {report['seconds']} s on {report['machine']['platform']}.",
            f"Command: `{report['command'] or 'hopmem finetune treehop'}`",
            "",
        ]
    )
