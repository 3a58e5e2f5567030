"""Exporting an adapter for the package: half-precision weights that score like the original, a portable base-model
record, and the shipped prorank adapter itself (loaded from the package, it must change SmolLM2's scores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("peft", reason="the finetune extra is not installed")

from safetensors.torch import load_file

from hopmem.agents.llm.transformers_llm import TransformersLLM
from hopmem.agents.rerank.model_paths import read_reranker_record, shipped_adapter_dir
from hopmem.agents.rerank.pointwise import PointwiseLLMReranker
from hopmem.finetune.export import export_adapter, main
from hopmem.memory.errors import InputError
from tests.conftest import save_random_adapter

DOCS = ["The Seine flows through Paris.", "Bread is baked in an oven.", "Paris is the capital of France."]
QUERY = "Which river flows through Paris?"


def _absolute_paths(value: object) -> list[str]:
    if isinstance(value, dict):
        return [p for v in value.values() for p in _absolute_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _absolute_paths(v)]
    return [value] if isinstance(value, str) and (value.startswith(("/", "~")) or " /" in value) else []


def test_the_exported_adapter_is_half_precision_and_scores_like_the_original(
    tiny_causal_lm: Path, tmp_path: Path
) -> None:
    src = tmp_path / "trained"
    record = {"recipe": "prorank", "base_model": str(tiny_causal_lm), "passage_tokens": 32, "query_tokens": 16}
    save_random_adapter(TransformersLLM(str(tiny_causal_lm)).model, src, record, std=0.2)
    config = json.loads((src / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "/some/machine/path"
    (src / "adapter_config.json").write_text(json.dumps(config))
    (src / "README.md").write_text("card")

    main([str(src), "--dst", str(tmp_path / "shipped")])
    out = tmp_path / "shipped"
    weights = load_file(str(out / "adapter_model.safetensors"))
    assert weights and all(str(v.dtype) == "torch.float16" for v in weights.values())
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_causal_lm)
    assert (out / "README.md").read_text().startswith("card\n") and read_reranker_record(out) == record

    report = {
        "dataset": "tiny", "split": "dev", "n_queries": 2, "candidates": "hybrid", "depth": 4,
        "command": "hopmem eval rerank --dataset tiny", "git_revision": "abc",
        "results": [
            {"candidates": "hybrid", "reranker": name, "metrics": {"ndcg@10": v, "recall@10": v, "mrr@10": v},
             "latency_ms": {"p50": 12.3, "p95": 15.0}}
            for name, v in (("prorank", 0.25), ("none", 0.5))
        ],
    }  # fmt: skip
    before = (out / "adapter_model.safetensors").read_bytes()
    export_adapter(src, out, evaluation=report)
    assert (out / "adapter_model.safetensors").read_bytes() == before  # exporting again leaves the weights as they were
    card = (out / "README.md").read_text()
    assert card.startswith("card\n\nThis copy stores the weights in float16")
    assert "\n## Evaluation of this file (tiny dev, 2 queries, hybrid top 4 candidates)\n" in card
    assert "| hybrid | prorank | 0.2500 | 0.2500 | 0.2500 | 12 |" in card
    assert "`hopmem eval rerank --dataset tiny` (revision abc)" in card

    loaded = TransformersLLM(str(tiny_causal_lm), adapter=str(out)).model
    assert {str(p.dtype) for n, p in loaded.named_parameters() if "lora_" in n} == {"torch.float32"}  # peft upcasts

    original = PointwiseLLMReranker(adapter=src).score(QUERY, DOCS)
    exported = PointwiseLLMReranker(adapter=out).score(QUERY, DOCS)
    base = PointwiseLLMReranker(str(tiny_causal_lm)).score(QUERY, DOCS)
    assert exported == pytest.approx(original, abs=1e-3)
    assert max(abs(a - b) for a, b in zip(original, base, strict=True)) > 1e-2  # the adapter matters at this scale


def test_a_folder_without_an_adapter_or_record_is_refused(tiny_causal_lm: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds no peft adapter"):
        export_adapter(tmp_path, tmp_path / "out")
    src = tmp_path / "no-record"
    save_random_adapter(TransformersLLM(str(tiny_causal_lm)).model, src, {})
    (src / "hopmem_reranker.json").unlink()
    with pytest.raises(InputError, match=r"hopmem_reranker\.json"):
        export_adapter(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_shipped_prorank_adapter_loads_from_the_package_and_changes_the_base_scores() -> None:
    folder = shipped_adapter_dir("prorank")
    record = read_reranker_record(folder)
    assert record["base_model"] == "SmolLM2-135M-Instruct" and record["recipe"] == "prorank"
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == record["base_model"]
    for name in ("adapter_config.json", "metrics.json", "data.json", "hopmem_reranker.json"):
        assert not _absolute_paths(json.loads((folder / name).read_text())), name
    tuned = PointwiseLLMReranker(adapter=folder)
    base = PointwiseLLMReranker("SmolLM2-135M-Instruct", passage_tokens=tuned.passage_tokens)
    assert tuned.name == "prorank" and base.name == "prorank-base"
    tuned_scores, base_scores = tuned.score(QUERY, DOCS), base.score(QUERY, DOCS)
    assert max(abs(a - b) for a, b in zip(tuned_scores, base_scores, strict=True)) > 0.05
