#!/usr/bin/env bash
# Install everything into .venv (from scratch when absent), then lint, type-check and test.
# Usage: bash scripts/test.sh [extra pytest arguments]
#
# The Redis-backed tests (marker `redis`) need a server on 127.0.0.1:6379; one is started if
# none answers and `redis-server` is installed. Without either, every other test still runs
# and the Redis tests are reported as NOT RUN, loudly, before and after pytest — except under
# CI (CI=true), where missing Redis is a failure: CI must run them all.
# TEST_SH_REDIS_PORT and TEST_SH_REDIS_SERVER change the port probed and the server binary
# (only to test this script; the Redis tests themselves always use 6379).
# TEST_SH_SKIP_INSTALL=1 reuses an existing .venv as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
redis_port="${TEST_SH_REDIS_PORT:-6379}"
redis_server="${TEST_SH_REDIS_SERVER:-redis-server}"
if [[ "${TEST_SH_SKIP_INSTALL:-}" != "1" || ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
fi
redis_args=()
redis_missing=""
if ! (exec 3<>"/dev/tcp/127.0.0.1/${redis_port}") 2>/dev/null; then
  if command -v "$redis_server" >/dev/null; then
    echo "== starting $redis_server on 127.0.0.1:${redis_port}"
    "$redis_server" --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no
  elif [[ "${CI:-}" == "true" ]]; then
    echo "FAILED: CI=true but Redis is not running on 127.0.0.1:${redis_port} and" \
      "$redis_server is not installed; CI must run the Redis tests." >&2
    exit 1
  else
    redis_missing="no Redis on 127.0.0.1:${redis_port} and $redis_server is not installed"
    redis_args=(-m "not redis")
  fi
fi

redis_banner() {
  # Counted over the paths given (options such as -q or -k are left out: -k only narrows).
  local paths=() arg count skip=""
  for arg in "$@"; do
    if [[ -n "$skip" ]]; then skip=""; continue; fi
    case "$arg" in
      -k | -m | -p | -o | -W | -c | --deselect | --ignore | --rootdir) skip=1 ;;
      -*) ;;
      *) paths+=("$arg") ;;
    esac
  done
  count=$(.venv/bin/python -m pytest --collect-only -q -p no:cacheprovider -m redis \
    "${paths[@]}" 2>/dev/null | grep -c "::" || true)
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  echo "!! NOT RUN: ${count} Redis tests (marker 'redis'): ${redis_missing}."
  echo "!! Everything else ran. Start Redis on 127.0.0.1:6379 (or install redis-server) to run them."
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
}

echo "== ruff check"; .venv/bin/ruff check src tests examples bench
echo "== ruff format --check"; .venv/bin/ruff format --check src tests examples bench
echo "== mypy --strict src"; .venv/bin/mypy --strict src
echo "== lint-imports"; .venv/bin/lint-imports --no-cache
[[ -n "$redis_missing" ]] && redis_banner "$@"
echo "== pytest"
status=0
.venv/bin/python -m pytest "${redis_args[@]}" "$@" || status=$?
[[ -n "$redis_missing" ]] && redis_banner "$@"
exit "$status"
