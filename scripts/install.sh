#!/usr/bin/env bash
# Creates .venv (if missing) and installs gamdss with its test extras into it, compiling the
# C++ op and, when a CUDA toolkit and a CUDA build of torch are present, the CUDA kernels.
# Sourced by demo.sh and test.sh; safe to run again (the CMake build directory is reused).
#
# Build choices (environment variables):
#   GAMDSS_CUDA=auto  (default) CUDA kernels when nvcc exists under GAMDSS_CUDA_ROOT and torch
#                     is a CUDA build; 0: CPU-only build; 1: CUDA kernels required.
#   GAMDSS_CUDA_ROOT  the toolkit (default /usr/local/cuda).
#   GAMDSS_CUDA_ARCHS architectures, e.g. "8.0;9.0" (default; else TORCH_CUDA_ARCH_LIST),
#                     "9.0" for an H100/H200 only, "8.0;9.0+PTX" to also embed PTX.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON_BIN="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON_BIN" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
# Installing torch 2.14.1 (a CUDA build) and its CUDA libraries takes about 6.5 GB in .venv,
# plus pip's unpacked wheels while it works. A full disk otherwise shows up as pip's
# "[Errno 28]" half-way through; say it before starting instead. Advice only: where the
# free space cannot be read, the install goes on.
torch_version=$(python -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
if [[ "$torch_version" != 2.14.1* ]]; then
  need_gb=10
  for place in .venv "${TMPDIR:-/tmp}"; do
    free_kb=$(df -Pk "$place" 2>/dev/null | awk 'NR == 2 { print $4 }' || true)
    if [[ "$free_kb" =~ ^[0-9]+$ ]] && [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
      echo "[gamdss] error: $((free_kb / 1024 / 1024)) GB free on the disk of $(cd "$place" && pwd);" \
        "installing torch and its CUDA libraries needs about $need_gb GB. Free some space and run this again." >&2
      exit 1
    fi
  done
fi
echo "[gamdss] installing torch and the build tools into .venv ..."
python -m pip install --quiet --disable-pip-version-check \
  torch==2.14.1 torchvision==0.29.1 "scikit-build-core>=0.10" "pybind11>=2.12" "ninja>=1.11" "cmake>=3.26"

# gamdss needs the OpenCV contrib build (TV-L1 flow); the plain build provides the same cv2
# module and would shadow it, so a venv made by an older gamdss drops it first.
if python -m pip show --quiet opencv-python-headless >/dev/null 2>&1; then
  python -m pip uninstall --quiet --yes opencv-python-headless
fi

# What will be compiled, and about how long it takes (2-core machine, measured: README).
export GAMDSS_CUDA="${GAMDSS_CUDA:-auto}"
cuda_root="${GAMDSS_CUDA_ROOT:-/usr/local/cuda}"
archs="${GAMDSS_CUDA_ARCHS:-${TORCH_CUDA_ARCH_LIST:-8.0;9.0}}"
sms=$(echo "$archs" | tr ';, ' '\n\n\n' | sed -e '/^$/d' -e 's/^sm_//' -e 's/+PTX$//' -e 's/\.//' -e 's/^/sm_/' | paste -sd, - | sed 's/,/, /g')
n_archs=$(echo "$sms" | tr ',' '\n' | grep -c sm_ || true)
case "${GAMDSS_CUDA,,}" in
  0|off|no|false) cuda_why="GAMDSS_CUDA=0" ;;
  *)
    if [ ! -x "$cuda_root/bin/nvcc" ]; then
      cuda_why="no CUDA toolkit at $cuda_root"
    elif [ -z "$(python -c 'import torch; print(torch.version.cuda or "")')" ]; then
      cuda_why="torch is a CPU build"
    else
      cuda_why=""
    fi ;;
esac
if [ -z "$cuda_why" ]; then
  echo "[gamdss] compiling the C++ op (~1 min) and the CUDA kernels for $sms (~$((10 * n_archs + 5)) s more; GAMDSS_CUDA=0 skips them) ..."
else
  echo "[gamdss] compiling the C++ op (~1 min); no CUDA kernels ($cuda_why) ..."
fi

# The build's own lines (CMake's gamdss messages, then one line per compiled file with the
# time since the compile started) are shown as they come; all of pip's output goes to the log.
mkdir -p build
log=build/install.log
export NINJA_STATUS="[gamdss %f/%t files, %e s] "
start=$SECONDS
set +e
python -m pip install -v --disable-pip-version-check --no-build-isolation ".[test]" </dev/null 2>&1 | tee "$log" |
  { grep --line-buffered -E -- "^ *-- gamdss:|^ *\[gamdss [0-9]" |
      sed -u -e 's/^ *-- gamdss: /[gamdss] /' -e 's/^ *\[gamdss \([^]]*\)\] /[gamdss]   \1: /' \
        -e 's#Building \(CXX\|CUDA\) object CMakeFiles/_C.dir/\(.*\)\.o$#compiled \2#' \
        -e 's#Linking CXX shared module .*#linked the module#'; true; }
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "[gamdss] the install failed; the last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "[gamdss] installed in $((SECONDS - start)) s (full log: $log)"
python -c "import gamdss_ext; print('[gamdss] build:', gamdss_ext.build_info())"
