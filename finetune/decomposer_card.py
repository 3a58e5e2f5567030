"""The decomposer adapter's model card (README.md) and reward-curve plot: kept apart from the recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REWARD_CURVE = "reward_curve.png"


def save_reward_curve(folder: Path) -> Path | None:
    """Draw the run's GRPO loss and reward per step (:meth:`TrainingRun.plot`) into ``folder/reward_curve.png``;
    None when matplotlib is missing or nothing was logged."""
    from hopmem.finetune.training_run import TrainingRun
    from hopmem.memory.errors import ConfigError, InputError

    try:
        fig = TrainingRun.load(folder).plot()
    except (ConfigError, InputError):
        return None
    path = folder / REWARD_CURVE
    fig.savefig(path, dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _row(name: str, held: dict[str, Any]) -> str:
    return (
        f"| {name} | {held.get('recall@10', '')} | {held.get('searches', '')} | {held.get('valid', 'n/a')} | "
        f"{held.get('mean_reward', 'n/a')} | {held.get('modes', '')} |"
    )


def _reserved_lines(data: dict[str, Any]) -> list[str]:
    reserved = data.get("reserved")
    if not reserved:
        return []
    parts = [f"the first {r['first']} judged questions of {name} ({r['split']})" for name, r in reserved.items()]
    return [
        f"- reserved for evaluation, never trained on nor held out: {'; '.join(parts)} - the questions "
        "`hopmem eval qa --max-queries N` runs on that folder (ids in `data.json`, `reserved_ids`); the dev split is "
        "never read"
    ]


def _warmup_lines(warmup: dict[str, Any] | None) -> list[str]:
    if not warmup:
        return []
    t, s = warmup["targets"], warmup["settings"]
    sampled = f"{s['samples']} sampled from the base model" if s["samples"] else "none sampled from the base model"
    return [
        f"- warm-up (expert iteration): each of the {t['questions']} training questions' candidate plans (whole, the "
        f'rules\' plan, the chain `[q, "{{1}} q"]`; {sampled}) were scored with the reward above and the best '
        f"({_tie_words(s.get('ties', 'fewer'))}) became its supervised target: the adapter imitates reward-best plans "
        f"found by enumeration with the supporting passages in hand. Winning candidate {t['sources']}, target modes "
        f"{t['counts']} ({t['modes']}); target recall@10 {t['target_recall@10']} against {t['whole_recall@10']} for "
        f"the whole question; targets found in {warmup['target_seconds']} s",
        f"- warm-up training: {warmup['steps']} steps x {s['batch_size']} examples, lr {s['lr']}, non-whole targets "
        f"{warmup['split_examples']} of the examples (split_share {s['split_share']}: repeated up to that share); loss "
        f"{warmup['first_loss']} (first 10 steps) -> {warmup['final_loss']} (last 10)",
    ]


def model_card(report: dict[str, Any]) -> str:
    """The card: data, curriculum, reward, both stages' settings and results, held-out comparison, command."""
    cfg = report["config"]
    reward = cfg["reward"]
    data = report["data"]
    held = report["holdout"]
    lines = [
        "# hopmem query decomposer (GRPO-tuned planner)",
        "",
        f"A LoRA adapter (r={cfg['lora_r']}, alpha={cfg['lora_alpha']}, on {', '.join(cfg['lora_targets'])}; "
        f"{report['trainable_parameters']:,} trainable parameters) for `{report['base_model']['name']}`, trained by "
        "`hopmem finetune decomposer` with TRL's GRPOTrainer. It plans with the tuned planner's short prompt "
        '(`hopmem.agents.prompts.decompose_messages`, reply forced to start with `{"`), and its plans are read by '
        "`hopmem.agents.planner.check_plan` (invalid ones fall back to the rules). Use it with "
        "`HOPMEM_PLANNER=tuned` (and `HOPMEM_PLANNER_ADAPTER=<folder>` for another copy).",
        "",
        "## Data",
        f"- folders: {', '.join(Path(d).name for d in cfg['datasets'])} (splits {', '.join(cfg['splits'])}); "
        f"{data['available']} questions with 2+ supporting passages, {data['holdout']} held out (seed "
        f"{data['seed']}) to choose the stage kept, {data['train']} trained on; ids in `data.json`",
        *_reserved_lines(data),
        f"- curriculum stages measured by the whole question's own hybrid search ({data.get('stage_rule')}): "
        f"{data.get('stages')}; stage 1 trains on single + easy, stage 2 on all",
        "",
        "## Reward",
        f"- a plan's searches run through the memory's hybrid search (the whole question too when it splits; a "
        f"chain's `{{1}}` filled by the extractive bridge answer), {_pipeline_words(cfg)}, scored by "
        f"{reward['metric']} against the supporting passages; minus {reward['search_cost']} per search beyond the "
        f"first; + {reward['valid']} "
        f"for a valid plan; an invalid plan (JSON or `check_plan`) earns {reward['invalid']} only",
        "",
        "## Training",
        *_warmup_lines(report.get("warmup")),
    ]
    for name in ("stage1", "stage2"):
        stage = report.get(name)
        if not stage:
            continue
        s = stage["settings"]
        r = stage["rewards"]
        lines.append(
            f"- {name}: {stage['steps']} steps on {stage['questions']} questions, {s['prompts_per_step']} prompts x "
            f"{s['num_generations']} generations per step, temperature {s['temperature']}, lr {s['lr']}, at most "
            f"{s['max_completion_length']} tokens; mean reward {r.get('mean_reward')}, valid rollouts "
            f"{r.get('answered', 'n/a')}, groups with reward variance {r.get('groups_with_variance')}, rollout modes "
            f"{r.get('modes')}"
        )
    lines += [
        "",
        f"## Held-out questions ({held['prompted']['questions']}, never trained on)",
        f"recall@10 as the reward scores it ({_held_out_words(cfg)}), an invalid plan replaced by the rules' plan as "
        "the agent does; the agent's own figures come from `hopmem eval qa --planner rules,llm,tuned`.",
        "",
        "| planner | recall@10 | searches | valid plans | mean reward | modes |",
        "|---|---|---|---|---|---|",
        _row("whole question (no split)", held["whole"]),
        _row("rules", held["rules"]),
        _row("SmolLM2 untrained, same prompt", held["prompted"]),
    ]
    for name in ("warmup", "stage1", "stage2"):
        if name in held:
            label = "tuned, after the warm-up" if name == "warmup" else f"tuned, after {name}"
            lines.append(_row(label + (" (kept)" if report["chosen"] == name else ""), held[name]))
    sec = report["seconds"]
    machine = report.get("machine", {})
    lines += [
        "",
        f"Took {sec['total']} s ({', '.join(f'{k} {v} s' for k, v in sec.items() if k != 'total')}) on "
        f"{machine.get('platform', '?')}, {machine.get('cpus', '?')} CPUs.",
        f"Command: `{report.get('command') or 'hopmem finetune decomposer'}`",
        "",
        f"![reward per step]({REWARD_CURVE})",
    ]
    return "\n".join(lines) + "\n"


def _pipeline_words(cfg: dict[str, Any]) -> str:
    if cfg.get("pipeline", "fused") != "agent":
        return "RSF-fused (the first documents of the fused lists; no TreeHop, no reranker)"
    p, a = cfg.get("pipeline_settings", {}), cfg.get("agent", {})
    return (
        f"through the agent's own steps (retrieve {a.get('retrieve_k')} per text, TreeHop {p.get('treehop_hops')} "
        f"hops, RSF fusion to {a.get('rerank_depth')} candidates, the cross-encoder's rerank blended with the fused "
        "order; the documents of that final ranking, as `hopmem eval qa` scores them)"
    )


def _held_out_words(cfg: dict[str, Any]) -> str:
    if cfg.get("pipeline", "fused") == "agent":
        return "the documents of the agent's reranked list, TreeHop and the cross-encoder included"
    return "the fused hybrid lists, no TreeHop, no reranker"


def _tie_words(ties: str) -> str:
    if ties == "expected":
        return (
            "most evidence wins; ties go to the kind of plan (whole, chain, split) with the best mean reward over "
            "training questions of the same rules class"
        )
    return "ties: fewer searches, then whole"
