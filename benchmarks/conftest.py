"""Shared fixtures of the reselection benchmarks.

Each (workload, dtype) case is one session-scoped, parametrized fixture: pytest runs all
tests of one case together, builds its tensors once and tears them down (freeing the
memory) before it builds the next one. Full scale needs up to ~3.1 GB for a float32 case.
"""

from __future__ import annotations

import gc
import os
import sys

import pytest
import torch

# The suite runs with --import-mode=importlib (pyproject addopts), which does not put this
# directory on sys.path; the helper modules live next to this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import baselines  # noqa: E402
import timing  # noqa: E402
import workloads  # noqa: E402

CASE_IDS = [f"{w.name}-{d}" for w in workloads.WORKLOADS for d in workloads.DTYPES]


@pytest.fixture(scope="session")
def scale() -> str:
    return workloads.scale_from_env()


@pytest.fixture(scope="session")
def cpu_bandwidth(scale) -> timing.Bandwidth:
    """CPU read bandwidth, measured once in this run (before any workload is built)."""
    return timing.measure_read_bandwidth("cpu", timing.probe_bytes(scale))


@pytest.fixture(scope="session")
def cuda_bandwidth(scale) -> timing.Bandwidth:
    """GPU read bandwidth, measured the same way on the GPU, in this run."""
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available (torch.cuda.is_available() is False)")
    return timing.measure_read_bandwidth("cuda", timing.probe_bytes(scale))


@pytest.fixture(scope="session")
def cache_flusher(scale) -> timing.CacheFlusher:
    """Untimed cache eviction before each "op_cold" round."""
    return timing.CacheFlusher(timing.probe_bytes(scale))


@pytest.fixture(scope="session", params=CASE_IDS)
def case(request, scale, cpu_bandwidth) -> workloads.Case:
    """One workload in one dtype on the CPU, with the op's selection as ``case.expected``
    (computed once, outside any timed region)."""
    name, dtype_name = request.param.rsplit("-", 1)
    c = workloads.build_case(name, dtype_name, scale)
    c.expected = baselines.run_op(c)
    yield c
    del c
    gc.collect()
