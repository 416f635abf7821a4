#!/usr/bin/env bash
# Install (see install.sh), then run the main job: `gamdss demo`.
#
# The demo runs on the CPU unless a GPU is present, so on a machine without a GPU driver
# (nvidia-smi missing or listing no GPU) the install is CPU-only by default: the CUDA kernels
# could not run there and would only add to the compile. GAMDSS_CUDA=1 (or auto) compiles
# them anyway; an existing install that has them keeps them.
set -euo pipefail
if [ -z "${GAMDSS_CUDA:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
    export GAMDSS_CUDA=auto
  elif [ -x "$(dirname "${BASH_SOURCE[0]}")/../.venv/bin/python" ] &&
    "$(dirname "${BASH_SOURCE[0]}")/../.venv/bin/python" -c \
      "import sys, gamdss_ext; sys.exit(0 if gamdss_ext.build_info()['cuda_kernels'] else 1)" 2>/dev/null; then
    export GAMDSS_CUDA=auto  # keep the CUDA kernels of the existing install
  else
    export GAMDSS_CUDA=0
    echo "[gamdss] no GPU here (nvidia-smi finds none): CPU-only build; GAMDSS_CUDA=1 bash scripts/demo.sh also compiles the CUDA kernels"
  fi
fi
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"
export HF_HUB_OFFLINE=1
gamdss demo "$@"
