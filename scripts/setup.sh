#!/usr/bin/env bash
# Create .venv and install meshkit with everything it needs (idempotent; fast when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "meshkit needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating the virtual environment .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.meshkit-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing meshkit and its dependencies into .venv (a minute or two the first time)"
    # pip's own output, cut to what says what it is doing (and every error)
    .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip 2>&1 \
        | sed -un -E '/^(ERROR|error)/p; s/^Successfully installed (.*)/  upgraded \1/p'
    .venv/bin/python -m pip install --disable-pip-version-check -e '.[dev]' 2>&1 \
        | sed -un -E '/^(ERROR|error|  ×|  ╰)/p; s/^Collecting ([^ ]+).*/  fetching \1/p; s/^Installing collected packages: .*/  installing the packages.../p; s/^Successfully installed .*/  done/p'
    touch "$stamp"
    echo "setup: ready; run meshkit as .venv/bin/meshkit, or 'source .venv/bin/activate' to put it on PATH"
fi
