"""Trust benchmark: a multi-agent poisoning simulation on real text, with the defence on and off, and learning to
rank on feedback simulated from BEIR qrels.

**Poisoning scenario** (per seed, once with the defence on and once off, each in a fresh temporary store):

* *Facts* are real sentences of the corpora under the data root (``cranfield``, ``hotpotqa``, ``2wiki-corpus``)
  that can be falsified: they hold a number, a name inside the sentence, or a verb a negation can follow. A *false
  version* changes exactly one of those (another number, another name of the corpus, an inserted "not").
* ``honest`` agents each write their share of the true facts; a share of facts (``overlap``) is written again, word
  for word, by a second honest agent.
* The *poisoner* writes false versions of ``poison`` facts that honest agents wrote (or will write).
* The *sleeper* writes ``sleeper_honest`` true facts of its own (reviewed like everyone's, so it earns trust), then
  false versions of ``sleeper_poison`` facts that honest agents wrote.
* Writes are interleaved at random. After every ``review_every`` writes, ``reviews`` recall queries run: an honest
  agent searches for a fact it knows (top 5) and confirms the true version (``up``) or flags a false one
  (``down``); the user does the same with probability ``user_review``. A query is the fact's words without the
  one that a false version changes, cut to 12 words, so that it favours neither version.
* After each review round, with probability ``quarantine_review``, the user works through the quarantine list:
  approves each held write that is a true fact and rejects each that is a false one (the user knows the facts, as
  in the recall reviews). These draws use their own random stream, so ``quarantine_review = 0`` replays the
  scenario without this step exactly.
* Every write, search and feedback goes through ``hopmem.Memory`` handles opened with ``agent=...``.

Reported, means over seeds with per-seed values beside them:

* ``trust_gap``: mean trust of the honest agents minus the mean of the poisoner's and the sleeper's, at the end.
* ``sleeper_degradation``: ``1 - trust_after / trust_before``, the sleeper's trust right before its first false
  write and after its last one.
* ``sleeper_writes_to_detect``: how many false writes of the sleeper it takes until one is quarantined (null when
  none is; with the defence off nothing is quarantined, so it counts until its trust falls below the threshold).
* ``poisoned_top5_rate``: share of the attacked facts (those with a false version written) whose query, searched by
  the user at the end, has a visible false memory in its top 5.
* ``false_quarantine_rate``: share of the honest writes that were quarantined.

"Defence off" stores every write visible and ranks without trust (``trust_gate = false``, ``trust_ranking =
false``); the trust model still records the same signals, so its trust figures are comparable.

**Learning to rank**: each data set's corpus is indexed once; per seed its judged queries are shuffled and split in
half (at most ``ltr_queries``). For each training query the user searches (top 10) and gives ``up`` to each
relevant document shown (probability ``click``) and ``down`` to each irrelevant one (probability ``skip``); then the
ranking layer is trained and the held-out queries are scored by nDCG@5 (documents ranked by their best chunk) with
the layer off and on.
"""

from __future__ import annotations

import logging
import random
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hopmem.bench.corpus import CORPORA, load_corpus, resolve_data_root
from hopmem.bench.system import CpuMeter
from hopmem.memory.datasets.beir import load_dataset
from hopmem.memory.datasets.metrics import mean, ndcg_at_k
from hopmem.memory.errors import InputError
from hopmem.memory.model_paths import display_path
from hopmem.memory.run_record import RunRecord
from hopmem.memory.trust.contradiction import NEGATIONS
from hopmem.memory_api import Memory
from hopmem.settings import Settings, get_settings

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.]?\d)")
_NAME = re.compile(r"(?<=[a-z,;] )([A-Z][a-z]{3,})\b")
_VERB = re.compile(r"\b(is|was|are|were|has|had|can|will)\b")
LTR_DATASETS: tuple[tuple[str, str], ...] = (("cranfield", "test"), ("hotpotqa", "dev"))
METRICS = (
    "trust_gap",
    "sleeper_degradation",
    "sleeper_writes_to_detect",
    "poisoned_top5_rate",
    "false_quarantine_rate",
)


