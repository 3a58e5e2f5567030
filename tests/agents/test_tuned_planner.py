"""The tuned planner: an adapter found and loaded on its base model, plans read like the LLM's, rules on bad output.

The adapter here is an untrained LoRA on a tiny random Llama with SmolLM2's tokenizer (``tiny_causal_lm``): a real
model and a real peft adapter, small enough to load in a second. Its output is noise, which is what the fallback
tests need: the planner must give the rules' plan for it and say why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopmem.agents.planner import plan_question, rule_plan
from hopmem.agents.tuned_planner import RECORD_FILE, base_model_of, find_decomposer, load_tuned_planner
from hopmem.memory.errors import ModelNotAvailableError

Q = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"


@pytest.fixture(scope="module")
def tiny_adapter(tiny_causal_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import transformers
    from peft import get_peft_model

    from hopmem.finetune.grpo import lora_config

    model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_causal_lm))
    folder = tmp_path_factory.mktemp("decomposer")
    get_peft_model(model, lora_config(2, 4, 0.0, ("q_proj", "v_proj"))).save_pretrained(str(folder))
    (folder / RECORD_FILE).write_text(json.dumps({"recipe": "decomposer", "base_model": str(tiny_causal_lm)}))
    return folder


def test_the_adapter_is_found_in_order_and_a_missing_one_says_so(tiny_adapter: Path, tmp_path: Path) -> None:
    assert find_decomposer(tiny_adapter, tmp_path) == tiny_adapter
    with pytest.raises(ModelNotAvailableError, match="No decomposer adapter"):
        find_decomposer(tmp_path / "nothing", tmp_path)
    trained = tmp_path / "planner" / "decomposer"  # what `hopmem finetune decomposer` writes by default
    trained.mkdir(parents=True)
    for item in tiny_adapter.iterdir():
        (trained / item.name).write_bytes(item.read_bytes())
    assert find_decomposer(None, tmp_path) == trained
    assert base_model_of(trained) == base_model_of(tiny_adapter) != "SmolLM2-135M-Instruct"


def test_a_loaded_tuned_planner_that_writes_no_valid_plan_falls_back_to_the_rules(tiny_adapter: Path) -> None:
    llm = load_tuned_planner(tiny_adapter, tiny_adapter.parent)
    assert llm.name.endswith(tiny_adapter.name)
    plan = plan_question(None, Q, decide="tuned", plan_llm=llm)
    # The untrained tiny model writes noise after '{"': not a plan, so the rules plan and the warning says why.
    assert plan.source == "fallback" and "LLM plan not used" in (plan.warning or "")
    assert (plan.mode, plan.queries) == rule_plan(Q)


def test_no_tuned_planner_loaded_means_the_rules_with_a_warning() -> None:
    plan = plan_question(None, Q, decide="tuned", plan_llm=None)
    assert plan.source == "fallback" and plan.warning == "no tuned planner loaded"
    assert (plan.mode, plan.queries) == rule_plan(Q)


def test_the_agent_plans_with_the_tuned_planner_when_asked(
    tiny_adapter: Path, sample_dir: Path, tmp_path: Path
) -> None:
    import hopmem

    settings = hopmem.get_settings(
        data_dir=tmp_path / "data", llm_backend="none", reranker="none", remember_answers=False, treehop_hops=1,
        planner="tuned", planner_adapter=str(tiny_adapter),
    )  # fmt: skip
    memory = hopmem.Memory(settings)
    memory.ingest([sample_dir])
    agent = hopmem.Agent(memory, settings=settings)
    try:
        result = agent.ask(Q)
    finally:
        agent.close()
    (plan,) = [s for s in result.trace if s["step"] == "plan"]
    assert plan["source"] == "fallback" and "LLM plan not used" in plan["warning"]
    assert len(plan["llm_calls"]) == 1  # the tuned planner's one call, metered into the trace


def test_a_tuned_plan_may_restate_a_long_question_and_a_runaway_copy_is_cut(
    tiny_adapter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tuned planner generates without a grammar; its chain may restate a question longer than the prompted
    schema's 120 characters (as the rules' chain does), and a runaway copy is cut at a word boundary, where the
    prompted planner's plan would fall back. The model and the parsing are real; only the generated text is fixed
    (the tiny random model cannot be made to write it)."""
    from hopmem.agents.llm.base import Completion
    from hopmem.agents.llm.transformers_llm import TransformersLLM
    from hopmem.agents.planner import MAX_QUERY_CHARS, tuned_query_chars

    long_q = Q + " And in which year did she first take up that position in the government of the United States?"
    assert len(long_q) > MAX_QUERY_CHARS
    replies = [
        json.dumps({"mode": "sequential", "queries": [long_q, "{1} " + long_q]}),
        json.dumps({"mode": "sequential", "queries": [long_q, "{1} " + long_q + " in the government" * 3]}),
    ]

    def fixed(self: TransformersLLM, messages: object, **kwargs: object) -> Completion:
        return Completion(text=replies[0], model=self.name)

    monkeypatch.setattr(TransformersLLM, "_run", fixed)
    llm = load_tuned_planner(tiny_adapter, tiny_adapter.parent)
    plan = plan_question(None, long_q, decide="tuned", plan_llm=llm)
    assert plan.source == "tuned" and (plan.mode, plan.queries) == ("sequential", [long_q, "{1} " + long_q])
    replies.pop(0)
    cut = plan_question(None, long_q, decide="tuned", plan_llm=llm)
    assert cut.source == "tuned" and len(cut.queries[1]) <= tuned_query_chars(long_q)
    assert cut.queries[1].startswith("{1} " + long_q)
    prompted = plan_question(llm, long_q, decide="llm")
    assert prompted.source == "fallback" and "longer than 120" in (prompted.warning or "")
