#!/usr/bin/env bash
# Install Debian's chromium for the UI's end-to-end tests (tests/ui/test_e2e_chromium.py), driven by Playwright with
# the system browser (never `playwright install`). Idempotent: does nothing when chromium is already there.
# Needs root (or sudo) and apt; `make install` calls it only when chromium is missing.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(chromium --version 2>/dev/null || echo present) (already installed)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_chromium: chromium is missing and this is not root; install it with: apt-get install chromium" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: no apt-get here; install a Chromium at /usr/bin/chromium by hand" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $(chromium --version)"
