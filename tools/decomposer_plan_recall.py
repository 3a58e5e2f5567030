"""Evidence recall@10 of fixed plans on decomposer training questions, scored as the decomposer's reward scores them.

The measurement behind run eight's two changes (docs/decomposer.md): on training questions (never dev), how much
evidence the whole question, the rules' plan, the chain ``[q, "{1} q"]`` and that chain cut to 120 characters (the
tuned planner's limit in runs four to seven) find, through the ``fused`` proxy and through the ``agent`` pipeline
(the agent's own retrieve, TreeHop, fuse and cross-encoder rerank steps). Prints JSON and a short table:

    .venv/bin/python tools/decomposer_plan_recall.py --dataset ../shared/data/hotpotqa --first 0 --count 100 \\
        --json reports/decomposer-plan-recall-hotpotqa-train.json

Questions are the folder's ``train`` split in file order (``--first``/``--count`` pick a slice); "long" questions are
those over 116 characters, whose chain step ``"{1} " + q`` passes 120.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from hopmem.agents.planner import MAX_QUERY_CHARS, fit_query, rule_plan
from hopmem.finetune.decomposer_data import read_questions
from hopmem.finetune.decomposer_pipeline import AgentPipeline, PipelineSettings
from hopmem.finetune.decomposer_reward import PlanEnvironment
from hopmem.memory.datasets.metrics import recall_at_k
from hopmem.memory.embeddings import load_embedder
from hopmem.settings import get_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="BEIR folder with supporting passages")
    parser.add_argument("--first", type=int, default=0, help="first question of the train split")
    parser.add_argument("--count", type=int, default=100, help="questions measured")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args()
    settings = get_settings()
    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    questions = read_questions((args.dataset,), ("train",))[args.first : args.first + args.count]
    options = {
        "cache_dir": settings.cache_dir,
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
    }
    pipeline = AgentPipeline(embedder, cache_dir=settings.cache_dir, settings=PipelineSettings.from_settings(settings))
    envs = {
        "fused": PlanEnvironment(embedder, **options),
        "agent": PlanEnvironment(embedder, **options, pipeline=pipeline),
    }
    report: dict[str, object] = {
        "dataset": Path(args.dataset).name,
        "split": "train",
        "questions": [args.first, args.first + len(questions)],
        "long_questions": sum(len(q.text) > MAX_QUERY_CHARS - 4 for q in questions),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "command": " ".join(["tools/decomposer_plan_recall.py", *sys.argv[1:]]),
    }
    for name, env in envs.items():
        started = time.perf_counter()
        rows: dict[str, list[float]] = {}
        long_rows: dict[str, list[float]] = {}
        for q in questions:
            plans = {
                "whole": ("whole", [q.text]),
                "rules": rule_plan(q.text, max_subqueries=3),
                "chain": ("sequential", [q.text, "{1} " + q.text]),
                "chain cut to 120": ("sequential", [fit_query(q.text), fit_query("{1} " + q.text)]),
            }
            for plan, (mode, queries) in plans.items():
                recall = recall_at_k(env.rank(q.dataset, q.text, mode, queries)[0], dict.fromkeys(q.supporting, 1), 10)
                rows.setdefault(plan, []).append(recall)
                if len(q.text) > MAX_QUERY_CHARS - 4:
                    long_rows.setdefault(plan, []).append(recall)
        report[name] = {
            "recall@10": {p: round(sum(v) / len(v), 4) for p, v in rows.items()},
            "recall@10_long": {p: round(sum(v) / len(v), 4) for p, v in long_rows.items()},
            "seconds": round(time.perf_counter() - started, 1),
        }
        env.close()
    text = json.dumps(report, indent=2)
    print(text)
    for name in envs:
        entry = report[name]
        assert isinstance(entry, dict)
        print(f"{name:<6} " + "  ".join(f"{p} {v:.4f}" for p, v in entry["recall@10"].items()))
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
