"""Shared fixtures: every test runs offline, with its own data directory and no user config."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hopmem.memory.embeddings import SentenceTransformerEmbedder

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
HOPMEM = str(Path(sys.executable).with_name("hopmem"))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("HOPMEM_"):
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    (home / "empty.toml").write_text("")
    monkeypatch.setenv("HOPMEM_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("HOPMEM_CONFIG", str(home / "empty.toml"))
    # The default reranker (the cross-encoder `make install` trains into the user's cache) would make results depend
    # on the machine's install; tests that mean a reranker name it (tests/sdk/test_default_reranker.py the default).
    monkeypatch.setenv("HOPMEM_RERANKER", "none")
    yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_beir(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A small BEIR folder cut from Cranfield: 20 judged queries and a corpus of their judged docs plus distractors."""
    src = shared_data / "cranfield"
    root = tmp_path_factory.mktemp("cranfield-small")
    (root / "qrels").mkdir()
    lines = (src / "qrels" / "test.tsv").read_text().splitlines()
    wanted_queries = [str(i) for i in range(1, 21)]
    qrels = [ln for ln in lines[1:] if ln.split("\t")[0] in wanted_queries]
    judged = {ln.split("\t")[1] for ln in qrels}
    corpus = [json.loads(ln) for ln in (src / "corpus.jsonl").read_text().splitlines() if ln.strip()]
    keep = [d for d in corpus if d["_id"] in judged or int(d["_id"]) % 5 == 0]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in keep))
    shutil.copy(src / "queries.jsonl", root / "queries.jsonl")
    (root / "qrels" / "test.tsv").write_text("\n".join([lines[0], *qrels]) + "\n")
    return root


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The packaged MiniLM embedder, loaded once per test session."""
    from hopmem.memory.embeddings import load_embedder

    return load_embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    from hopmem.demo import sample_dir as bundled

    return bundled()


def run_hopmem(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``hopmem`` script as a real process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [HOPMEM, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def small_hotpot(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A small multi-hop BEIR folder cut from HotpotQA: 16 dev and 8 train questions, their supporting paragraphs and
    the paragraphs stored next to them (mostly the same questions' distractors)."""
    src = shared_data / "hotpotqa"
    root = tmp_path_factory.mktemp("hotpot-small")
    (root / "qrels").mkdir()
    queries = [json.loads(ln) for ln in (src / "queries.jsonl").read_text().splitlines() if ln.strip()]
    chosen = [q for q in queries if q["metadata"]["split"] == "dev"][:16]
    chosen += [q for q in queries if q["metadata"]["split"] == "train"][:8]
    gold = {d for q in chosen for d in q["metadata"]["supporting"]}
    corpus = [json.loads(ln) for ln in (src / "corpus.jsonl").read_text().splitlines() if ln.strip()]
    near = {int(d[2:]) + off for d in gold if d[2:].isdigit() for off in range(-5, 6)}  # their contexts' neighbours
    keep = [d for d in corpus if d["_id"] in gold or (d["_id"][2:].isdigit() and int(d["_id"][2:]) in near)]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in keep))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in chosen))
    for split in ("dev", "train"):
        lines = (src / "qrels" / f"{split}.tsv").read_text().splitlines()
        ids = {q["_id"] for q in chosen}
        (root / "qrels" / f"{split}.tsv").write_text(
            "\n".join([lines[0], *[ln for ln in lines[1:] if ln.split("\t")[0] in ids]]) + "\n"
        )
    return root


@pytest.fixture(scope="session")
def hotpot_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the session, so :func:`small_hotpot`'s corpus is indexed once, not once per test (the
    cache key covers the corpus' digest, the embedder and the chunking, so sharing it cannot mix stores)."""
    return tmp_path_factory.mktemp("hotpot-cache")


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (2 layers, width 32) with SmolLM2's real tokenizer and chat template, saved as a local
    checkpoint folder: GRPO and LoRA training run on it in seconds. Its tokenizer is read from the packaged GGUF."""
    pytest.importorskip("transformers", reason="the transformers extra is not installed")
    pytest.importorskip("gguf", reason="the transformers extra is not installed")
    import torch
    import transformers

    from hopmem.memory.model_paths import resolve_gguf_path

    gguf = resolve_gguf_path("SmolLM2-135M-Instruct")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def wait_for_openai_server(proc: Any, base_url: str, log_path: Path, *, name: str, timeout_s: float) -> None:
    """Block until the OpenAI-compatible server started as ``proc`` lists its models; fail the test with the tail of
    its log when it exits or is not ready in ``timeout_s``."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name} was not ready after {timeout_s:.0f} s: {log_path.read_text()[-3000:]}")
        time.sleep(0.5)


def save_random_adapter(model: Any, folder: Path, record: dict[str, Any], *, rank: int = 4, std: float = 0.5) -> Path:
    """An untrained LoRA adapter (q/v projections) whose B matrices are random, so it changes scores, saved with its
    ``hopmem_reranker.json`` like a trained one."""
    import torch
    from peft import get_peft_model

    from hopmem.agents.rerank.model_paths import RECORD_FILE
    from hopmem.finetune.grpo import lora_config

    torch.manual_seed(1)
    peft_model = get_peft_model(model, lora_config(rank, 2 * rank, 0.0, ("q_proj", "v_proj")))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, std)
    peft_model.save_pretrained(str(folder))
    (folder / RECORD_FILE).write_text(json.dumps(record))
    return folder
