"""A real (tiny) cross-encoder training run: the model changes, relevant passages rise, the folder is complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopmem.agents.rerank import load_reranker
from hopmem.agents.rerank.cross_encoder import CrossEncoderReranker, init_cross_encoder
from hopmem.agents.rerank.cross_encoder_pack import read_pack_record
from hopmem.finetune.cross_encoder import CrossEncoderTrainConfig, train_cross_encoder
from hopmem.finetune.export import export_cross_encoder
from hopmem.finetune.reranker_data import PairSampling, build_training_data
from hopmem.memory.model_paths import resolve_embedder_path
from tests.finetune.test_reranker_data import make_tiny_hotpot


@pytest.fixture(scope="module")
def tiny(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_hotpot(shared_data / "hotpotqa", tmp_path_factory.mktemp("tiny-hotpot"))


def _mean_positive_rank(reranker: CrossEncoderReranker, groups: dict[str, list[tuple[str, float]]]) -> float:
    ranks = []
    for query, pairs in groups.items():
        order = [i for i, _ in reranker.rank(query, [t for t, _ in pairs])]
        ranks += [order.index(i) for i, (_, label) in enumerate(pairs) if label > 0]
    return sum(ranks) / len(ranks)


@pytest.mark.slow  # about 30 s alone on 2 cores, over a minute when they are shared
def test_training_makes_relevant_passages_rise(tiny: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    config = CrossEncoderTrainConfig(
        datasets=(str(tiny),),
        output=str(tmp_path / "model"),
        max_length=64,
        max_positives=2,
        n_negatives=3,
        dev_queries=3,
        epochs=4,
        batch_size=10,
        lr=2e-4,
        checkpoint_every=3,
        keep_checkpoints=True,
    )
    common = {"cache_dir": tmp_path / "cache", "chunk_size": 256, "chunk_overlap": 32, "progress": False}
    data = build_training_data(PairSampling.of(config), embedder, **common)
    train_ids = {p.query_id for p in data.train if not p.query_id.startswith("title:")}
    assert train_ids and not train_ids & {p.query_id for p in data.dev}  # no dev query is trained on
    groups: dict[str, list[tuple[str, float]]] = {}
    for pair in data.train:
        if pair.kind in ("positive", "judged-negative", "hard-negative"):
            groups.setdefault(pair.query, []).append((pair.text, pair.label))

    report = train_cross_encoder(config, embedder, **common)
    folder = tmp_path / "model"
    base = resolve_embedder_path("all-MiniLM-L6-v2")
    untrained = CrossEncoderReranker(base, model=init_cross_encoder(base, seed=0, max_length=64))
    loaded = load_reranker("cross-encoder", folder, cache_dir=tmp_path)
    assert isinstance(loaded, CrossEncoderReranker) and loaded.max_length == 64
    assert loaded.blend == report["blend"]["weight"]  # the weight chosen on held-out queries travels with the model
    trained = CrossEncoderReranker(folder, blend=0.0)  # the model's own scores (groups list positives first)

    # The relevant passages of the training questions move up among their hard negatives.
    before, after = _mean_positive_rank(untrained, groups), _mean_positive_rank(trained, groups)
    assert after < before, (before, after)
    assert report["loss_last"] < report["loss_first"]
    assert report["steps"] == -(-4 * len(data.train) // 10)  # the epochs are shuffled into one sequence, then batched
    # One real example: a supporting paragraph rises against a distractor of the same question.
    query, pairs = next(iter(groups.items()))
    texts = [t for t, _ in pairs]
    best_positive = min(
        [i for i, (_, label) in enumerate(pairs) if label > 0],
        key=lambda i: [j for j, _ in trained.rank(query, texts)].index(i),
    )
    assert [j for j, _ in trained.rank(query, texts)].index(best_positive) <= [
        j for j, _ in untrained.rank(query, texts)
    ].index(best_positive)

    # The folder: model, card, metrics, split record; checkpoints kept when asked.
    card = (folder / "README.md").read_text()
    assert "binary cross-entropy" in card and str(tiny.name) in card and "Command:" in card
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["train_pairs"] == len(data.train) and metrics["dev_after"]["pairs"] == len(data.dev)
    record = json.loads((folder / "data.json").read_text())["datasets"][0]
    assert set(record["train_ids"]) == train_ids and not set(record["train_ids"]) & set(record["dev_ids"])
    assert (folder / "checkpoints" / "last.pt").is_file()


def test_training_resumes_from_its_checkpoint(tiny: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    common = {"cache_dir": tmp_path / "cache", "chunk_size": 256, "chunk_overlap": 32, "progress": False}
    base = {
        "datasets": (str(tiny),),
        "max_length": 32,
        "max_train_pairs": 12,
        "dev_queries": 1,
        "batch_size": 4,
        "title_queries": 0,
        "holdout_fraction": 0.0,
    }
    first = train_cross_encoder(
        CrossEncoderTrainConfig(output=str(tmp_path / "a"), checkpoint_every=2, keep_checkpoints=True, **base),
        embedder,
        **common,
    )
    resumed = train_cross_encoder(
        CrossEncoderTrainConfig(output=str(tmp_path / "a"), checkpoint_every=2, resume=True, **base),
        embedder,
        **common,
    )
    assert first["steps"] == 3 and resumed["resumed_from_step"] == 2

    # The recipe's default keeps the word embeddings frozen, so the trained model packs into what training changed.
    assert resumed["trained_parameters"] < resumed["parameters"] / 2 + 1e6
    packed = export_cross_encoder(tmp_path / "a", tmp_path / "packed")
    assert list(read_pack_record(packed)["omitted"]) == ["bert.embeddings.word_embeddings.weight"]
    query, docs = (
        "wing flutter at high speed",
        ["flutter of a wing at supersonic speed", "boundary layer heat transfer"],
    )
    assert CrossEncoderReranker(packed).score(query, docs) == pytest.approx(
        CrossEncoderReranker(tmp_path / "a").score(query, docs), abs=5e-3
    )
    assert first["loss_history"] and all(0 < v < 5 for v in first["loss_history"])
    assert resumed["loss_history"][:2] == first["loss_history"][:2]  # the first two steps came from the checkpoint
    assert not (tmp_path / "a" / "checkpoints").exists()  # removed after a finished run unless kept
    assert first["blend"]["weight"] == 0.0 and "nothing held out" in first["blend"]["chosen_on"]


class _FixedScores:
    """Stands in for the cross-encoder's network (choose_blend only needs scores): passage "d0" scores 1, others 0."""

    blend = 0.3

    def score(self, query: str, docs: list[str]) -> list[float]:
        return [1.0 if d == "d0" else 0.0 for d in docs]


