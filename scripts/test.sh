#!/usr/bin/env bash
# Install everything into .venv (from scratch when absent), then lint, type-check and test.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
echo "== ruff check"; .venv/bin/ruff check src tests examples bench
echo "== ruff format --check"; .venv/bin/ruff format --check src tests examples bench
echo "== mypy --strict src"; .venv/bin/mypy --strict src
echo "== pytest"; .venv/bin/python -m pytest "$@"
