#!/usr/bin/env bash
# Install everything into .venv (from scratch when absent), then lint, type-check and test.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
# The Redis-backed tests need a server on 127.0.0.1:6379; start one if none answers.
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if command -v redis-server >/dev/null; then
    echo "== starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  else
    echo "Redis is not running on 127.0.0.1:6379 and redis-server is not installed." >&2
    exit 1
  fi
fi
echo "== ruff check"; .venv/bin/ruff check src tests examples bench
echo "== ruff format --check"; .venv/bin/ruff format --check src tests examples bench
echo "== mypy --strict src"; .venv/bin/mypy --strict src
echo "== lint-imports"; .venv/bin/lint-imports --no-cache
echo "== pytest"; .venv/bin/python -m pytest "$@"