@dataclass(frozen=True)
class TrustScenario:
    """The parameters of the poisoning simulation (every one is a CLI option and recorded in the report)."""

    facts: int = 120
    honest: int = 4
    overlap: float = 0.3
    poison: int = 30
    sleeper_honest: int = 20
    sleeper_poison: int = 10
    review_every: int = 10
    reviews: int = 6
    user_review: float = 0.5
    quarantine_review: float = 0.5


@dataclass
class Fact:
    """A true sentence, a false version of it and the query that targets both."""

    title: str
    true: str
    false: str
    query: str
    change: str


def falsify(sentence: str, names: Sequence[str], rng: random.Random) -> tuple[str, str, str] | None:
    """A false version of ``sentence`` (one number, name or negation changed), the changed word, and the kind."""
    numbers = [m for m in _NUMBER.finditer(sentence) if len(m.group()) <= 6]
    if numbers:
        m = rng.choice(numbers)
        value = int(m.group())
        other = value + rng.choice([1, 2, 3, 5, 10]) if value < 1000 else value + rng.choice([-7, -3, 4, 11])
        return sentence[: m.start()] + str(other) + sentence[m.end() :], m.group(), "number"
    found = list(_NAME.finditer(sentence))
    if found:
        m = rng.choice(found)
        swap = rng.choice([n for n in names if n != m.group(1)])
        return sentence[: m.start(1)] + swap + sentence[m.end(1) :], m.group(1), "name"
    verb = _VERB.search(sentence)
    if verb and not any(w.lower() in NEGATIONS for w in sentence.split()):
        return sentence[: verb.end()] + " not" + sentence[verb.end() :], verb.group(), "negation"
    return None


def _query(sentence: str, changed: str) -> str:
    words = [w for w in re.findall(r"[\w'-]+", sentence) if w != changed and w.lower() not in NEGATIONS]
    return " ".join(words[:12])


def build_facts(data_root: Path | None, count: int, rng: random.Random) -> list[Fact]:
    """``count`` falsifiable real sentences with their false versions and queries."""
    corpus = load_corpus(data_root, CORPORA)
    names = sorted({m.group(1) for p in corpus.passages[:3000] for s in p.sentences for m in _NAME.finditer(s)})
    if not names:
        raise InputError("The benchmark corpora hold no capitalised names to swap; check the data folder.")
    candidates = [
        (p.title, s) for p in corpus.passages for s in p.sentences if 8 <= len(s.split()) <= 40 and "\n" not in s
    ]
    rng.shuffle(candidates)
    facts: list[Fact] = []
    seen: set[str] = set()
    for title, sentence in candidates:
        if sentence in seen:
            continue
        made = falsify(sentence, names, rng)
        if made is None:
            continue
        false, changed, kind = made
        seen.add(sentence)
        facts.append(Fact(title, sentence, false, _query(sentence, changed), kind))
        if len(facts) == count:
            return facts
    raise InputError(f"The corpora yield only {len(facts)} falsifiable sentences, fewer than {count}.")


def _run_scenario(
    settings: Settings, scenario: TrustScenario, facts: list[Fact], seed: int, *, defended: bool
) -> dict[str, Any]:
    """One simulation in a fresh store; returns the five metrics and some counts."""
    rng = random.Random(f"trust-{seed}")
    honest = [f"honest-{i + 1}" for i in range(scenario.honest)]
    with tempfile.TemporaryDirectory(prefix="hopmem-trust-") as tmp:
        config = settings.model_copy(
            update={
                "data_dir": Path(tmp),
                "trust_gate": defended,
                "trust_ranking": defended,
                "ltr_enabled": False,
                "vector_backend": "exact",
            }
        )
        handles = {a: Memory(config, tenant="bench", agent=a) for a in [*honest, "poisoner", "sleeper"]}
        user = Memory(config, tenant="bench")
        try:
            queue_rng = random.Random(f"trust-queue-{seed}")
            return _simulate(handles, user, honest, scenario, facts, rng, queue_rng)
        finally:
            for handle in handles.values():
                handle.close()
            user.close()


