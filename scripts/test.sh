#!/usr/bin/env bash
# Install everything into .venv, then run the linter and the test suite (CPU only, no downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest "$@"
