"""The blend of an LLM reranker's scores with the candidates' order: the pointwise reranker applies the weight its
adapter records, and an existing adapter's weight is chosen on training queries it never saw and saved with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("peft", reason="the finetune extra is not installed")

from hopmem.agents.llm.transformers_llm import TransformersLLM
from hopmem.agents.rerank.cross_encoder import blend_with_order
from hopmem.agents.rerank.pointwise import PointwiseLLMReranker
from hopmem.finetune.blend import choose_adapter_blend, choose_blend, describe_blend, replace_section, untrained_holdout
from hopmem.memory.errors import ConfigError
from tests.conftest import save_random_adapter
from tests.finetune.test_reranker_data import make_tiny_hotpot

DOCS = ["The Seine flows through Paris.", "Bread is baked in an oven.", "Paris lies on a river."]
QUERY = "Which river flows through Paris?"


@pytest.fixture(scope="module")
def adapter(tiny_causal_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = TransformersLLM(str(tiny_causal_lm)).model
    folder = tmp_path_factory.mktemp("blend-adapter")
    return save_random_adapter(model, folder, {"recipe": "prorank", "base_model": str(tiny_causal_lm)})


def test_the_pointwise_reranker_applies_the_recorded_blend(adapter: Path, tmp_path: Path) -> None:
    alone = PointwiseLLMReranker(adapter=adapter)
    assert alone.blend == 0.0  # no weight recorded: the model alone
    raw = alone.score(QUERY, DOCS)
    assert raw == alone.model_scores(QUERY, DOCS)
    record = json.loads((adapter / "hopmem_reranker.json").read_text())
    (adapter / "hopmem_reranker.json").write_text(json.dumps({**record, "blend": 0.4}))
    try:
        blended = PointwiseLLMReranker(adapter=adapter)
        assert blended.blend == 0.4
        assert blended.score(QUERY, DOCS) == pytest.approx(blend_with_order(raw, 0.4), abs=1e-4)
        assert PointwiseLLMReranker(adapter=adapter, blend=0.0).score(QUERY, DOCS) == pytest.approx(raw, abs=1e-4)
        order = PointwiseLLMReranker(adapter=adapter, blend=1.0).score(QUERY, DOCS)
        assert order == sorted(order, reverse=True)  # the given order alone
    finally:
        (adapter / "hopmem_reranker.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="blend weight"):
        PointwiseLLMReranker(adapter=adapter, blend=1.5)


def test_an_existing_adapters_blend_is_chosen_on_queries_it_never_saw(
    adapter: Path, shared_data: Path, tmp_path: Path, embedder: Any
) -> None:
    import shutil

    folder = tmp_path / "adapter"
    shutil.copytree(adapter, folder)
    tiny = make_tiny_hotpot(shared_data / "hotpotqa", tmp_path / "tiny", n_train=4, n_dev=1)
    from hopmem.memory.datasets.splits import query_splits

    train_ids = list(query_splits(tiny).train)
    # The adapter "trained" on the first two training queries: only the other two may choose its blend.
    (folder / "data.json").write_text(json.dumps({"datasets": [{"dataset": "tiny", "train_ids": train_ids[:2]}]}))
    (folder / "README.md").write_text("# card\n\n## Data\n- x\n")
    (folder / "metrics.json").write_text("{}")
    common = {"cache_dir": tmp_path / "cache", "chunk_size": 400, "chunk_overlap": 0, "progress": False}
    held = untrained_holdout(folder, [tiny], embedder, per_dataset=10, **common)
    assert sorted(q.query_id for q in held) == sorted(f"tiny:{q}" for q in train_ids[2:])
    assert all(q.doc_ids and len(q.doc_ids) == len(q.texts) for q in held)
    blend = choose_adapter_blend(folder, [tiny], embedder, per_dataset=10, command="hopmem finetune blend", **common)
    assert blend["chosen_on"].startswith("2 held-out training queries") and len(blend["ndcg@10"]) == 11
    assert json.loads((folder / "hopmem_reranker.json").read_text())["blend"] == blend["weight"]
    assert json.loads((folder / "metrics.json").read_text())["blend"]["command"] == "hopmem finetune blend"
    card = (folder / "README.md").read_text()
    assert card.count("## Blend with the candidates' order") == 1 and "## Data" in card
    assert PointwiseLLMReranker(adapter=folder).blend == blend["weight"]


def test_the_cards_blend_section_is_replaced_not_repeated() -> None:
    section = ["", "## Blend with the candidates' order", "w = 0.5"]
    card = "# c\n\n## Blend with the candidates' order\nw = 0.1\n\n## Evaluation\nrows\n"
    out = replace_section(card, section)
    assert "w = 0.5" in out and "w = 0.1" not in out and out.endswith("## Evaluation\nrows\n")
    assert replace_section("# c\n", section) == "# c\n\n## Blend with the candidates' order\nw = 0.5\n"


def test_a_run_without_held_out_queries_says_it_chose_no_weight() -> None:
    none = choose_blend(_Fixed(), [])
    assert describe_blend(none) == "no blend weight chosen (nothing held out: the model's own scores are used)"
    chosen = {"weight": 0.7, "chosen_on": "20 held-out training queries (their hybrid top 30)", "ndcg@10": {}}
    assert describe_blend(chosen) == "blend weight 0.7 (chosen on 20 held-out training queries (their hybrid top 30))"


class _Fixed:
    blend = 0.0

    def score(self, query: str, docs: list[str]) -> list[float]:
        return [0.0 for _ in docs]
