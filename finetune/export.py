"""Copy a trained reranker into the package (``hopmem/agents/reranker_weights/<recipe>``).

Two kinds ship: LoRA adapters of the LLM rerankers (:func:`export_adapter`) and the default cross-encoder, packed
(:func:`export_cross_encoder`: only the tensors it trained, in float16, over the packaged MiniLM; see
:mod:`hopmem.agents.rerank.cross_encoder_pack`).

The copy stores the weights in float16: a rank-16 adapter on every projection of SmolLM2-135M is 19.6 MB in float32
and 9.8 MB in half precision, and peft casts half-precision adapter weights back to float32 when it loads them, so
scoring still runs in float32. The copy's scores differ from the original's by float16 rounding only; the shipped
copy is the one ``hopmem eval rerank`` measures, so a report describes the file that ships.

Usage: ``python -m hopmem.finetune.export runs/prorank-cranfield --recipe prorank``, then ``hopmem eval rerank`` on
the exported copy, then the same export with ``--eval-report REPORT`` (repeatable) to put its results into the card
(the weights are cast the same way again, so the file is unchanged).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from hopmem.memory.errors import InputError

CARRIED_FILES = ("hopmem_reranker.json", "README.md", "metrics.json", "data.json")
WEIGHTS_FILE = "adapter_model.safetensors"


def evaluation_section(report: dict[str, Any]) -> str:
    """The model card's section on how the shipped file ranked: every row of a ``hopmem eval rerank`` report."""
    lines = [
        "",
        f"## Evaluation of this file ({report['dataset']} {report['split']}, {report['n_queries']} queries, "
        f"{report['candidates']} top {report['depth']} candidates)",
        "| candidates | reranker | nDCG@10 | recall@10 | MRR@10 | p50 ms |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        m = row["metrics"]
        lines.append(
            f"| {row['candidates']} | {row['reranker']} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | "
            f"{m['mrr@10']:.4f} | {row['latency_ms']['p50']:.0f} |"
        )
    lines += ["", f"Command: `{report.get('command') or 'hopmem eval rerank'}` (revision {report.get('git_revision')})"]
    return "\n".join(lines) + "\n"


def export_adapter(
    src: Path | str, dst: Path | str, *, half: bool = True, evaluation: dict[str, Any] | None = None
) -> Path:
    """Write the adapter of ``src`` to ``dst`` (replaced): weights (float16 when ``half``), ``adapter_config.json``
    with the base model as named in ``hopmem_reranker.json``, the record, card, metrics and query splits; with
    ``evaluation`` (a ``hopmem eval rerank`` report of the exported file) the card gets its results.

    Raises:
        InputError: when ``src`` holds no adapter in safetensors or no ``hopmem_reranker.json``.
    """
    import torch
    from safetensors.torch import load_file, save_file

    from hopmem.agents.rerank.model_paths import RECORD_FILE, read_reranker_record
    from hopmem.finetune.reranker_data import portable_adapter_config

    src, dst = Path(src), Path(dst)
    if not (src / WEIGHTS_FILE).is_file() or not (src / "adapter_config.json").is_file():
        raise InputError(f"{src} holds no peft adapter ({WEIGHTS_FILE} and adapter_config.json); train one first.")
    record = read_reranker_record(src)
    if not record:
        raise InputError(f"{src} has no {RECORD_FILE}; only adapters trained by `hopmem finetune reranker` ship.")
    tensors = load_file(str(src / WEIGHTS_FILE))
    if half:
        tensors = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    save_file(tensors, str(dst / WEIGHTS_FILE), metadata={"format": "pt"})
    shutil.copy2(src / "adapter_config.json", dst / "adapter_config.json")
    portable_adapter_config(dst, str(record.get("base_model") or ""))
    for name in CARRIED_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    card = dst / "README.md"
    text = card.read_text(encoding="utf-8").rstrip("\n") + "\n" if card.is_file() else ""
    if half:
        text += (
            "\nThis copy stores the weights in float16 (`python -m hopmem.finetune.export`); peft casts them to "
            "float32 when it loads them, so scoring runs in float32.\n"
        )
    if evaluation is not None:
        text += evaluation_section(evaluation)
    card.write_text(text, encoding="utf-8")
    return dst


def export_cross_encoder(src: Path | str, dst: Path | str, *, evaluations: list[dict[str, Any]] | None = None) -> Path:
    """Pack the cross-encoder trained in ``src`` into ``dst`` (replaced): the tensors that differ from its base
    encoder in float16, the hashes of those that do not (the word embeddings, when they were frozen), the blend
    weight, card, metrics and query splits; each of ``evaluations`` (``hopmem eval rerank`` reports of the packed
    copy) adds a section to the card.

    Raises:
        InputError: when ``src`` holds no trained cross-encoder with its blend weight, or when nothing of it equals
            its base (trained with ``--no-freeze-embeddings``: the packed copy would be as large as the model).
    """
    import torch
    from safetensors.torch import load_file, save_file

    from hopmem.agents.rerank.cross_encoder import BLEND_FILE, CrossEncoderReranker, init_cross_encoder
    from hopmem.agents.rerank.cross_encoder_pack import PACK_RECORD, PACK_WEIGHTS, tensor_sha256
    from hopmem.memory.model_paths import resolve_embedder_path

    src, dst = Path(src), Path(dst)
    if not (src / "model.safetensors").is_file() or not (src / BLEND_FILE).is_file():
        raise InputError(f"{src} holds no trained cross-encoder (model.safetensors, {BLEND_FILE}); train one first.")
    metrics = json.loads((src / "metrics.json").read_text(encoding="utf-8")) if (src / "metrics.json").is_file() else {}
    base_name = str((metrics.get("base_model") or {}).get("name") or "all-MiniLM-L6-v2")
    max_length = CrossEncoderReranker(src).max_length
    base_net: Any = init_cross_encoder(resolve_embedder_path(base_name), seed=0, max_length=max_length).model
    base_state = base_net.state_dict()
    trained = load_file(str(src / "model.safetensors"))
    omitted = {
        key: tensor_sha256(value)
        for key, value in trained.items()
        if value.is_floating_point() and key in base_state and torch.equal(value, base_state[key].to(value.dtype))
    }
    if not omitted:
        raise InputError(
            f"Every tensor of {src} differs from {base_name}; train it with frozen word embeddings (the default) to "
            "pack it."
        )
    kept = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in trained.items() if k not in omitted}
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    save_file(kept, str(dst / PACK_WEIGHTS), metadata={"format": "pt"})
    record = json.loads((src / BLEND_FILE).read_text(encoding="utf-8"))
    record["packed"] = {
        "base_model": base_name,
        "omitted": omitted,
        "dtype": "float16",
        "max_length": max_length,
    }
    (dst / PACK_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    for name in CARRIED_FILES:
        if name != "hopmem_reranker.json" and (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    card = dst / "README.md"
    text = card.read_text(encoding="utf-8").rstrip("\n") + "\n" if card.is_file() else ""
    size = (dst / PACK_WEIGHTS).stat().st_size / 1e6
    text += (
        f"\nThis copy is packed (`python -m hopmem.finetune.export --recipe cross-encoder`, {size:.1f} MB): the "
        f"tensors training changed, in float16, over the packaged {base_name}, whose unchanged tensors "
        f"({', '.join(sorted(omitted))}) are checked by hash at load; scoring runs in float32.\n"
    )
    for evaluation in evaluations or []:
        text += evaluation_section(evaluation)
    card.write_text(text, encoding="utf-8")
    return dst


def main(argv: list[str] | None = None) -> None:
    from hopmem.agents.rerank.cross_encoder_pack import PACK_WEIGHTS
    from hopmem.agents.rerank.model_paths import shipped_adapter_dir, shipped_cross_encoder_dir

    parser = argparse.ArgumentParser(description="Copy a trained reranker into the package (float16).")
    parser.add_argument("src", type=Path, help="model or adapter folder written by `hopmem finetune reranker`")
    parser.add_argument(
        "--recipe", default="prorank", help="prorank, rank-r1 or cross-encoder (names the shipped folder)"
    )
    parser.add_argument("--dst", type=Path, default=None, help="target folder (default: the package's)")
    parser.add_argument("--float32", action="store_true", help="adapters: keep the weights in float32")
    parser.add_argument(
        "--eval-report",
        type=Path,
        action="append",
        default=[],
        help="`hopmem eval rerank` JSON of the exported file (repeat for several data sets)",
    )
    args = parser.parse_args(argv)
    evaluations = [json.loads(path.read_text(encoding="utf-8")) for path in args.eval_report]
    if args.recipe == "cross-encoder":
        out = export_cross_encoder(args.src, args.dst or shipped_cross_encoder_dir(), evaluations=evaluations)
        size = (out / PACK_WEIGHTS).stat().st_size / 1e6
    else:
        if len(evaluations) > 1:
            raise InputError("An adapter's card takes one --eval-report.")
        dst = args.dst or shipped_adapter_dir(args.recipe)
        out = export_adapter(args.src, dst, half=not args.float32, evaluation=evaluations[0] if evaluations else None)
        size = (out / WEIGHTS_FILE).stat().st_size / 1e6
    print(f"{args.src} -> {out} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
