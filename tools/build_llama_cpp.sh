#!/usr/bin/env bash
# Install llama-cpp-python into a virtual environment, compiled for a portable x86-64 baseline.
#
# Why: ggml's default build (GGML_NATIVE=ON) compiles for the CPU it is built on and turns on every kernel that CPU
# reports, AMX and AVX-512 included. A machine whose CPU reports AMX but whose kernel does not grant AMX tiles to the
# process then dies with SIGILL on the first long prompt, and a wheel compiled natively on one machine crashes on an
# older one. This script builds for x86-64-v3 (AVX, AVX2, FMA, F16C, BMI2: every Intel CPU since Haswell, 2013, and
# every AMD CPU since Excavator, 2015) with AVX-512, AVX-VNNI and AMX off, so nothing beyond that baseline can run.
#
# The wheel is built with pip's cache off (a natively built wheel in pip's cache is never picked up) and kept in
# hopmem's own wheel folder under a name that encodes the version, the Python tag and the build options, so a second
# `make install` (a fresh clone, a new .venv) installs it in seconds, and a wheel of other options can never collide.
#
# Usage: tools/build_llama_cpp.sh VENV_PYTHON
#   LLAMA_CPP_VERSION   the llama-cpp-python release (default: the one pinned in constraints.txt)
#   LLAMA_CPP_CMAKE_ARGS replaces the baseline options (for example "-DGGML_NATIVE=ON" to compare a native build)
#   HOPMEM_WHEEL_DIR    where built wheels are kept (default: ${XDG_CACHE_HOME:-~/.cache}/hopmem/wheels)
set -euo pipefail

PY="${1:?usage: tools/build_llama_cpp.sh VENV_PYTHON}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${LLAMA_CPP_VERSION:-$(sed -n 's/^llama_cpp_python==//p' "$ROOT/constraints.txt")}"
[[ -n "$VERSION" ]] || { echo "build_llama_cpp: no llama_cpp_python pin in constraints.txt; set LLAMA_CPP_VERSION" >&2; exit 2; }

BASELINE="-DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_BACKEND_DL=OFF \
-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
OPTIONS="${LLAMA_CPP_CMAKE_ARGS:-$BASELINE}"
PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
KEY="$(printf '%s' "$OPTIONS" | sha256sum | cut -c1-12)"
WHEELS="${HOPMEM_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hopmem/wheels}/llama-cpp-python-$VERSION-$PYTAG-$KEY"
QUIET_PIP=(sed -u '/is ignored: it is neither a file nor a directory/d')

installed_key="$("$PY" - <<'EOF' 2>/dev/null || true
import importlib.metadata as md, json, pathlib
dist = md.distribution("llama_cpp_python")
marker = pathlib.Path(str(dist.locate_file("llama_cpp"))) / "hopmem-build.json"
print(json.loads(marker.read_text())["key"] if marker.exists() else "", dist.version)
EOF
)"
if [[ "$installed_key" == "$KEY $VERSION" ]]; then
    echo "llama-cpp-python $VERSION (build $KEY) already installed"
    exit 0
fi

wheel="$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
if [[ -z "$wheel" ]]; then
    if [[ "$OPTIONS" == "$BASELINE" ]]; then what="for the portable x86-64-v3 baseline"; else what="with $OPTIONS"; fi
    echo "llama-cpp-python $VERSION: compiling $what (about 4 minutes on 2 cores)"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    CMAKE_ARGS="$OPTIONS" "$PY" -m pip wheel -q --no-cache-dir --no-deps --no-binary llama-cpp-python \
        -w "$tmp" "llama-cpp-python==$VERSION" 2>&1 | "${QUIET_PIP[@]}"
    mkdir -p "$WHEELS"
    mv "$tmp"/llama_cpp_python-*.whl "$WHEELS"/
    printf '%s\n' "$OPTIONS" >"$WHEELS/cmake-args.txt"
    wheel="$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl | head -n 1)"
else
    echo "llama-cpp-python $VERSION: reusing the build $wheel"
fi

"$PY" -m pip install -q --no-cache-dir --force-reinstall --no-deps "$wheel" 2>&1 | "${QUIET_PIP[@]}"
"$PY" - "$KEY" "$OPTIONS" <<'EOF'
import importlib.metadata as md, json, pathlib, sys

target = pathlib.Path(str(md.distribution("llama_cpp_python").locate_file("llama_cpp"))) / "hopmem-build.json"
target.write_text(json.dumps({"key": sys.argv[1], "cmake_args": sys.argv[2]}, indent=1) + "\n")
EOF
echo "llama-cpp-python $VERSION installed (build $KEY)"
