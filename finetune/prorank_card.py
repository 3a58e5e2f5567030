"""The prorank adapter's model card (README.md): kept apart from the recipe so that each stays short."""

from __future__ import annotations

from typing import Any

from hopmem.finetune.blend import blend_card_lines
from hopmem.finetune.dev_figures import dev_heading, shown
from hopmem.finetune.reranker_data import data_card_lines


def model_card(report: dict[str, Any]) -> str:
    """The adapter's model card (README.md): data and its source, both stages' settings and results, command."""
    cfg = report["config"]
    s1 = cfg["stage1"]
    rewards = report["stage1"].get("rewards", {})
    lines = [
        "# hopmem pointwise reranker (prorank recipe)",
        "",
        f"A LoRA adapter (r={cfg['lora_r']}, alpha={cfg['lora_alpha']}, on {', '.join(cfg['lora_targets'])}; "
        f"{report['trainable_parameters']:,} trainable parameters) for `{report['base_model']['name']}`, trained by "
        '`hopmem finetune reranker --recipe prorank`. Score of a (query, passage) pair: `logit("1") - logit("0")` '
        "at the answer position of the prompt in `hopmem.agents.rerank.prompts.pointwise_messages`, in float32. "
        "Use it with `hopmem.agents.rerank.pointwise.PointwiseLLMReranker(adapter=folder)` or serve it with vLLM "
        "(`--enable-lora --lora-modules prorank=folder`).",
        "",
        "## Data",
    ]
    lines += data_card_lines(report)
    titles = sum(int(c.get("title_pairs", 0)) for c in report["data"].values())
    if cfg.get("title_queries"):
        lines.append(
            f"- title pseudo-queries: up to {cfg['title_queries']} per corpus ({titles} pairs): a title of 4+ words "
            "as the query, the document's body as the positive, 3 negatives from the title's hybrid top ranks; "
            "stage-2 groups are drawn from qrels and title groups alike"
        )
    lines += [
        "- the query ids of every split are in `data.json`; evaluations skip the training queries",
        "",
        "## Training",
        f"- stage 1 (GRPO prompt warm-up, TRL GRPOTrainer): {report['stage1'].get('steps', 0)} steps, "
        f"{s1['prompts_per_step']} prompts x {s1['num_generations']} generations per step, temperature "
        f"{s1['temperature']}, lr {s1['lr']}; reward = correct label (graded), -0.5 with no digit, + 0.2 for an "
        f"exact digit, else minus up to 0.2 for length; mean reward {rewards.get('mean_reward', 'n/a')}, groups "
        f"with reward variance {rewards.get('groups_with_variance', 'n/a')}, replies with a readable answer "
        f"{rewards.get('answered', 'n/a')}",
        f"- stage 2 (score learning on the logit difference): {cfg['stage2_loss']} loss, "
        f"{report['stage2'].get('groups', 0)} groups of 1 positive + {cfg['stage2_negatives']} negatives, "
        f"{cfg['stage2_epochs']} epoch(s), lr {cfg['stage2_lr']}"
        + (
            f"; {report['stage2']['distill_groups']} of the groups have soft labels: the cross-encoder's blended "
            f"scores (`{report['stage2'].get('distill_teacher')}`, softmax at temperature "
            f"{cfg['distill_temperature']}) over training queries' hybrid candidates, judged or not (distillation)"
            if report["stage2"].get("distill_groups")
            else ""
        ),
        f"- prompt budget: {cfg['passage_tokens']} passage tokens, {cfg['query_tokens']} query tokens",
        "",
        dev_heading(report["dev_after"]),
        "| model | BCE loss | pairwise accuracy | MRR | nDCG@10 (within the pairs) |",
        "|---|---|---|---|---|",
    ]
    for name, key in (("base", "dev_before"), ("after stage 1", "dev_after_stage1"), ("after stage 2", "dev_after")):
        row = report[key]
        lines.append(
            f"| {name} | {shown(row['loss'])} | {shown(row['pairwise_accuracy'])} | {shown(row['mrr'])} | "
            f"{shown(row.get('ndcg@10'))} |"
        )
    sec = report["seconds"]
    lines += [
        "",
        "Reranking metrics (nDCG@10, recall@10, MRR@10) come from `hopmem eval rerank` (`make finetune-reranker`).",
        "",
        f"Took {sec['total']} s (stage 1 {sec['stage1']} s, stage 2 {sec['stage2']} s) on "
        f"{report['machine']['platform']}, {report['machine']['cpus']} CPUs.",
        f"Command: `{report['command'] or 'hopmem finetune reranker --recipe prorank'}`",
    ]
    if report.get("blend"):
        lines += blend_card_lines(report["blend"])
    return "\n".join(lines) + "\n"
