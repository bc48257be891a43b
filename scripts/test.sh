#!/usr/bin/env bash
# Set up, then run what CI runs: lint, format check, type check, the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# PostgreSQL tests use this URL; they are skipped, with the reason shown, when it is unreachable.
export MESHKIT_TEST_POSTGRES_URL="${MESHKIT_TEST_POSTGRES_URL-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
echo "== ruff" && .venv/bin/ruff check src tests bench
echo "== ruff format" && .venv/bin/ruff format --check src tests bench
echo "== mypy" && .venv/bin/mypy
echo "== pytest" && .venv/bin/pytest -n 2 "$@"
