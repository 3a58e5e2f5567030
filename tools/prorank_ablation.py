"""The prorank ablation: stage 1 only, stage 2 only, both, each stage 2 with and without distillation.

Every variant trains one LoRA adapter on SmolLM2-135M-Instruct with the same data (the training splits of cranfield,
hotpotqa and hotpotqa-extra, 20% of each held out, as ``hopmem finetune reranker --recipe prorank`` builds them) and
the budgets of ``make finetune-reranker`` (20 GRPO steps, 150 stage-2 groups, 128 passage tokens; with distillation,
75 of the 150 groups carry soft labels from the cross-encoder, so every stage 2 costs the same), then is evaluated
*alone* (no blend with the fused order) with ``hopmem eval rerank`` on the dev splits of cranfield and hotpotqa over
the hybrid top 30, beside the untuned base and the hybrid order. The variants with stage 1 start stage 2 from the
``s1`` variant's stage-1 adapter (the same seed trains the same stage 1), so ``s1`` runs first. Variants run one at
a time in one process; two processes share two cores (one torch thread each); then summarise:

    OMP_NUM_THREADS=1 .venv/bin/python tools/prorank_ablation.py run --variants s1,base,s2+d --max-queries 40 &
    OMP_NUM_THREADS=1 .venv/bin/python tools/prorank_ablation.py run --variants s2,s1+s2,s1+s2+d --max-queries 40 &
    wait; .venv/bin/python tools/prorank_ablation.py summary --json reports/prorank-ablation.json \\
        --plot reports/prorank-ablation.png

Each variant writes ``<out>/<variant>/ablation.json`` (its training report's figures and its evaluations); the
summary gathers them, prints a table and the JSON, and draws nDCG@10 per variant and data set. ``groups`` prints how
many labelled stage-2 groups each training set gives (the seeded sampling replayed, no model loaded).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hopmem.memory.run_record import git_revision, machine_info

DATA = Path("../shared/data")
TRAIN_SETS = ("cranfield", "hotpotqa", "hotpotqa-extra")
EVAL_SETS = ("cranfield", "hotpotqa")
BUDGET = {"passage_tokens": 128, "max_stage2_groups": 150, "dev_queries": 0}
GRPO_STEPS = 20
DISTILL_GROUPS = 75
DISTILL = {"max_stage2_groups": 150 - DISTILL_GROUPS, "distill_groups": DISTILL_GROUPS}

VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "s1": {"stage1": {"steps": GRPO_STEPS}, "stage2_epochs": 0},
    "s2": {"stage1": {"steps": 0}, "stage2_epochs": 1},
    "s1+s2": {"stage1": {"steps": GRPO_STEPS}, "stage2_epochs": 1},
    "s2+d": {"stage1": {"steps": 0}, "stage2_epochs": 1, **DISTILL},
    "s1+s2+d": {"stage1": {"steps": GRPO_STEPS}, "stage2_epochs": 1, **DISTILL},
}
"""Options of :func:`hopmem.finetune.api.train` per variant (``base``: no training, the untuned model)."""


def _train(name: str, out: Path, datasets: list[Path]) -> dict[str, Any]:
    from hopmem.finetune.api import train
    from hopmem.settings import get_settings

    folder = out / name
    options = dict(VARIANTS[name])
    resume = False
    if options["stage1"]["steps"] and options["stage2_epochs"]:
        shared = out / "s1" / "checkpoints" / "stage1-adapter"
        if not (shared / "adapter_config.json").is_file():
            raise SystemExit(f"{name} starts from the s1 variant's stage-1 adapter; run variant s1 first.")
        target = folder / "checkpoints" / "stage1-adapter"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(shared, target)
        resume = True
    started = time.perf_counter()
    run = train(
        "prorank",
        dataset=datasets,
        output=folder,
        settings=get_settings(),
        progress=False,
        command=f"tools/prorank_ablation.py run --variants {name}",
        keep_checkpoints=True,
        resume=resume,
        blend_grid=(),
        **{**BUDGET, **options},
    )
    report = run.report
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "stage_seconds": report.get("seconds", {}),
        "stage1_steps": report.get("stage1", {}).get("steps", 0),
        "stage1_shared_from": "s1" if resume else None,
        "stage2_groups": report.get("stage2", {}).get("groups", 0),
        "distill_groups": report.get("stage2", {}).get("distill_groups", 0),
        "stage2_loss_means_per_50": _means(report.get("stage2", {}).get("loss_history", []), 50),
        "training_pairs": report.get("train_pairs"),
    }


def _means(values: list[float], size: int) -> list[float]:
    return [round(sum(values[i : i + size]) / len(values[i : i + size]), 4) for i in range(0, len(values), size)]


def _evaluate(folder: Path | None, dataset: Path, max_queries: int) -> dict[str, Any]:
    from hopmem.eval.rerank import evaluate_rerank

    rerankers = ["prorank-base", "none"] if folder is None else ["prorank-alone"]
    report = evaluate_rerank(
        dataset, "dev", rerankers, adapter=folder, progress=False, max_queries=max_queries, depth=30
    )
    rows = {r["reranker"]: {"metrics": r["metrics"], "latency_ms": r["latency_ms"]} for r in report["results"]}
    return {"queries": report["n_queries"], "rows": rows, "machine": report.get("machine")}


def run_variants(names: list[str], out: Path, max_queries: int) -> None:
    datasets = [DATA / d for d in TRAIN_SETS]
    for name in names:
        if name not in VARIANTS:
            raise SystemExit(f"Unknown variant {name!r}; choose from {', '.join(VARIANTS)}.")
        record: dict[str, Any] = {
            "variant": name,
            "options": VARIANTS[name],
            "revision": git_revision(),
            "command": " ".join(sys.argv),
        }
        folder = None
        if name != "base":
            record["training"] = _train(name, out, datasets)
            folder = out / name
        record["eval"] = {d: _evaluate(folder, DATA / d, max_queries) for d in EVAL_SETS}
        (out / name).mkdir(parents=True, exist_ok=True)
        (out / name / "ablation.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(json.dumps({"variant": name, "ndcg@10": _ndcgs(record)}), flush=True)


def _ndcgs(record: dict[str, Any]) -> dict[str, float]:
    key = "prorank-base" if record["variant"] == "base" else "prorank-alone"
    return {d: e["rows"][key]["metrics"]["ndcg@10"] for d, e in record["eval"].items()}


def summary(out: Path, json_out: Path, plot_out: Path | None) -> None:
    found = [n for n in VARIANTS if (out / n / "ablation.json").is_file()]
    records = {n: json.loads((out / n / "ablation.json").read_text(encoding="utf-8")) for n in found}
    if "base" not in records:
        raise SystemExit("The base variant has not been evaluated; run it first.")
    base = _ndcgs(records["base"])
    hybrid = {d: e["rows"]["none"]["metrics"]["ndcg@10"] for d, e in records["base"]["eval"].items()}
    table = []
    for name, record in records.items():
        scores = _ndcgs(record)
        table.append(
            {
                "variant": name,
                **{f"{d} ndcg@10": v for d, v in scores.items()},
                **{f"{d} vs base": round(v - base[d], 4) for d, v in scores.items()},
                "train seconds": record.get("training", {}).get("seconds", 0),
            }
        )
    report = {
        "what": "prorank ablation: each variant's adapter alone over the hybrid top 30 of the dev split",
        "train_sets": list(TRAIN_SETS),
        "budgets": {**BUDGET, "grpo_steps": GRPO_STEPS, "distill_groups": DISTILL_GROUPS},
        "hybrid_order_ndcg@10": hybrid,
        "table": table,
        "variants": records,
        "machine": "each variant's eval records the machine it ran on (variants.<name>.eval.<set>.machine)",
        "summarised_on": machine_info(),
        "command": "tools/prorank_ablation.py (see its docstring)",
    }
    json_out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"{'variant':10} " + " ".join(f"{d:>12} {'vs base':>8}" for d in EVAL_SETS) + "  train s")
    for row in table:
        cells = " ".join(f"{row[f'{d} ndcg@10']:12.4f} {row[f'{d} vs base']:+8.4f}" for d in EVAL_SETS)
        print(f"{row['variant']:10} {cells}  {row['train seconds']:7.0f}")
    print(f"{'hybrid':10} " + " ".join(f"{hybrid[d]:12.4f} {'':8}" for d in EVAL_SETS))
    if plot_out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.8 / len(EVAL_SETS)
        for k, d in enumerate(EVAL_SETS):
            xs = [i + k * width for i in range(len(table))]
            ax.bar(xs, [row[f"{d} ndcg@10"] for row in table], width, label=f"{d} dev")
            ax.axhline(hybrid[d], linestyle="--", linewidth=1, color=f"C{k}", label=f"{d}: hybrid order")
        ax.set_xticks([i + width * (len(EVAL_SETS) - 1) / 2 for i in range(len(table))], [r["variant"] for r in table])
        ax.set_ylabel("nDCG@10 (adapter alone)")
        ax.set_title("prorank ablation on SmolLM2-135M (2-core CPU budgets)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot_out, dpi=120)


def group_sources() -> dict[str, dict[str, int]]:
    """Replay stage 2's seeded sampling: how many of its labelled groups each training set gives, at the caps the
    variants use (150 without distillation, 75 with it). Builds the training data as the recipe does (no model)."""
    from hopmem.finetune.prorank import ProRankConfig, ProRankRecipe, stage2_groups
    from hopmem.finetune.recipe import TrainContext
    from hopmem.memory.embeddings import load_embedder
    from hopmem.settings import get_settings

    settings = get_settings()
    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    context = TrainContext(embedder, settings.cache_dir, settings.chunk_size, settings.chunk_overlap, False, None)
    shares: dict[str, dict[str, int]] = {}
    for cap in (BUDGET["max_stage2_groups"], DISTILL["max_stage2_groups"]):
        config = ProRankConfig(
            datasets=tuple(str(DATA / d) for d in TRAIN_SETS),
            output="(not written)",
            passage_tokens=int(BUDGET["passage_tokens"]),
            dev_queries=int(BUDGET["dev_queries"]),
            max_stage2_groups=int(cap),
        )
        data = ProRankRecipe(config, context).load_data()
        source = {pair.query: pair.query_id.split(":")[0] for pair in data.train}
        counts = collections.Counter(source[group.query] for group in stage2_groups(data.train, config))
        shares[str(cap)] = dict(counts.most_common())
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate variants, one after the other")
    run.add_argument("--variants", required=True, help=f"comma-separated, of {', '.join(VARIANTS)}")
    run.add_argument("--out", type=Path, default=Path("runs/prorank-ablation"))
    run.add_argument("--max-queries", type=int, default=40, help="dev queries per evaluation data set")
    summ = sub.add_parser("summary", help="gather the variants' results into one report")
    summ.add_argument("--out", type=Path, default=Path("runs/prorank-ablation"))
    summ.add_argument("--json", type=Path, required=True)
    summ.add_argument("--plot", type=Path)
    sub.add_parser("groups", help="print how many labelled stage-2 groups each training set gives (replayed sampling)")
    args = parser.parse_args()
    if args.command == "run":
        import torch

        torch.set_num_threads(1)
        run_variants([v.strip() for v in args.variants.split(",") if v.strip()], args.out, args.max_queries)
    elif args.command == "groups":
        print(json.dumps(group_sources()))
    else:
        summary(args.out, args.json, args.plot)


if __name__ == "__main__":
    main()
