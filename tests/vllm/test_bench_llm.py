"""``hopmem bench llm`` run as a real command against the lane's vLLM and llama.cpp servers (small sizes: it checks
the report, not the speed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_hopmem
from tests.vllm.conftest import BASE, VLLMServer

pytestmark = pytest.mark.vllm

SMALL = ["--requests", "2", "--max-tokens", "8", "--concurrency", "2", "--passages", "4"]
SMALL += ["--batch", "1", "--batch", "4"]


def test_bench_llm_reports_generation_and_scoring_throughput_of_vllm(vllm_server: VLLMServer, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "llm", "--base-url", vllm_server.base_url, "--model", BASE, "--score-model", "prorank"]
    done = run_hopmem(*args, *SMALL, "--label", "lane", "--json", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["benchmark"] == "llm" and report["server"]["label"] == "lane" and report["git_revision"]
    for run in ("sequential", "concurrent_2"):
        row = report["generation"][run]
        assert 0 < row["tokens"] <= 16 and row["tokens_per_s"] > 0
    batches = report["scoring"]["batches"]
    assert "error" not in report["scoring"] and set(batches) == {"1", "4"}
    assert batches["1"]["requests"] == 4 and batches["4"]["requests"] == 1  # one request per batch of passages
    assert all(row["passages_per_s"] > 0 for row in batches.values())
    assert "passages/s" in done.stdout and "tokens/s" in done.stdout


def test_bench_llm_says_why_llama_cpp_cannot_score(llama_server: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "llm", "--base-url", llama_server, "--model", "smollm2", "--score-model", "smollm2"]
    done = run_hopmem(*args, *SMALL, "--json", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["generation"]["sequential"]["tokens"] > 0
    assert report["scoring"]["batches"] == {} and "logprob_token_ids" in report["scoring"]["error"]
    assert "scoring: not available" in done.stdout