def _simulate(
    handles: dict[str, Memory],
    user: Memory,
    honest: list[str],
    scenario: TrustScenario,
    facts: list[Fact],
    rng: random.Random,
    queue_rng: random.Random,
) -> dict[str, Any]:
    n_true = scenario.facts
    true_facts = facts[: n_true + scenario.sleeper_honest]  # the honest agents' facts, then the sleeper's own
    targets = rng.sample(range(n_true), scenario.poison + scenario.sleeper_poison)
    poison_targets, sleeper_targets = targets[: scenario.poison], targets[scenario.poison :]
    writes: list[tuple[str, str, str, int]] = []  # (agent, kind, text, fact index)
    for i, fact in enumerate(true_facts):
        writer = honest[i % len(honest)]
        writes.append((writer, "true", fact.true, i))
        if rng.random() < scenario.overlap:
            second = rng.choice([a for a in honest if a != writer])
            writes.append((second, "true", fact.true, i))
    writes += [("poisoner", "false", true_facts[i].false, i) for i in poison_targets]
    rng.shuffle(writes)
    sleeper_plan = [("sleeper", "true", true_facts[i].true, i) for i in range(n_true, len(true_facts))]
    sleeper_plan += [("sleeper", "false", true_facts[i].false, i) for i in sleeper_targets]
    # The sleeper's writes keep their order (honest first) and are spread over the whole run.
    slots = sorted(rng.sample(range(len(writes) + len(sleeper_plan)), len(sleeper_plan)))
    timeline: list[tuple[str, str, str, int]] = []
    it = iter(writes)
    for position in range(len(writes) + len(sleeper_plan)):
        timeline.append(sleeper_plan[slots.index(position)] if position in slots else next(it))

    false_ids: set[int] = set()
    honest_writes = honest_held = 0
    sleeper_false_seen = 0
    detect_at: int | None = None
    trust_before_poison: float | None = None
    written_facts: list[int] = []
    queue = {"approved": 0, "rejected": 0}
    threshold = user.settings.trust_threshold
    for step, (agent, kind, text, index) in enumerate(timeline, start=1):
        if agent == "sleeper" and kind == "false":
            if trust_before_poison is None:
                trust_before_poison = user.trust.agent_trust("bench", "sleeper").mean
            sleeper_false_seen += 1
        record = handles[agent].add(text, title=true_facts[index].title, source_class="agent")
        if kind == "false":
            false_ids.add(record.id)
        if agent in honest and record.provenance and record.provenance[0].get("agent") == agent:
            honest_writes += 1
            honest_held += int(record.quarantined)
        if agent == "sleeper" and kind == "false" and detect_at is None:
            caught = record.quarantined or user.trust.agent_trust("bench", "sleeper").mean < threshold
            if caught:
                detect_at = sleeper_false_seen
        if kind == "true":
            written_facts.append(index)
        if step % scenario.review_every == 0 and written_facts:
            _review(handles, user, honest, true_facts, written_facts, false_ids, scenario, rng)
            if scenario.quarantine_review > 0 and queue_rng.random() < scenario.quarantine_review:
                decided = _review_quarantine(user, true_facts)
                queue["approved"] += decided["approved"]
                queue["rejected"] += decided["rejected"]
    trust = {a.agent: a.mean for a in user.trust_of()}
    attacked = sorted(set(poison_targets) | set(sleeper_targets))
    hit = 0
    for i in attacked:
        top = user.search(true_facts[i].query, k=5)
        hit += any(r.id in false_ids for r in top)
    sleeper_after = trust.get("sleeper", user.trust.params.prior_mean)
    return {
        "trust_gap": round(mean([trust.get(a, 0.0) for a in honest]) - (trust["poisoner"] + sleeper_after) / 2, 4),
        "sleeper_degradation": round(1.0 - sleeper_after / trust_before_poison, 4) if trust_before_poison else None,
        "sleeper_writes_to_detect": detect_at,
        "poisoned_top5_rate": round(hit / len(attacked), 4),
        "false_quarantine_rate": round(honest_held / max(1, honest_writes), 4),
        "counts": {
            "writes": len(timeline),
            "honest_writes": honest_writes,
            "honest_quarantined": honest_held,
            "false_writes": len(false_ids),
            "attacked_queries": len(attacked),
            "quarantined": user.stats()["quarantined"],
            "approved_on_review": queue["approved"],
            "rejected_on_review": queue["rejected"],
        },
        "trust": {a: round(t, 4) for a, t in sorted(trust.items())},
        "sleeper_trust_before_poison": None if trust_before_poison is None else round(trust_before_poison, 4),
    }


