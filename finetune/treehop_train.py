"""Train a TreeHop next-query model for hopmem's embedder (``hopmem finetune treehop``).

Objective: for a chain ``(q, a -> b)``, the next query ``q_next = model(q, a)`` must rank ``b`` above hard negatives
and above the other chains' targets in the batch (InfoNCE with a temperature). The negatives of a chain are the
question's own context paragraphs (``n_context``, always in the loss: HotpotQA's distractors, same topic, not
supporting) and ``n_hard`` drawn each batch from a pool: the nearest passages to ``q`` and to ``a``, the question's
hybrid-search candidates (bm25 + dense, fused, ``n_hybrid``) and, re-mined every epoch, the nearest passages to the
current ``q_next``. The question's own supporting passages are never negatives. Several BEIR folders train together;
their corpora are searched as one (see :mod:`hopmem.finetune.treehop_data`). Early stopping watches what the model is
for: recall of the supporting passages by the whole hop tree (``top_n`` per hop, ``hops`` layers) on validation
questions that are not trained on. A separate test split of the training questions, untouched by training and early
stopping, measures trained against untrained and direct retrieval at equal chunks; the agent's rule reads it
(:func:`hopmem.agents.treehop_model.measured_choice`).
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
from hopmem.agents.treehop_model import TreeHopConfig, TreeHopModel, measured_choice
from hopmem.finetune.recipe import Recipe, TrainContext
from hopmem.finetune.treehop_data import (
    HopChains,
    HopQuestion,
    HopSplits,
    build_chains,
    folder_names,
    listed_negatives,
    merge_vectors,
    mine_hard_negatives,
    split_questions,
)
from hopmem.memory.datasets.beir import folder_hash
from hopmem.memory.datasets.store_loader import BEIR_TENANT, CorpusVectors, corpus_vectors, open_indexed_corpus
from hopmem.memory.errors import InputError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)


@dataclass
class TreeHopTrainConfig:
    """Settings of one training run (all saved in the model card)."""

    datasets: tuple[str, ...]
    output: str
    train_splits: tuple[str, ...] = ("train", "dev")
    eval_split: str = "dev"
    holdout: int = 250
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    temperature: float = 0.05
    n_hard: int = 32
    n_context: int = 8
    n_hybrid: int = 16
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
    """What one TreeHop run trains and validates on: the question splits, the corpus vectors, the hop chains and
    each training question's hybrid-search candidates (merged-corpus document ids, best first)."""

    splits: HopSplits
    vectors: CorpusVectors
    train_q: NDArray[np.float32]
    val_q: NDArray[np.float32]
    chains: HopChains
    test_q: NDArray[np.float32] | None = None
    hybrid: list[list[str]] = field(default_factory=list)


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
        roots = [Path(d) for d in config.datasets]
        if not roots:
            raise InputError("The treehop recipe needs at least one BEIR folder (--dataset).")
        splits = split_questions(
            roots,
            train_splits=config.train_splits,
            eval_split=config.eval_split,
            holdout=config.holdout,
            val_fraction=config.val_fraction,
            test_fraction=config.test_fraction,
            seed=config.seed,
        )
        names = folder_names(roots)
        parts = []
        hybrid: dict[str, list[str]] = {}
        for root, name in zip(roots, names, strict=True):
            store = open_indexed_corpus(
                root,
                context.embedder,
                cache_dir=context.cache_dir,
                chunk_size=context.chunk_size,
                chunk_overlap=context.chunk_overlap,
                progress=context.progress,
            )
            try:
                parts.append(corpus_vectors(store))
                if config.n_hybrid:
                    mine = [q for q in splits.train if q.dataset == name]
                    hybrid.update(_hybrid_candidates(store, context.embedder, mine, config.n_hybrid, len(roots) > 1))
            finally:
                store.close()
            if not len(parts[-1].memory_ids):
                raise InputError(f"The corpus of {root} produced no vectors; check corpus.jsonl.")
        vectors = merge_vectors(parts, names)
        train_q = context.embedder.embed([q.text for q in splits.train])
        val_q = context.embedder.embed([q.text for q in splits.validation])
        test_q = context.embedder.embed([q.text for q in splits.test]) if splits.test else None
        chains = build_chains(splits.train, vectors)
        if len(chains) == 0:
            raise InputError(
                f"No training chain could be built from {', '.join(names)}: supporting passages are missing."
            )
        return TreeHopData(
            splits, vectors, train_q, val_q, chains, test_q, [hybrid.get(q.id, []) for q in splits.train]
        )

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
        near_q = mine_hard_negatives(train_q, vectors.matrix, chains.gold_rows, config.n_hard)
        static = [
            near_q[chains.query_index],
            mine_hard_negatives(vectors.matrix[chains.first], vectors.matrix, exclude, config.n_hard),
        ]
        if config.n_hybrid:
            static.append(
                listed_negatives(data.hybrid, vectors, chains.gold_rows, config.n_hybrid, near_q)[chains.query_index]
            )
        static_neg = np.concatenate(static, axis=1)
        context_neg = (
            torch.from_numpy(
                listed_negatives(
                    [q.context for q in splits.train], vectors, chains.gold_rows, config.n_context, near_q
                )[chains.query_index]
            )
            if config.n_context
            else None
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
                negatives = torch.from_numpy(picks)
                if context_neg is not None:
                    negatives = torch.cat([negatives, context_neg[torch.from_numpy(batch)]], dim=1)
                hard = torch.einsum("bd,bnd->bn", q_next, matrix[negatives])
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
        measured: dict[str, Any] = {}
        if splits.test and data.test_q is not None:
            fresh = TreeHopModel(model.config).eval()
            test = {"questions": len(splits.test)}
            measured["test_untrained"] = {
                **test,
                **tree_recall(fresh, splits.test, data.test_q, vectors, top_n=config.top_n, hops=config.hops),
            }
            measured["test_trained"] = {
                **test,
                **tree_recall(model, splits.test, data.test_q, vectors, top_n=config.top_n, hops=config.hops),
            }
        use_trained, reason = measured_choice(measured or None)
        measured["choice"] = {"use": "trained" if use_trained else "untrained", "reason": reason}
        return {
            "config": {**asdict(config), "datasets": list(config.datasets), "train_splits": list(config.train_splits)},
            "embedder": self.context.embedder.name,
            "dim": dim,
            "parameters": model.n_parameters(),
            "chains": len(chains),
            "splits": splits.rule,
            "validation_untrained": untrained,
            "validation_best": best,
            **measured,
            "negatives": {
                "context": config.n_context,
                "hybrid": config.n_hybrid,
                "context_source": splits.rule.get("context_source", {}),
                "train_questions_with_context": sum(bool(q.context) for q in splits.train),
            },
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
        roots = [Path(d) for d in self.config.datasets]
        hashes = {name: folder_hash(root) for root, name in zip(roots, folder_names(roots), strict=True)}
        return {"data": hashes, "model": {"embedder": self.context.embedder.name}}


def _hybrid_candidates(
    store: Any, embedder: Embedder, questions: list[HopQuestion], depth: int, namespaced: bool
) -> dict[str, list[str]]:
    """Each question's top ``depth`` documents by the memory's hybrid search (bm25 + dense, fused), best first, as
    merged-corpus ids (the question's own folder only: its store is the one searched)."""
    from hopmem.finetune.treehop_data import doc_key
    from hopmem.memory.hybrid import HybridSearcher

    searcher = HybridSearcher(store, embedder, depth=max(depth * 2, 30))
    out: dict[str, list[str]] = {}
    for question in questions:
        hits = searcher.search(BEIR_TENANT, question.text, k=depth * 3, mode="hybrid")
        docs = dict.fromkeys(h.record.external_id for h in hits if h.record.external_id)
        out[question.id] = [doc_key(question.dataset, d, namespaced=namespaced) for d in docs][: depth + 2]
    return out


def model_card(report: dict[str, Any]) -> str:
    """The model card: data, split rule, settings and validation metrics."""
    cfg, rule, best, untrained = (
        report["config"],
        report["splits"],
        report["validation_best"],
        report["validation_untrained"],
    )
    counts = rule["counts"]
    per = rule.get("per_dataset")
    source = "; ".join(f"{k}: {v}" for k, v in rule.get("context_source", {}).items()) or "none"
    negatives = report.get("negatives", {})
    measured = []
    if "test_trained" in report:
        test_u, test_t, choice = report["test_untrained"], report["test_trained"], report["choice"]
        measured = [
            "",
            f"## Test: the agent's rule ({test_t['questions']} questions, never trained or early-stopped on)",
            "| model | recall | avg chunks | direct retrieval at that many chunks |",
            "|---|---|---|---|",
            f"| untrained (next query = question) | {test_u['recall']:.4f} | {test_u['avg_chunks']:.2f} | "
            f"{test_u['direct_recall']:.4f} (k={int(test_u['direct_k'])}) |",
            f"| trained | {test_t['recall']:.4f} | {test_t['avg_chunks']:.2f} | "
            f"{test_t['direct_recall']:.4f} (k={int(test_t['direct_k'])}) |",
            "",
            f"The agent uses the **{choice['use']}** model: {choice['reason']} "
            "(rule: `hopmem.agents.treehop_model.measured_choice`).",
        ]
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
            f"- validation (early stopping): {counts['validation']} questions drawn with seed {rule['seed']}",
            *(
                [f"- test (the agent's rule): {counts['test']} questions drawn with the same shuffle"]
                if "test" in counts
                else []
            ),
            f"- training: {counts['train']} questions of splits {', '.join(rule['train_splits'])}"
            + (f" ({', '.join(f'{k}: {v}' for k, v in per.items())})" if per else "")
            + f", {report['chains']} hop chains",
            "- the question ids of each set are in `data.json`; evaluation skips every trained, validation or test "
            "question",
            "",
            "## Settings",
            f"- loss: InfoNCE, temperature {cfg['temperature']}, in-batch targets plus, per chain, the question's own "
            f"{negatives.get('context', 0)} context paragraphs (source: {source}; "
            f"{negatives.get('train_questions_with_context', 0)} training questions have some) and {cfg['n_hard']} "
            "drawn from neighbours of the question, of the first passage, of the current next query and "
            f"the question's top {negatives.get('hybrid', 0)} hybrid-search candidates",
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
            *measured,
            "",
            f"Training took {report['seconds']} s on {report['machine']['platform']}.",
            f"Command: `{report['command'] or 'hopmem finetune treehop'}`",
            "",
        ]
    )
