"""Data helpers shared by the notebooks: where the shared data sets are, and small slices of them.

The notebooks run on a 2-core CPU in a few minutes, so they work on slices of the BEIR folders under
``../shared/data`` (the data sets the project's tests and benchmarks use): a handful of judged queries, their judged
documents and a share of the other documents as distractors, written as a BEIR folder of its own in a temporary
directory. The data root is ``HOPMEM_SHARED_DATA`` when set, else the ``shared/data`` folder beside the repository
(found the way the benchmarks find it, :func:`hopmem.bench.corpus.default_data_root`). Nothing here downloads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path


def data_root() -> Path | None:
    """The folder that holds ``cranfield/``, ``hotpotqa/``, ``locomo/``..., or None when there is none."""
    explicit = os.environ.get("HOPMEM_SHARED_DATA")
    if explicit:
        return Path(explicit).expanduser()
    from hopmem.bench.corpus import default_data_root

    return default_data_root()


def shared_dataset(name: str) -> Path:
    """The shared data set ``name`` (a folder under :func:`data_root`).

    Raises:
        FileNotFoundError: in one sentence saying where it was looked for.
    """
    root = data_root()
    folder = root / name if root is not None else None
    if folder is None or not folder.is_dir():
        where = f"{root}" if root is not None else "../shared/data beside the repository"
        raise FileNotFoundError(
            f"The data set {name!r} is not in {where}; put the shared data there or set HOPMEM_SHARED_DATA."
        )
    return folder


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_qrels(path: Path) -> list[tuple[str, str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(line.split("\t")[:3]) for line in lines if line.strip()]  # type: ignore[misc]


def beir_slice(
    source: Path,
    out: Path,
    splits: dict[str, Sequence[str]],
    *,
    distractors: Callable[[dict], bool] = lambda doc: False,
) -> Path:
    """Write a small BEIR folder at ``out``: the given queries per qrels split, every document judged for them, and
    the documents ``distractors`` picks (the rest of the corpus is left out).

    Args:
        source: a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).
        out: the new folder (made).
        splits: for each split of the new folder, the query ids it holds and the source qrels file they are
            judged in, as ``{"dev": ["101", ...]}``; the source qrels file is the one of that name, else the only one.
        distractors: which unjudged documents to keep (by the corpus line).

    Returns:
        ``out``.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    qrel_files = sorted((source / "qrels").glob("*.tsv"))
    judged: set[str] = set()
    for split, ids in splits.items():
        wanted = set(ids)
        path = source / "qrels" / f"{split}.tsv"
        rows = _read_qrels(path if path.is_file() else qrel_files[0])
        kept = [r for r in rows if r[0] in wanted]
        judged |= {r[1] for r in kept}
        body = "".join("\t".join(r) + "\n" for r in kept)
        (out / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + body, encoding="utf-8")
    all_ids = {q for ids in splits.values() for q in ids}
    queries = [q for q in _read_jsonl(source / "queries.jsonl") if q["_id"] in all_ids]
    corpus = [d for d in _read_jsonl(source / "corpus.jsonl") if d["_id"] in judged or distractors(d)]
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (out / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    return out
