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


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags as the Linux kernel lists them (/proc/cpuinfo), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def test_the_default_cpu_kernel_is_the_best_this_cpu_runs():
    """'auto' picks AVX-512 (VNNI) where the kernel lists avx512_vnni, else AVX2 with AVX-VNNI
    where it lists avx_vnni, else AVX2, as the Linux kernel's own CPU flags say."""
    flags = _cpu_flags()
    info = gamdss_ext.build_info()
    if flags is None or "avx512" not in info["cpu_kernel_variants"]:
        pytest.skip("no /proc/cpuinfo flags, or no x86 vector kernels in this build")
    if {"avx512_vnni", "avx512bw", "avx512vl"} <= flags:
        expected = "avx512"
    elif "avx_vnni" in flags and "avx2" in flags and "avxvnni" in info["cpu_kernel_variants"]:
        expected = "avxvnni"
    elif "avx2" in flags:
        expected = "avx2"
    else:
        expected = "baseline"
    assert info["cpu_kernel"] == expected


def _sysfs_l2_bytes() -> int | None:
    """cpu0's level-2 cache size from Linux sysfs, or None where sysfs does not say."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    try:
        for index in sorted(base.iterdir()):
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip()
                return int(size[:-1]) * 1024 if size.endswith("K") else None
    except (OSError, ValueError):
        return None
    return None


def test_cpu_l2_bytes_agrees_with_sysfs():
    """The L2 size the op sizes its reads to (the C library's) is the kernel's own (sysfs)."""
    expected = _sysfs_l2_bytes()
    if expected is None:
        pytest.skip("no L2 size in /sys/devices/system/cpu/cpu0/cache on this machine")
    assert gamdss_ext.cpu_l2_bytes() == expected


def test_core_speed_is_the_additions_over_the_time_they_took():
    # The chain's own time, n / speed, lies inside the call's wall time and, for 80 million
    # additions (20-40 ms at 2-4 GHz), is most of it.
    import math
    import time

    n = 80_000_000
    shares = []
    for _ in range(3):  # the best of three: a busy machine may preempt us outside the chain
        t0 = time.perf_counter()
        ghz = gamdss_ext.core_speed_ghz(n)
        wall_ns = (time.perf_counter() - t0) * 1e9
        assert 0 < n / ghz <= wall_ns
        shares.append(n / ghz / wall_ns)
    assert max(shares) >= 0.3
    short = gamdss_ext.core_speed_ghz(8)
    assert math.isfinite(short) and short >= 0  # 0.0 where the clock cannot see 8 additions


@pytest.mark.parametrize("n", [0, -5, 10**11 + 1])
def test_core_speed_refuses_an_empty_or_endless_chain(n):
    with pytest.raises(ValueError, match=rf"n must be in \[1, 100000000000\], got {n}"):
        gamdss_ext.core_speed_ghz(n)


def test_the_cuda_build_follows_gamdss_cuda():
    # GAMDSS_CUDA=auto builds the kernels exactly when a toolkit and a CUDA build of torch are
    # present (CI's machine has both, so CI compiles them); OFF never; a skipped build says why.
    info = gamdss_ext.build_info()
    assert info["cuda_request"] in ("AUTO", "ON", "OFF")
    if info["cuda_kernels"]:
        assert info["cuda_request"] != "OFF" and info["cuda_skipped_reason"] == ""
        assert torch.version.cuda
        names = torch._C._dispatch_dump("gamdss::reselect")
        assert "CUDA: registered" in names and "CPU: registered" in names
        assert info["cuda_archs"] and all(a.startswith("sm_") for a in info["cuda_archs"])
    else:
        assert info["cuda_skipped_reason"]
        assert info["cuda_archs"] == []
        if info["cuda_request"] == "AUTO":
            assert not torch.version.cuda or "no CUDA toolkit" in info["cuda_skipped_reason"]


@pytest.mark.skipif(
    not (torch.version.cuda and Path(os.environ.get("GAMDSS_CUDA_ROOT", "/usr/local/cuda"), "bin/nvcc").exists())
    or os.environ.get("GAMDSS_CUDA_ARCHS", os.environ.get("TORCH_CUDA_ARCH_LIST", "")) not in ("", "8.0;9.0"),
    reason="no CUDA toolkit, a CPU build of torch, or other architectures requested",
)
def test_cuda_kernels_compiled_for_sm80_and_sm90_by_default():
    info = gamdss_ext.build_info()
    if info["cuda_request"] == "OFF":
        pytest.skip("installed as a CPU-only build (GAMDSS_CUDA=0)")
    assert info["cuda_kernels"] is True
    assert info["cuda_archs"] == ["sm_80", "sm_90"]


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