def test_the_blend_weight_is_chosen_on_held_out_queries() -> None:
    from hopmem.finetune.blend import choose_blend
    from hopmem.finetune.reranker_data import HoldoutQuery

    docs = [f"d{i}" for i in range(6)]
    # The scores favour d0; the candidates' order ranks d0 last. Which one is right decides the weight.
    model_right = [HoldoutQuery("q", "query", docs[::-1], docs[::-1], {"d0": 1})]
    order_right = [HoldoutQuery("q", "query", docs[::-1], docs[::-1], {"d5": 1})]
    grid = (0.0, 0.5, 1.0)
    chosen = choose_blend(_FixedScores(), model_right, grid)  # type: ignore[arg-type]
    assert chosen["weight"] == 0.0 and chosen["ndcg@10"]["0"] == 1.0 > chosen["ndcg@10"]["1"]
    other = choose_blend(_FixedScores(), order_right, grid)  # type: ignore[arg-type]
    assert other["ndcg@10"] == {"0": other["ndcg@10"]["0"], "0.5": 1.0, "1": 1.0} and other["ndcg@10"]["0"] < 1.0
    assert other["weight"] == 0.5  # ties go to the smaller weight
    assert _FixedScores.blend == 0.3  # the reranker's own weight is restored
    assert choose_blend(_FixedScores(), [], grid)["weight"] == 0.0  # type: ignore[arg-type]