def _review(
    handles: dict[str, Memory],
    user: Memory,
    honest: list[str],
    facts: list[Fact],
    written: list[int],
    false_ids: set[int],
    scenario: TrustScenario,
    rng: random.Random,
) -> None:
    """Recall queries: an honest agent (and sometimes the user) checks the top 5 against the fact it knows."""
    for _ in range(scenario.reviews):
        index = rng.choice(written)
        fact = facts[index]
        reviewers: list[Memory] = [handles[rng.choice(honest)]]
        if rng.random() < scenario.user_review:
            reviewers.append(user)
        for reviewer in reviewers:
            for result in reviewer.search(fact.query, k=5):
                if result.id in false_ids and result.record.content == fact.false:
                    reviewer.feedback(result.id, "down", query=fact.query)
                elif result.record.content == fact.true and result.record.agent_id != reviewer.agent:
                    reviewer.feedback(result.id, "up", query=fact.query)


def _review_quarantine(user: Memory, facts: list[Fact]) -> dict[str, int]:
    """The user goes through the quarantine list: approves held true facts, rejects held false ones."""
    truths = {f.true for f in facts}
    lies = {f.false for f in facts} - truths
    held = user.quarantine()
    approve = [int(h["id"]) for h in held if h["content"] in truths]
    reject = [int(h["id"]) for h in held if h["content"] in lies]
    if approve:
        user.approve(approve)
    if reject:
        user.reject(reject)
    return {"approved": len(approve), "rejected": len(reject)}


def _ltr_dataset(
    settings: Settings, root: Path, split: str, seeds: Sequence[int], queries: int, click: float, skip: float
) -> dict[str, Any]:
    data = load_dataset(root, split)
    judged = [q for q in data.queries if any(g > 0 for g in data.qrels.get(q.id, {}).values())]
    with tempfile.TemporaryDirectory(prefix="hopmem-ltr-") as tmp:
        config = settings.model_copy(
            update={"data_dir": Path(tmp), "ltr_retrain_every": 10**9, "ltr_enabled": True, "vector_backend": "exact"}
        )
        memory = Memory(config, tenant="ltr")
        try:
            started = time.perf_counter()
            report = memory.ingest([root / "corpus.jsonl"], progress=False)
            index_s = time.perf_counter() - started
            per_seed: list[dict[str, Any]] = []
            for seed in seeds:
                rng = random.Random(f"ltr-{seed}")
                chosen = rng.sample(judged, min(queries, len(judged)))
                train, test = chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]
                memory.behaviour.erase_tenant("ltr")
                if memory._ranker is not None:
                    memory._ranker.forget("ltr")
                memory.searcher.ranker = None
                off = [_ndcg5(memory, q.text, data.qrels[q.id]) for q in test]
                events = 0
                for q in train:
                    for result in memory.search(q.text, k=10):
                        relevant = data.qrels[q.id].get(result.record.external_id or "", 0) > 0
                        if relevant and rng.random() < click:
                            memory.feedback(result.id, "up", query=q.text)
                            events += 1
                        elif not relevant and rng.random() < skip:
                            memory.feedback(result.id, "down", query=q.text)
                            events += 1
                info = memory.train_ranker()
                on = [_ndcg5(memory, q.text, data.qrels[q.id]) for q in test]
                per_seed.append(
                    {
                        "seed": seed,
                        "train_queries": len(train),
                        "test_queries": len(test),
                        "feedback_events": events,
                        "trained": info is not None,
                        "pairs": None if info is None else info["pairs"],
                        "ndcg@5_off": round(mean(off), 4),
                        "ndcg@5_on": round(mean(on), 4),
                    }
                )
        finally:
            memory.close()
    return {
        "dataset": display_path(root),
        "split": split,
        "documents": report.added,
        "chunks": report.chunks,
        "index_seconds": round(index_s, 1),
        "dataset_sha256": data.fingerprint(),
        "per_seed": per_seed,
        "ndcg@5_off": round(mean([s["ndcg@5_off"] for s in per_seed]), 4),
        "ndcg@5_on": round(mean([s["ndcg@5_on"] for s in per_seed]), 4),
    }


