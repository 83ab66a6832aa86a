#!/usr/bin/env bash
# Create .venv and install unsup3d with every optional extra (all) and its test tools (test). torch is pinned
# first: an unpinned torch would pull a multi-GB CUDA build on machines where the CPU wheel of this version is what
# is wanted. Set UNSUP3D_TORCH to install another torch (e.g. a CUDA build) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q "${UNSUP3D_TORCH:-torch==2.13.0}"
.venv/bin/python -m pip install -q -e ".[all,test]"
