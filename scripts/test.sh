#!/usr/bin/env bash
# Install (see install.sh), then lint (ruff), format check and type check (mypy), the whole
# test suite and a smoke run of the benchmarks on tiny workloads (the full benchmarks:
# `python benchmarks/report.py`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"
export HF_HUB_OFFLINE=1
# lint, format and types first (configured in pyproject.toml): seconds, before minutes of tests
python -m ruff check python tests benchmarks
python -m ruff format --check python tests benchmarks
python -m mypy
python -m pytest tests "$@"
# the API reference (docs/api) from the docstrings; a docstring Sphinx cannot read fails the run
python -m sphinx -W --keep-going -q -b html docs/api build/docs-api
GAMDSS_BENCH_SCALE=small python -m pytest benchmarks -q --benchmark-disable
