#!/usr/bin/env bash
# Install everything into .venv, then run the linter and the test suite (CPU only, no downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser test drives Debian's Chromium (never a downloaded one); CI=true makes it fail rather than skip
# without it, so install it where we can.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest "$@"
