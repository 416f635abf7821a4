#!/usr/bin/env bash
# Install (see install.sh), then run the whole test suite and a smoke run of the benchmarks
# on tiny workloads (the full benchmarks: `python benchmarks/report.py`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"
export HF_HUB_OFFLINE=1
python -m pytest tests "$@"
GAMDSS_BENCH_SCALE=small python -m pytest benchmarks -q --benchmark-disable
