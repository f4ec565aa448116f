#!/usr/bin/env bash
# Install everything into .venv (from scratch when absent), then run the e-commerce demo on the
# embedded server (or on the MongoDB deployment named by MONGODB_URI).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/python -m examples.ecommerce "$@"
