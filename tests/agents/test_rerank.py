"""The reranker slot: one contract that every backend passes, the loader, and the missing-model error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hopmem.agents.rerank import PassThroughReranker, Reranker, load_reranker, passage_text
from hopmem.agents.rerank.cross_encoder import CrossEncoderReranker, init_cross_encoder
from hopmem.agents.rerank.model_paths import (
    default_cross_encoder_dir,
    default_llm_reranker_dir,
    find_adapter,
    shipped_adapter_dir,
)
from hopmem.memory.errors import ConfigError
from hopmem.memory.model_paths import resolve_embedder_path

QUERY = "how do honeybees tell each other where flowers are"
DOCS = [
    "Shares rose on Tuesday after the quarterly report.",
    "Honeybees perform a waggle dance that encodes the direction and distance of flowers.",
    "The recipe needs two eggs and a cup of flour.",
    "A forager bee returning to the hive signals the location of nectar with its dance.",
    "Rain is expected over the weekend.",
]


@pytest.fixture(scope="module")
def cross_encoder() -> CrossEncoderReranker:
    """A real cross-encoder: the packaged MiniLM with a fresh seeded head (the training start)."""
    base = resolve_embedder_path("all-MiniLM-L6-v2")
    return CrossEncoderReranker(base, model=init_cross_encoder(base, seed=0, max_length=64), batch_size=2)


@pytest.fixture(params=["none", "cross-encoder"])
def reranker(request: pytest.FixtureRequest, cross_encoder: CrossEncoderReranker) -> Reranker:
    return PassThroughReranker() if request.param == "none" else cross_encoder


def test_contract(reranker: Reranker) -> None:
    assert isinstance(reranker, Reranker)
    scores = reranker.score(QUERY, DOCS)
    assert len(scores) == len(DOCS) and all(isinstance(s, float) for s in scores)
    ranked = reranker.rank(QUERY, DOCS)
    assert sorted(i for i, _ in ranked) == list(range(len(DOCS)))  # a permutation of the indices
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)  # best first
    assert all(abs(scores[i] - s) < 1e-6 for i, s in ranked)  # rank reports the scores score() gives
    assert reranker.rank(QUERY, DOCS, top_k=2) == ranked[:2]
    assert reranker.rank(QUERY, DOCS, top_k=0) == []
    assert reranker.score(QUERY, []) == [] and reranker.rank(QUERY, []) == []
    assert reranker.score(QUERY, DOCS) == pytest.approx(scores)  # deterministic


def test_pass_through_keeps_the_given_order() -> None:
    reranker = PassThroughReranker()
    assert reranker.name == "none"
    assert [i for i, _ in reranker.rank(QUERY, DOCS)] == [0, 1, 2, 3, 4]
    assert [i for i, _ in reranker.rank(QUERY, list(reversed(DOCS)))] == [0, 1, 2, 3, 4]


def test_cross_encoder_scores_each_pair_independently_of_batching_and_position(
    cross_encoder: CrossEncoderReranker,
) -> None:
    assert cross_encoder.name == "cross-encoder"
    scores = cross_encoder.score(QUERY, DOCS)
    reversed_scores = cross_encoder.score(QUERY, list(reversed(DOCS)))
    assert list(reversed(reversed_scores)) == pytest.approx(scores, abs=1e-4)  # a passage's score ignores its place
    alone = [cross_encoder.score(QUERY, [d])[0] for d in DOCS]
    assert alone == pytest.approx(scores, abs=1e-4)  # and its batch (length-sorted batches pad differently)
    assert len(set(round(s, 5) for s in scores)) > 1  # a real model, not a constant


def test_saved_cross_encoder_loads_through_the_loader(cross_encoder: CrossEncoderReranker, tmp_path: Path) -> None:
    folder = tmp_path / "ce"
    cross_encoder.model.save(str(folder))
    loaded = load_reranker("cross-encoder", folder, cache_dir=tmp_path / "cache", batch_size=4)
    assert isinstance(loaded, CrossEncoderReranker)
    assert loaded.max_length == 64  # the pair length travels with the model
    assert loaded.score(QUERY, DOCS) == pytest.approx(cross_encoder.score(QUERY, DOCS), abs=1e-4)


def test_loader_names_and_missing_model_error(tmp_path: Path) -> None:
    assert isinstance(load_reranker("none", None, cache_dir=tmp_path), PassThroughReranker)
    assert default_cross_encoder_dir(tmp_path) == tmp_path / "models" / "cross-encoder-minilm-l6"
    (tmp_path / "no-model").mkdir()
    with pytest.raises(ConfigError) as missing:
        load_reranker("cross-encoder", tmp_path / "no-model", cache_dir=tmp_path)
    message = str(missing.value)
    assert str(tmp_path / "no-model") in message
    assert "hopmem finetune reranker --recipe cross-encoder" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    with pytest.raises(ConfigError, match="Unknown reranker"):
        load_reranker("monot5", None, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"No rank-r1 adapter is installed; train one with `hopmem finetune reranker"):
        load_reranker("rank-r1", None, cache_dir=tmp_path)  # none in the cache, none shipped
    assert find_adapter("prorank", None, tmp_path) == shipped_adapter_dir("prorank")  # none in the cache: shipped
    (default_llm_reranker_dir("prorank", tmp_path)).mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (default_llm_reranker_dir("prorank", tmp_path) / name).write_text("{}")
    assert find_adapter("prorank", None, tmp_path) == default_llm_reranker_dir("prorank", tmp_path)  # yours first
    with pytest.raises(ConfigError, match="No LoRA adapter in"):
        load_reranker("rank-r1", tmp_path, cache_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="No cross-encoder"):
        load_reranker("cross-encoder", tmp_path / "empty", cache_dir=tmp_path)


def test_passage_text_drops_a_repeated_title() -> None:
    assert passage_text("wing tests", "wing tests . results of ...") == "wing tests . results of ..."
    assert passage_text("Kiss and Tell", "A 1945 film.") == "Kiss and Tell: A 1945 film."
    assert passage_text(None, " body ") == "body"


def test_importing_the_rerank_module_stays_light() -> None:
    code = "import sys, hopmem.agents.rerank; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    assert not loaded & {"torch", "sentence_transformers", "transformers"}


def test_blend_mixes_scores_with_the_given_order() -> None:
    from hopmem.agents.rerank import rank_by_scores
    from hopmem.agents.rerank.cross_encoder import blend_with_order

    scores = [0.0, 1.0, 2.0, 3.0, 9.0]  # the model likes the last candidate best
    assert blend_with_order(scores, 0.0) == scores
    alone = [i for i, _ in rank_by_scores(blend_with_order(scores, 0.0))]
    order = [i for i, _ in rank_by_scores(blend_with_order(scores, 1.0))]
    assert alone == [4, 3, 2, 1, 0] and order == [0, 1, 2, 3, 4]
    mixed = [i for i, _ in rank_by_scores(blend_with_order(scores, 0.5))]
    assert mixed[0] == 4 and mixed != alone  # a strong score still wins; the order pulls the rest back
    assert blend_with_order([5.0], 0.7) == [0.0] and blend_with_order([], 0.5) == []


def test_cross_encoder_applies_the_blend_saved_beside_it(tmp_path: Path) -> None:
    import json

    from hopmem.agents.rerank.cross_encoder import BLEND_FILE

    base = resolve_embedder_path("all-MiniLM-L6-v2")
    folder = tmp_path / "ce"
    init_cross_encoder(base, seed=0, max_length=64).save(str(folder))
    assert CrossEncoderReranker(folder).blend == 0.0  # nothing saved: the model alone
    (folder / BLEND_FILE).write_text(json.dumps({"blend": 1.0}))
    reranker = load_reranker("cross-encoder", folder, cache_dir=tmp_path)
    assert isinstance(reranker, CrossEncoderReranker) and reranker.blend == 1.0
    assert [i for i, _ in reranker.rank(QUERY, DOCS)] == list(range(len(DOCS)))  # weight 1: the given order
    assert CrossEncoderReranker(folder, blend=0.0).blend == 0.0  # an explicit weight wins
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        CrossEncoderReranker(folder, blend=1.5)
    (folder / BLEND_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="train the cross-encoder again"):
        CrossEncoderReranker(folder)


def test_with_blend_shares_the_model_and_changes_only_the_weight(cross_encoder: CrossEncoderReranker) -> None:
    twin = cross_encoder.with_blend(1.0)
    assert twin.model is cross_encoder.model and twin.blend == 1.0 and cross_encoder.blend == 0.0
    assert [i for i, _ in twin.rank(QUERY, DOCS)] == list(range(len(DOCS)))  # weight 1: the given order
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        cross_encoder.with_blend(-0.1)
