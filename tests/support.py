"""Helpers shared by the tests: devices and CPU kernel variants available here."""

from __future__ import annotations

import pytest
import torch

import gamdss_ext


def available_cpu_variants() -> list[str]:
    """CPU inner kernels compiled in and supported by this CPU."""
    usable = []
    for name in gamdss_ext.build_info()["cpu_kernel_variants"]:
        try:
            gamdss_ext.set_cpu_kernel(name)
            usable.append(name)
        except ValueError:
            pass
    gamdss_ext.set_cpu_kernel("auto")
    return usable


cuda_only = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine; the CUDA kernels are compiled but cannot run"
)


def devices() -> list[str]:
    """Devices to run on now (for loops inside a test)."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def device_params() -> list:
    """For parametrize: cpu, and cuda skipped with a reason when there is no GPU."""
    return ["cpu", pytest.param("cuda", marks=cuda_only)]
