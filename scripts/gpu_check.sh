#!/usr/bin/env bash
# The GPU check: CUDA tests, op benchmarks with the card's bandwidth, a two-fold training smoke run
# with and without mixed precision, the input pipeline feeding the GPU, and reselection of a whole
# CASME II-sized dataset vs one training epoch, into one markdown report (under 8 minutes on an
# H100/H200). Without a CUDA GPU it prints "no CUDA GPU: skipped" and exits 0.
#
# Usage: bash scripts/gpu_check.sh REPORT.md [--device cuda:1]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: bash scripts/gpu_check.sh REPORT.md [--device cuda]" >&2
  exit 2
fi
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1
exec "$PY" benchmarks/gpu_check.py "$@"
