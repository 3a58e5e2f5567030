"""The decomposer's ``agent`` reward pipeline: the agent's own steps for a given plan, checked against
``hopmem eval qa`` on a HotpotQA cut (real hybrid search, TreeHop and the shipped cross-encoder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hopmem.agents.config import AgentConfig
from hopmem.agents.rerank import load_reranker
from hopmem.eval.qa import evaluate_qa, variant_from_options
from hopmem.finetune.decomposer_pipeline import AgentPipeline, CachedCrossEncoder, PipelineSettings
from hopmem.finetune.decomposer_reward import PlanEnvironment, RewardWeights
from hopmem.memory.errors import InputError
from hopmem.settings import Settings, get_settings


def test_pipeline_settings_default_to_the_agents_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOPMEM_RERANKER")  # the tests' own default (conftest), not the product's
    assert PipelineSettings.from_settings(Settings()) == PipelineSettings()
    assert AgentConfig.from_settings(Settings()) == AgentConfig()


def test_agent_pipeline_refuses_an_llm_reranker(tmp_path: Path, embedder: Any) -> None:
    with pytest.raises(InputError, match="HOPMEM_RERANKER=cross-encoder"):
        AgentPipeline(embedder, cache_dir=tmp_path, settings=PipelineSettings(reranker="prorank"))
    assert AgentPipeline(embedder, cache_dir=tmp_path, settings=PipelineSettings(reranker="none")).reranker() is None


def test_cached_cross_encoder_scores_as_the_model_and_scores_each_pair_once(tmp_path: Path) -> None:
    model = load_reranker("cross-encoder", None, cache_dir=tmp_path)
    cached = CachedCrossEncoder(model)
    query = "Which animal eats termites?"
    docs = ["The aardvark eats ants and termites.", "Oak trees have acorns.", "Zebras have stripes."]
    assert cached.score(query, docs) == pytest.approx(model.score(query, docs), abs=1e-5)
    assert cached.pairs_scored == 3
    reordered = [docs[2], docs[0], docs[1]]
    assert cached.score(query, reordered) == pytest.approx(model.score(query, reordered), abs=1e-5)
    assert cached.pairs_scored == 3  # the blend with the new order is recomputed, the model is not asked again
    alone = cached.with_blend(0.0)
    assert alone.score(query, docs) == pytest.approx(model.with_blend(0.0).score(query, docs), abs=1e-5)
    assert alone.rank(query, docs)[0].doc_index == 0
    assert alone.pairs_scored == 3  # twins share the cache


def test_agent_pipeline_ranks_each_plan_as_eval_qa_does(small_hotpot: Path, hotpot_cache: Path, tmp_path: Path) -> None:
    # the tests' default is no reranker (conftest); the reward's point is the cross-encoder's rerank, so name it
    settings = get_settings(cache_dir=hotpot_cache, llm_backend="none", reranker="cross-encoder")
    out = tmp_path / "qa.json"
    evaluate_qa(
        small_hotpot, "dev", variants=[variant_from_options(planner="rules")], settings=settings, json_out=out,
        max_queries=6, progress=False,
    )  # fmt: skip
    rows = [json.loads(line) for line in out.with_suffix(".queries.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {r["rounds"] for r in rows} == {1}
    from hopmem.memory.embeddings import load_embedder

    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    pipeline = AgentPipeline(embedder, cache_dir=hotpot_cache, settings=PipelineSettings.from_settings(settings))
    env = PlanEnvironment(
        embedder, cache_dir=hotpot_cache, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
        weights=RewardWeights(), pipeline=pipeline,
    )  # fmt: skip
    fused = PlanEnvironment(
        embedder, cache_dir=hotpot_cache, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap
    )
    try:
        modes, differs = set(), 0
        for row in rows:
            ranked, searches = env.rank(str(small_hotpot), row["question"], row["plan_mode"], row["subqueries"])
            assert ranked[:10] == row["ranking"], row["question"]
            assert searches == len(
                set(row["subqueries"]) | ({row["question"]} if row["plan_mode"] != "whole" else set())
            )
            modes.add(row["plan_mode"])
            # the first proxy scores another list: the fused top ten, before TreeHop and the rerank
            differs += fused.rank(str(small_hotpot), row["question"], row["plan_mode"], row["subqueries"])[0] != ranked
        assert differs > 0
        assert "sequential" in modes  # the rules chain bridge questions: the chain's fill-in is reproduced too
        scored = pipeline.reranker()
        assert isinstance(scored, CachedCrossEncoder) and scored.pairs_scored > 0
        assert {r["reranker"] for r in rows} == {"cross-encoder"}
        before = scored.pairs_scored
        for row in rows:  # a plan scored again costs no cross-encoder call
            env.rank(str(small_hotpot), row["question"], row["plan_mode"], row["subqueries"])
        assert scored.pairs_scored == before
    finally:
        env.close()
        fused.close()


def test_the_python_api_reads_the_agent_pipeline_from_the_settings() -> None:
    from hopmem.finetune.api import _agent_fields

    fields: dict[str, object] = {}
    _agent_fields(fields, Settings(treehop_hops=1, reranker="none", rerank_depth=30))
    assert fields["pipeline_settings"] == PipelineSettings(treehop_hops=1, reranker="none")
    assert isinstance(fields["agent"], AgentConfig) and fields["agent"].rerank_depth == 30
    given: dict[str, object] = {"pipeline_settings": {"treehop_hops": 3}, "agent": {"top_k": 5}}
    _agent_fields(given, object())
    assert given["pipeline_settings"] == PipelineSettings(treehop_hops=3) and given["agent"] == AgentConfig(top_k=5)
    bare: dict[str, object] = {}
    _agent_fields(bare, object())  # settings without the agent's fields: the records' defaults stand
    assert bare == {}
    with pytest.raises(InputError, match="Bad pipeline_settings"):
        _agent_fields({"pipeline_settings": {"colour": 1}}, object())


def test_the_recipe_end_to_end_with_the_agent_reward(
    small_hotpot: Path, hotpot_cache: Path, tiny_causal_lm: Path
) -> None:
    """The whole recipe on the HotpotQA cut's 8 training questions with a tiny random Llama (it writes no valid plan,
    so every held-out plan falls back to the rules): warm-up, both GRPO stages, held-out choice, card and files; the
    held-out baselines are scored through the agent's steps, not the fused proxy."""
    from hopmem.finetune.decomposer import DecomposerConfig, train_decomposer
    from hopmem.finetune.decomposer_warmup import WarmupSettings
    from hopmem.finetune.grpo import GRPOSettings
    from hopmem.memory.embeddings import load_embedder

    settings = get_settings(cache_dir=hotpot_cache)
    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    stage = GRPOSettings(steps=1, prompts_per_step=1, num_generations=2, max_completion_length=12, checkpoint_every=25)
    out = hotpot_cache.parent / "decomposer-e2e"
    config = DecomposerConfig(
        datasets=(str(small_hotpot),), output=str(out), base_model=str(tiny_causal_lm), holdout=3, plan_tokens=12,
        warmup=WarmupSettings(steps=2, batch_size=2, samples=0), stage1=stage, stage2=stage,
    )  # fmt: skip
    assert config.pipeline == "agent" and config.reward.search_cost == 0.005  # the shipped recipe's defaults
    report = train_decomposer(
        config, embedder, cache_dir=hotpot_cache, chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap, progress=False,
    )  # fmt: skip
    held = report["holdout"]
    assert {"prompted", "warmup", "stage1", "stage2", "rules", "whole"} <= set(held)
    assert report["chosen"] in ("warmup", "stage1", "stage2")
    assert {p.name for p in out.iterdir()} >= {"adapter_model.safetensors", "metrics.json", "README.md", "data.json"}
    assert "through the agent's own steps" in (out / "README.md").read_text()
    # the baselines are the agent pipeline's figures on the held-out questions, recomputed here
    data = json.loads((out / "data.json").read_text())
    env = PlanEnvironment(
        embedder, cache_dir=hotpot_cache, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
        pipeline=AgentPipeline(embedder, cache_dir=hotpot_cache),
    )  # fmt: skip
    try:
        from hopmem.agents.planner import rule_plan
        from hopmem.finetune.decomposer_data import read_questions
        from hopmem.memory.datasets.metrics import recall_at_k

        questions = {q.id: q for q in read_questions((str(small_hotpot),), ("train",))}
        chosen = [questions[i] for i in data["holdout_ids"]]
        recalls = [
            recall_at_k(
                env.rank(q.dataset, q.text, *rule_plan(q.text, max_subqueries=3))[0], dict.fromkeys(q.supporting, 1), 10
            )
            for q in chosen
        ]
        assert held["rules"]["recall@10"] == round(sum(recalls) / len(recalls), 4)
        # the random base model writes no valid plan; its plans are run as the rules' plans, as the agent does
        assert held["prompted"]["valid"] == 0 and held["prompted"]["recall@10"] == held["rules"]["recall@10"]
    finally:
        env.close()
