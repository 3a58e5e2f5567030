"""The packed cross-encoder: what training changed, in float16, over the packaged MiniLM; and the shipped default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hopmem.agents.rerank import load_reranker
from hopmem.agents.rerank.cross_encoder import BLEND_FILE, CrossEncoderReranker, init_cross_encoder
from hopmem.agents.rerank.cross_encoder_pack import PACK_RECORD, PACK_WEIGHTS, is_packed_cross_encoder, read_pack_record
from hopmem.agents.rerank.model_paths import default_cross_encoder_dir, find_cross_encoder, shipped_cross_encoder_dir
from hopmem.finetune.export import export_cross_encoder, main
from hopmem.memory.errors import ConfigError, InputError
from hopmem.memory.model_paths import resolve_embedder_path

QUERY = "how do honeybees tell each other where flowers are"
DOCS = [
    "Rain is expected over the weekend.",
    "Honeybees dance to show the direction of flowers.",
    "The lighthouse keeper trimmed the wick every evening.",
    "Forager bees report the distance to a food source with a waggle dance.",
]


def _trained_folder(tmp_path: Path, *, freeze: bool = True) -> Path:
    """A cross-encoder saved as training saves it, whose non-embedding weights were changed (a stand-in for the
    optimiser's steps, so the test takes seconds): word embeddings kept unless ``freeze`` is False."""
    base = resolve_embedder_path("all-MiniLM-L6-v2")
    model = init_cross_encoder(base, seed=0, max_length=64)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.model.named_parameters():
            if freeze and "word_embeddings" in name:
                continue
            param.add_(torch.randn(param.shape, generator=generator) * 0.01)
    folder = tmp_path / "trained"
    model.save(str(folder))
    (folder / BLEND_FILE).write_text(json.dumps({"blend": 0.3, "chosen_on": "test"}))
    (folder / "metrics.json").write_text(json.dumps({"base_model": {"name": "all-MiniLM-L6-v2"}}))
    (folder / "data.json").write_text(json.dumps({"datasets": []}))
    (folder / "README.md").write_text("# card")
    return folder


def test_a_packed_copy_is_half_the_size_and_scores_like_the_trained_model(tmp_path: Path) -> None:
    src = _trained_folder(tmp_path)
    out = export_cross_encoder(src, tmp_path / "packed")
    record = read_pack_record(out)
    assert is_packed_cross_encoder(out) and record["base_model"] == "all-MiniLM-L6-v2"
    assert list(record["omitted"]) == ["bert.embeddings.word_embeddings.weight"]
    stored = load_file(str(out / PACK_WEIGHTS))
    assert "bert.embeddings.word_embeddings.weight" not in stored
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    size = (out / PACK_WEIGHTS).stat().st_size
    assert size < 25e6 and size < 0.3 * (src / "model.safetensors").stat().st_size

    original = CrossEncoderReranker(src, blend=0.0)
    packed = CrossEncoderReranker(out, blend=0.0)
    assert packed.max_length == 64 and CrossEncoderReranker(out).blend == 0.3  # length and blend travel
    assert packed.score(QUERY, DOCS) == pytest.approx(original.score(QUERY, DOCS), abs=2e-3)
    assert [i for i, _ in packed.rank(QUERY, DOCS)] == [i for i, _ in original.rank(QUERY, DOCS)]
    assert (out / "README.md").read_text().startswith("# card") and "packed" in (out / "README.md").read_text()
    assert (out / "data.json").is_file()  # the query splits travel, so evaluations skip the training queries


def test_a_packed_model_refuses_another_base(tmp_path: Path) -> None:
    out = export_cross_encoder(_trained_folder(tmp_path), tmp_path / "packed")
    record = json.loads((out / PACK_RECORD).read_text())
    record["packed"]["omitted"]["bert.embeddings.word_embeddings.weight"] = "0" * 64
    (out / PACK_RECORD).write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="trained on another all-MiniLM-L6-v2"):
        CrossEncoderReranker(out)


def test_a_model_trained_with_its_embeddings_cannot_be_packed(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="frozen word embeddings"):
        export_cross_encoder(_trained_folder(tmp_path, freeze=False), tmp_path / "packed")
    with pytest.raises(InputError, match="holds no trained cross-encoder"):
        export_cross_encoder(tmp_path, tmp_path / "packed")


def test_the_export_command_writes_the_cross_encoder_and_its_evaluations(tmp_path: Path) -> None:
    src = _trained_folder(tmp_path)
    report = {
        "dataset": "cranfield",
        "split": "dev",
        "n_queries": 2,
        "candidates": "hybrid",
        "depth": 30,
        "command": "hopmem eval rerank ...",
        "git_revision": "abc",
        "results": [
            {
                "candidates": "hybrid",
                "reranker": "cross-encoder",
                "metrics": {"ndcg@10": 0.5, "recall@10": 0.6, "mrr@10": 0.7},
                "latency_ms": {"p50": 10.0},
            }
        ],
    }
    (tmp_path / "eval.json").write_text(json.dumps(report))
    main(
        [
            str(src),
            "--recipe",
            "cross-encoder",
            "--dst",
            str(tmp_path / "out"),
            "--eval-report",
            str(tmp_path / "eval.json"),
        ]
    )
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| hybrid | cross-encoder | 0.5000 | 0.6000 | 0.7000 | 10 |" in card


def test_the_lookup_prefers_your_own_model_then_the_shipped_one(tmp_path: Path) -> None:
    shipped = shipped_cross_encoder_dir()
    assert is_packed_cross_encoder(shipped), "the default cross-encoder must ship in the package"
    assert find_cross_encoder(None, tmp_path) == shipped  # an empty cache: the shipped model
    own = default_cross_encoder_dir(tmp_path)
    init_cross_encoder(resolve_embedder_path("all-MiniLM-L6-v2"), seed=0, max_length=64).save(str(own))
    assert find_cross_encoder(None, tmp_path) == own  # yours first
    with pytest.raises(ConfigError, match="No cross-encoder in"):
        find_cross_encoder(tmp_path / "nothing", tmp_path)


def test_the_shipped_cross_encoder_ranks_the_relevant_passages_first(tmp_path: Path) -> None:
    reranker = load_reranker("cross-encoder", None, cache_dir=tmp_path)
    assert isinstance(reranker, CrossEncoderReranker) and reranker.folder == shipped_cross_encoder_dir()
    assert 0.0 <= reranker.blend <= 1.0
    reranker.blend = 0.0
    top_two = {i for i, _ in reranker.rank(QUERY, DOCS)[:2]}
    assert top_two == {1, 3}  # the two bee passages above rain and lighthouses
    total = sum(f.stat().st_size for f in shipped_cross_encoder_dir().iterdir())
    assert total < 25e6  # what the repository carries for this model
