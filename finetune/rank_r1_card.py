"""The rank-r1 adapter's model card (README.md): kept apart from the recipe so that each stays short."""

from __future__ import annotations

from typing import Any

from hopmem.finetune.dev_figures import dev_heading, shown
from hopmem.finetune.reranker_data import data_card_lines
from hopmem.finetune.rewards import FORMAT_BONUS, NO_ANSWER


def _loss_ends(losses: list[float]) -> str:
    if not losses:
        return "n/a"
    tail = losses[-10:]
    return f"{losses[0]:.3f} -> {sum(tail) / len(tail):.3f}"


def model_card(report: dict[str, Any]) -> str:
    """The adapter's model card (README.md): data and its source, the GRPO settings and rewards, dev results."""
    cfg = report["config"]
    g = cfg["grpo"]
    rewards = report["grpo"].get("rewards", {})
    reward_rule = (
        "NDCG-style gain of the choice, (2^label - 1) / (2^best - 1)"
        if cfg["ndcg_reward"]
        else "label of the choice / best label of the set"
    )
    lines = [
        "# hopmem setwise reasoning reranker (rank-r1 recipe)",
        "",
        f"A LoRA adapter (r={cfg['lora_r']}, alpha={cfg['lora_alpha']}, on {', '.join(cfg['lora_targets'])}; "
        f"{report['trainable_parameters']:,} trainable parameters) for `{report['base_model']['name']}`, trained by "
        "`hopmem finetune reranker --recipe rank-r1`. The model reads a query and "
        f"{cfg['set_size']} numbered passages (the prompt of `hopmem.agents.rerank.prompts.setwise_messages`), "
        "reasons inside `<think></think>` and names the most relevant passage as `<answer>[k]</answer>`; a ranking "
        "is built by repeated selection. Use it with `hopmem.agents.rerank.setwise.SetwiseLLMReranker(adapter=folder)` "
        "or `HOPMEM_RERANKER=rank-r1`.",
        "",
        "## Data",
    ]
    lines += data_card_lines(report)
    lines += [
        f"- {report['grpo'].get('prompts', 0)} setwise prompts: per training query and positive, the positive, a "
        f"negative and more of the query's passages up to {cfg['set_size']}, in a seeded random order; "
        f"{cfg.get('small_sets', 0.0):.0%} of the sets are cut to 2 to {cfg['set_size'] - 1} passages, as the "
        "tournament's smaller windows are",
        "- the query ids of every split are in `data.json`; evaluations skip the training queries",
        "",
        "## Training",
        f"- supervised warm-up: {report['sft'].get('steps', 0)} steps of {cfg['sft']['batch_size']} examples, lr "
        f"{cfg['sft']['lr']}, on {report['sft'].get('examples', 0)} replies built from the qrels "
        "(`<think>Passage [k] covers <query words it shares> and answers the query best.</think> "
        "<answer>[k]</answer>`, k the best-judged passage); loss (first, last 10 mean) "
        f"{_loss_ends(report['sft'].get('loss_history', []))}",
        "- then GRPO (TRL GRPOTrainer):",
        f"  {report['grpo'].get('steps', 0)} steps, {g['prompts_per_step']} prompts x {g['num_generations']} "
        f"generations per step, up to {g['max_completion_length']} tokens per reply, temperature {g['temperature']}, "
        f"lr {g['lr']}",
        f"  reward = {reward_rule}, + {FORMAT_BONUS} for a well-formed `<think>`/`<answer>` reply; {NO_ANSWER} "
        "(plus a little per format tag, minus a little for length) when no valid passage is named",
        f"- mean reward {rewards.get('mean_reward', 'n/a')} (best {rewards.get('max_reward', 'n/a')}), groups with "
        f"reward variance {rewards.get('groups_with_variance', 'n/a')}, completions naming a valid passage "
        f"{rewards.get('answered', 'n/a')}, over {rewards.get('completions', 0)} completions",
        f"- prompt budget: {cfg['passage_tokens']} passage tokens, {cfg['query_tokens']} query tokens",
        "",
        dev_heading(report["dev_after"]),
        f"The first {cfg['dev_depth']} place(s) of each dev query by repeated selection, the rest in a seeded random "
        "order; scores are `selected places - position`, so the BCE column only says whether positives were selected.",
        "",
        "| model | BCE loss | pairwise accuracy | MRR | nDCG@10 (within the pairs) | valid answers |",
        "|---|---|---|---|---|---|",
    ]
    for name, key in (("base", "dev_before"), ("after the warm-up", "dev_after_sft"), ("trained", "dev_after")):
        row = report.get(key)
        if not row:
            continue
        lines.append(
            f"| {name} | {shown(row['loss'])} | {shown(row['pairwise_accuracy'])} | {shown(row['mrr'])} | "
            f"{shown(row.get('ndcg@10'))} | "
            f"{round(row.get('valid_answer_rate', 0.0) * row.get('model_calls', 0))} of {row.get('model_calls')} |"
        )
    chance = report.get("dev_chance")
    if chance and chance.get("draws"):
        lines.append(
            f"| a random order (mean of {chance['draws']}) | n/a | {shown(chance['pairwise_accuracy'])} | "
            f"{shown(chance['mrr'])} | {shown(chance.get('ndcg@10'))} | n/a |"
        )
    for name, key in (("base", "dev_before"), ("after the warm-up", "dev_after_sft"), ("trained", "dev_after")):
        sizes = ((report.get(key) or {}).get("replies") or {}).get("by_window_size") or {}
        if sizes:
            counts = ", ".join(f"{n} passages {r['valid']} of {r['calls']}" for n, r in sizes.items())
            lines.append(f"\nValid answers per window size, {name}: {counts}.")
    sec = report["seconds"]
    lines += [
        "",
        "Reranking metrics (nDCG@10, recall@10, MRR@10) come from `hopmem eval rerank`.",
        "",
        f"Took {sec['total']} s (warm-up {sec.get('sft', 0)} s, GRPO {sec['grpo']} s) on "
        f"{report['machine']['platform']}, "
        f"{report['machine']['cpus']} CPUs{', ' + report['machine']['cuda'] if report['machine'].get('cuda') else ''}.",
        f"Command: `{report['command'] or 'hopmem finetune reranker --recipe rank-r1'}`",
        "",
    ]
    return "\n".join(lines)