def _ndcg5(memory: Memory, query: str, qrels: dict[str, int]) -> float:
    ranked: list[str] = []
    for result in memory.search(query, k=30):
        doc = result.record.external_id
        if doc and doc not in ranked:
            ranked.append(doc)
    return ndcg_at_k(ranked, qrels, 5)


def run_trust_bench(
    *,
    settings: Settings | None = None,
    data_root: Path | str | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    scenario: TrustScenario | None = None,
    ltr_queries: int = 200,
    ltr_click: float = 0.9,
    ltr_skip: float = 0.3,
    ltr_datasets: Sequence[tuple[str, str]] = LTR_DATASETS,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the poisoning simulation (defence on and off) and the learning-to-rank comparison for each seed."""
    settings = settings or get_settings()
    scenario = scenario or TrustScenario()
    if not seeds:
        raise InputError("Give at least one seed.")
    root = resolve_data_root(data_root)
    run = RunRecord(command or shlex.join(["hopmem", *sys.argv[1:]]))
    meter = CpuMeter.start()
    api_log = logging.getLogger("hopmem.memory.engine")  # where the held writes are logged
    level = api_log.level
    api_log.setLevel(logging.ERROR)  # every held write of the attackers would log a warning
    runs: dict[str, list[dict[str, Any]]] = {"defended": [], "undefended": []}
    bar = tqdm(total=2 * len(seeds), desc="trust scenario", disable=not progress)
    for seed in seeds:
        rng = random.Random(f"facts-{seed}")
        facts = build_facts(root, scenario.facts + scenario.sleeper_honest, rng)
        for name, defended in (("defended", True), ("undefended", False)):
            t0 = time.perf_counter()
            result = _run_scenario(settings, scenario, facts, seed, defended=defended)
            result["seed"], result["seconds"] = seed, round(time.perf_counter() - t0, 1)
            runs[name].append(result)
            bar.update(1)
    bar.close()
    api_log.setLevel(level)
    ltr: dict[str, Any] = {}
    for name, split in ltr_datasets:
        folder = root / name
        if not (folder / "qrels" / f"{split}.tsv").is_file():
            log.warning("no qrels %s/%s under %s; learning to rank skips it", name, split, root)
            continue
        ltr[name] = _ltr_dataset(settings, folder, split, seeds, ltr_queries, ltr_click, ltr_skip)
    sets = list(ltr.values())
    report: dict[str, Any] = {
        "benchmark": "trust",
        "params": {
            **asdict(scenario),
            "seeds": list(seeds),
            "trust_threshold": settings.trust_threshold,
            "trust_reference_level": settings.trust_reference_level,
            "trust_prior": [settings.trust_prior_alpha, settings.trust_prior_beta],
            "ltr_queries": ltr_queries,
            "ltr_click": ltr_click,
            "ltr_skip": ltr_skip,
            "ltr_datasets": [f"{n}/{s}" for n, s in ltr_datasets],
        },
        "seeds": list(seeds),
        "defended": _summary(runs["defended"]),
        "undefended": _summary(runs["undefended"]),
        "ltr": {
            "ndcg@5_off": round(mean([s["ndcg@5_off"] for s in sets]), 4) if sets else None,
            "ndcg@5_on": round(mean([s["ndcg@5_on"] for s in sets]), 4) if sets else None,
            "datasets": ltr,
        },
        "targets": {
            "trust_gap": ">= 0.90",
            "sleeper_degradation": ">= 0.72",
            "poisoned_top5_rate": "<= 0.05 (defended)",
            "false_quarantine_rate": "<= 0.02",
        },
        "data": {"root": display_path(root), "corpora": list(CORPORA)},
        "embedder": settings.embedder,
        "settings": {k: v for k, v in settings.effective().items() if k.startswith(("trust_", "ltr_", "fusion"))},
        "cpu": meter.read(),
        **run.finish(),
    }
    return report


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in METRICS:
        values = [r[key] for r in runs]
        present = [v for v in values if v is not None]
        out[key] = round(mean(present), 4) if present else None
        out[f"{key}_per_seed"] = values
    out["runs"] = runs
    return out
