#!/usr/bin/env bash
# Creates .venv (if missing) and installs gamdss with its test extras into it, compiling the
# C++ op (and the CUDA kernels when /usr/local/cuda and a CUDA build of torch are present).
# Sourced by demo.sh and test.sh; safe to run again (the CMake build directory is reused).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON_BIN="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON_BIN" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
echo "[gamdss] installing torch and the build tools into .venv ..."
python -m pip install --quiet --disable-pip-version-check \
  torch==2.14.1 torchvision==0.29.1 "scikit-build-core>=0.10" "pybind11>=2.12" "ninja>=1.11" "cmake>=3.26"
echo "[gamdss] building and installing gamdss (C++ op; CUDA kernels when a toolkit is present) ..."
python -m pip install --quiet --disable-pip-version-check --no-build-isolation ".[test]"
python -c "import gamdss_ext; print('[gamdss] build:', gamdss_ext.build_info())"
