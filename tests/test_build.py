"""Build facts and the torch-version guard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gamdss_ext
from gamdss_ext._version_check import check_torch_version


def test_build_info_reports_the_running_torch():
    info = gamdss_ext.build_info()
    assert info["torch_version"] == torch.__version__
    assert info["cpu_kernel"] in info["cpu_kernel_variants"]


@pytest.mark.skipif(
    not (torch.version.cuda and Path("/usr/local/cuda/bin/nvcc").exists())
    or os.environ.get("GAMDSS_WITH_CUDA", "").upper() in ("0", "OFF"),
    reason="no CUDA toolkit or a CPU build of torch: the CPU-only build is expected",
)
def test_cuda_kernels_compiled_for_sm80_and_sm90():
    info = gamdss_ext.build_info()
    assert info["cuda_kernels"] is True
    assert {"sm_80", "sm_90"} <= set(info["cuda_archs"])
    names = torch._C._dispatch_dump("gamdss::reselect")
    assert "CUDA: registered" in names and "CPU: registered" in names


def test_the_extension_is_loaded_from_the_installed_package():
    # The repository keeps its packages under python/, so the root never shadows them.
    assert "site-packages" in gamdss_ext.__file__ or "dist-packages" in gamdss_ext.__file__


def test_version_guard_message():
    check_torch_version("2.14.1+cu130", "2.14.1+cu130")
    with pytest.raises(ImportError, match=r"compiled against torch 2.14.1\+cu130 but torch 2.15.0 is imported"):
        check_torch_version("2.14.1+cu130", "2.15.0")


def test_import_under_another_torch_fails_with_a_clear_message():
    code = (
        "import torch; torch.__version__ = '9.9.9'\n"
        "try:\n    import gamdss_ext\nexcept ImportError as e:\n    print('IMPORT-ERROR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "IMPORT-ERROR gamdss_ext was compiled against torch" in out.stdout
    assert "but torch 9.9.9 is imported" in out.stdout
