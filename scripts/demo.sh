#!/usr/bin/env bash
# Set up, then build the example mesh on TPC-H data: `bash scripts/demo.sh [--scale 1]`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/meshkit demo "$@"
