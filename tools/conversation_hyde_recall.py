"""Recall of the agent's fused list with and without the LLM's guessed answer (hyde), on LoCoMo-format conversations.

The offline measurement behind ``hyde`` in ``hopmem eval memory`` (docs/conversations.md): per question, the agent's own
plan and first retrieve step (:mod:`hopmem.agents.nodes`, with ``hopmem eval memory``'s agent settings: the rule
planner, 30 memories a search, conversation search) are fused
as the agent fuses them, with and without list ``hyde`` (the question followed by SmolLM2's guess at the answer),
and recall@5 / recall@10 over turns of the fused order is compared with hybrid search's, per category. No reranker
and no second search round: the agent's recall@10 is its fused list's first 10 (the conversation floor), but a
second round can change that list, so ``hopmem eval memory`` is the measure; this is how the wording and the weight
were chosen. Prints JSON and a short table:

    .venv/bin/python tools/conversation_hyde_recall.py --dataset ../shared/data/locomo/locomo_dev.json \\
        --conversations conv-26,conv-30 --prompt passage --json /tmp/hyde-1-2.json

The report holds figures only (LoCoMo is CC BY-NC: no question, turn or guess text).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hopmem.agent_api import configured_llm
from hopmem.agents import nodes
from hopmem.agents.config import AgentConfig
from hopmem.agents.deps import GraphDeps
from hopmem.agents.evidence import as_passages, fuse_lists
from hopmem.agents.hyde import hypothetical_query
from hopmem.agents.llm.base import Message
from hopmem.agents.state import AgentState
from hopmem.eval.memory import AGENT_SETTINGS, CATEGORIES, MEMORY_OPTIONS, _tenant, turn_ranking, turn_recall
from hopmem.memory.conversations import load_conversations
from hopmem.memory_api import Memory
from hopmem.settings import get_settings

CHAT_WORDING: list[Message] = [
    {"role": "system", "content": "You write one message of a chat between friends."},
    {
        "role": "user",
        "content": "Write a short chat message (two sentences) in which the person asked about talks about their "
        "life in a way that answers the question.\nQuestion: {q}",
    },
]
"""The wording tried against the kept one (``passage``: the agent's :func:`hopmem.agents.hyde.hypothetical_query`)."""

VARIANTS = ("hybrid", "fused", "fused+hyde", "fused+hyde@0.5")


def chat_messages(question: str) -> list[Message]:
    return [{**m, "content": m["content"].replace("{q}", question)} for m in CHAT_WORDING]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, type=Path, help="LoCoMo-format JSON file")
    parser.add_argument("--conversations", default="", help="comma-separated sample ids (default: all)")
    parser.add_argument("--prompt", choices=("passage", "chat"), default="passage", help="the guess's wording")
    parser.add_argument("--max-tokens", type=int, default=60, help="tokens of a guess")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args()
    settings = get_settings().model_copy(update={"llm_backend": "llamacpp"})
    llm = configured_llm(settings)
    assert llm is not None
    wanted = {c for c in args.conversations.split(",") if c}
    conversations = [c for c in load_conversations(args.dataset) if not wanted or c.id in wanted]
    started = time.perf_counter()
    recall: dict[str, dict[tuple[str, int], list[float]]] = {v: defaultdict(list) for v in VARIANTS}
    guess_seconds = 0.0
    names = {f.name for f in dataclasses.fields(AgentConfig)}
    changes = {k: v for k, v in AGENT_SETTINGS.items() if k in names}
    config = AgentConfig.from_settings(settings, **{**changes, "hyde": False})  # the guess is added below
    with tempfile.TemporaryDirectory(prefix="hopmem-hyde-") as tmp:
        for conv in conversations:
            tenant = _tenant(conv.id)
            memory = Memory(settings.model_copy(update={"data_dir": Path(tmp) / conv.id, "tenant": tenant}))
            try:
                memory.add_conversation(conv, progress=False, **MEMORY_OPTIONS)
                memory.use_conversation_search()
                searcher = memory.searcher
                deps = GraphDeps(searcher, config=config)
                known = {t.dia_id for t in conv.turns}

                def search(query: str, k: int = 30) -> list[dict[str, Any]]:
                    return as_passages(searcher.search(tenant, query, k=k, mode="hybrid"))  # noqa: B023

                def turns(passages: list[dict[str, Any]]) -> list[str]:
                    ids = [int(p["id"]) for p in passages]
                    records = {r.id: r for r in memory.get_many(ids)}  # noqa: B023
                    return turn_ranking([records[i] for i in ids if i in records])

                for question in tqdm(conv.questions, desc=conv.id, unit="q"):
                    evidence = [e for e in question.evidence if e in known]
                    if not evidence:
                        continue
                    state: AgentState = {"question": question.question, "tenant": tenant, "history": []}
                    state.update(nodes.plan(state, deps))
                    state.update(nodes.retrieve(state, deps))  # the agent's own first round, without a guess
                    lists = state["lists"]
                    t0 = time.perf_counter()
                    if args.prompt == "passage":  # the agent's own guess (agents/hyde.py)
                        query, _ = hypothetical_query(llm, question.question, max_tokens=args.max_tokens)
                    else:
                        reply = llm.complete(chat_messages(question.question), max_tokens=args.max_tokens)
                        query = f"{question.question} {' '.join(reply.text.split())}"
                    guess_seconds += time.perf_counter() - t0
                    hyde = search(query or question.question)

                    def fused(extra: dict[str, Any], weights: dict[str, float] | None = None) -> list[str]:
                        return turns(fuse_lists(searcher, tenant, {**lists, **extra}, depth=20, weights=weights))  # noqa: B023

                    ranked = {
                        "hybrid": turns(search(question.question, 10)),
                        "fused": fused({}),
                        "fused+hyde": fused({"hyde": hyde}),
                        "fused+hyde@0.5": fused({"hyde": hyde}, {"hyde": 0.5}),
                    }
                    category = CATEGORIES.get(question.category, f"category {question.category}")
                    for variant, ranking in ranked.items():
                        for k in (5, 10):
                            value = turn_recall(ranking, evidence, k)
                            recall[variant][(category, k)].append(value)
                            recall[variant][("overall", k)].append(value)
            finally:
                memory.close()
    groups = [*CATEGORIES.values(), "overall"]
    table = {
        variant: {
            group: {
                "n": len(values[(group, 5)]),
                **{f"recall@{k}": round(sum(values[(group, k)]) / len(values[(group, k)]), 4) for k in (5, 10)},
            }
            for group in groups
            if values[(group, 5)]
        }
        for variant, values in recall.items()
    }
    n = len(recall["hybrid"][("overall", 5)])
    report = {
        "dataset": args.dataset.name,
        "conversations": [c.id for c in conversations],
        "questions": n,
        "prompt": args.prompt,
        "max_tokens": args.max_tokens,
        "llm": llm.name,
        "variants": table,
        "seconds_per_guess": round(guess_seconds / max(n, 1), 3),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "command": " ".join(sys.argv),
    }
    print(json.dumps(report, indent=1))
    print(f"{'variant':16}" + "".join(f"{g[:11]:>14}" for g in groups))
    for variant, row in table.items():
        cells = "".join(
            f"{row[g]['recall@5']:.3f}/{row[g]['recall@10']:.3f}".rjust(14) if g in row else " " * 14 for g in groups
        )
        print(f"{variant:16}{cells}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
