#!/usr/bin/env bash
# Create the peers' virtual environment at benchmarks/peers/.venv (LlamaIndex, Haystack, raw bm25s / faiss /
# rank-bm25), separate from ragkit's so their dependencies never enter it. A second run only re-checks the pins.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
test -x .venv/bin/python || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: the local CPU wheel (otherwise pip pulls the CUDA build)
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip freeze > .venv/freeze.txt
echo "peers venv ready: $(pwd)/.venv"
