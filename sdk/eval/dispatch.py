"""``hopmem.evaluate(...)``: one entry point over the evaluation harnesses, returning an :class:`EvalReport`.

Each kind calls its harness with the harness's own options (nothing is re-implemented here):

- ``retrieval``: :func:`hopmem.eval.retrieval.evaluate_retrieval` (``method`` may name several: one run each);
- ``qa``: :func:`hopmem.eval.qa.evaluate_qa`, with the variant described as ``hopmem eval qa`` does (``decompose``,
  ``planner``, ``fusion``, ``reranker``, ``treehop``; ``compare``/``vary``) or given as ``variants``;
- ``rerank``: :func:`hopmem.eval.rerank.evaluate_rerank` (``rerankers``, ``candidates``, ``depth``, ...);
- ``multihop``: :func:`hopmem.eval.multihop.evaluate_multihop` (``hops``, ``top_n``, ``llm_baseline``, ...);
- ``memory``: ``hopmem.eval.memory.evaluate_memory`` (long-term memory recall per question category), imported
  when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.eval.display import KINDS, EvalReport
from hopmem.memory.errors import ConfigError, InputError

if TYPE_CHECKING:
    from hopmem.settings import Settings

DEFAULT_SPLIT = {"retrieval": "test", "qa": "dev", "rerank": "dev", "multihop": "dev", "memory": "test"}
"""The split a kind runs when the folder has several qrels files and none is named (the CLI's defaults)."""


def default_split(dataset: Path, kind: str) -> str:
    """The folder's only qrels split when it has one, else the kind's usual split."""
    splits = sorted(p.stem for p in (dataset / "qrels").glob("*.tsv")) if (dataset / "qrels").is_dir() else []
    return splits[0] if len(splits) == 1 else DEFAULT_SPLIT[kind]


def _call(harness: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run a harness; an option it does not take is reported in one sentence, not as a TypeError deep inside."""
    try:
        return harness(*args, **kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            name = str(exc).rsplit("argument", 1)[-1].strip(" '\"")
            raise InputError(f"{harness.__name__} takes no option {name!r}; see its docstring.") from exc
        raise


def _retrieval(
    dataset: Path, split: str, common: dict[str, Any], method: str | Sequence[str] = "hybrid", **options: Any
) -> dict[str, Any]:
    from hopmem.eval.retrieval import evaluate_retrieval

    methods = [method] if isinstance(method, str) else list(method)
    if not methods:
        raise InputError("Give at least one retrieval method (bm25, dense, hybrid).")
    if len(methods) == 1:
        return _call(evaluate_retrieval, dataset, split, methods[0], **common, **options)
    json_out = common.pop("json_out", None)
    runs = []
    for name in methods:
        out = Path(json_out).with_name(f"{Path(json_out).stem}.{name}.json") if json_out else None
        runs.append(_call(evaluate_retrieval, dataset, split, name, json_out=out, **common, **options))
    combined = {
        "kind": "retrieval",
        "dataset": runs[0]["dataset"],
        "split": split,
        "n_queries": runs[0]["n_queries"],
        "methods": methods,
        "runs": runs,
    }
    if json_out:
        EvalReport(combined, "retrieval").save(json_out)
    return combined


def _qa(dataset: Path, split: str, common: dict[str, Any], **options: Any) -> dict[str, Any]:
    from hopmem.eval.qa import PIECES, comparison_variants, evaluate_qa, variant_from_options

    variants = options.pop("variants", None)
    compare = bool(options.pop("compare", False))
    vary = options.pop("vary", None)
    described = {k: options.pop(k) for k in ("decompose", "planner", "fusion", "reranker", "treehop") if k in options}
    if variants is None:
        settings = common["settings"]
        base = variant_from_options(**{"planner": settings.planner, **described})
        if isinstance(vary, str):  # as the CLI takes it: "fusion,reranker"
            vary = [p.strip() for p in vary.split(",") if p.strip()]
        pieces = list(vary) if vary else list(PIECES)
        variants = comparison_variants(base, default_reranker=settings.reranker, pieces=pieces) if compare else [base]
    elif described or compare:
        raise InputError("Give either variants= or the options of one variant (decompose, planner, ...), not both.")
    return _call(evaluate_qa, dataset, split, variants=variants, **common, **options)


def _rerank(dataset: Path, split: str, common: dict[str, Any], **options: Any) -> dict[str, Any]:
    from hopmem.eval.rerank import evaluate_rerank

    rerankers = options.pop("rerankers", options.pop("reranker", ("cross-encoder",)))
    rerankers = [rerankers] if isinstance(rerankers, str) else list(rerankers)
    return _call(evaluate_rerank, dataset, split, rerankers, **common, **options)


def _multihop(dataset: Path, split: str, common: dict[str, Any], **options: Any) -> dict[str, Any]:
    from hopmem.eval.multihop import evaluate_multihop

    return _call(evaluate_multihop, dataset, split, **common, **options)


def _memory(dataset: Path, split: str | None, common: dict[str, Any], **options: Any) -> dict[str, Any]:
    try:
        from hopmem.eval import memory as memory_eval  # type: ignore[attr-defined, unused-ignore]
    except ImportError as exc:
        raise ConfigError(
            "The memory evaluation (hopmem.eval.memory) is not in this install; update hopmem to evaluate the "
            "long-term memory."
        ) from exc
    harness: Callable[..., dict[str, Any]] = memory_eval.evaluate_memory
    import inspect

    accepted = inspect.signature(harness).parameters
    passed = {k: v for k, v in common.items() if k in accepted}  # the shared options it takes
    if "max_queries" in common and "max_queries" not in accepted and "limit" in accepted:
        passed["limit"] = common["max_queries"]  # the memory harness calls it limit (questions in file order)
    if split is not None:
        if "split" not in accepted:
            raise InputError("The memory evaluation reads every question of the file; it takes no split.")
        passed["split"] = split
    return _call(harness, dataset, **passed, **options)


HARNESSES: dict[str, Callable[..., dict[str, Any]]] = {
    "retrieval": _retrieval,
    "qa": _qa,
    "rerank": _rerank,
    "multihop": _multihop,
}


def evaluate(
    dataset: Path | str,
    *,
    kind: str = "retrieval",
    split: str | None = None,
    settings: Settings | None = None,
    json_out: Path | str | None = None,
    max_queries: int | None = None,
    progress: bool = True,
    **options: Any,
) -> EvalReport:
    """Evaluate on a BEIR-layout folder and return the report with its notebook display.

    Args:
        dataset: the data set's folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``; for
            ``memory``, what ``hopmem.eval.memory.evaluate_memory`` reads).
        kind: ``retrieval``, ``qa``, ``rerank``, ``multihop`` or ``memory``.
        split: the qrels split (default: the folder's only one, else ``test`` for retrieval and ``dev`` otherwise).
        settings: embedder, chunking, fusion, LLM and reranker settings (the environment's when omitted).
        json_out: write the report there (and the per-query log beside it) as ``hopmem eval`` does.
        max_queries: only the first N judged queries.
        progress: progress bars.
        **options: the harness's own options: ``method`` (one name or several) and ``k`` for retrieval;
            ``decompose``, ``planner``, ``fusion``, ``reranker``, ``treehop``, ``compare``, ``vary`` or
            ``variants``, ``remember``, ``llm`` for qa; ``rerankers``, ``candidates``, ``depth``, ``baselines``,
            ``model_dir``, ``adapter``, ``plot_out`` for rerank; ``hops``, ``top_n``, ``model_dir``,
            ``llm_baseline``, ``llm`` for multihop.

    Returns:
        An :class:`EvalReport`: the harness's report (a dict) that renders as a table and a plot.

    Raises:
        InputError: on an unknown kind or option, a folder that is not in BEIR layout, or a split without queries.
        ConfigError: for ``memory`` when the memory harness is not installed.

    Examples:
        A tiny BEIR folder, evaluated with bm25 and dense retrieval side by side:

        >>> import json, tempfile
        >>> from pathlib import Path
        >>> import hopmem
        >>> root = Path(tempfile.mkdtemp())
        >>> docs = {"d1": "Honeybees dance to tell the hive where flowers are.",
        ...         "d2": "The river flooded the old town in spring.",
        ...         "d3": "Glaciers carve valleys over thousands of years."}
        >>> _ = (root / "corpus.jsonl").write_text("".join(
        ...     json.dumps({"_id": i, "title": "", "text": t}) + "\\n" for i, t in docs.items()))
        >>> _ = (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "bee dance"}) + "\\n"
        ...                                         + json.dumps({"_id": "q2", "text": "flood in town"}) + "\\n")
        >>> (root / "qrels").mkdir()
        >>> _ = (root / "qrels" / "test.tsv").write_text("query-id\\tcorpus-id\\tscore\\nq1\\td1\\t1\\nq2\\td2\\t1\\n")
        >>> report = hopmem.evaluate(root, kind="retrieval", method=["bm25", "dense"], progress=False)
        >>> [row["method"] for row in report.table()]
        ['bm25', 'dense']
        >>> report.table()[0]["recall@10"]
        1.0
        >>> report.kind, report["split"]
        ('retrieval', 'test')
    """
    if kind not in KINDS:
        raise InputError(f"Unknown kind {kind!r}; use one of {', '.join(KINDS)}.")
    root = Path(dataset).expanduser()
    if settings is None:
        from hopmem.settings import get_settings

        settings = get_settings()
    common: dict[str, Any] = {"settings": settings, "json_out": json_out, "progress": progress}
    if max_queries is not None:
        common["max_queries"] = max_queries
    if kind == "memory":
        return EvalReport(_memory(root, split, common, **options), "memory")
    report = HARNESSES[kind](root, split or default_split(root, kind), common, **options)
    return EvalReport(report, kind)
