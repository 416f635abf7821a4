"""Thin package around the compiled core of gamdss.

Importing it checks that the running torch is the one the extension was compiled
against, loads the compiled module (which registers ``torch.ops.gamdss.reselect`` and
``torch.ops.gamdss.frame_distances`` with their CPU and, when built, CUDA kernels) and
registers their fake implementations so that both ops trace under ``torch.compile``.
"""

from __future__ import annotations

import torch

from ._version_check import check_torch_version

try:
    from . import _build_config
    from ._build_config import TORCH_VERSION as _BUILT_TORCH_VERSION
except ImportError as exc:  # pragma: no cover - only in a source tree without a build
    raise ImportError(
        "gamdss_ext is not built: install the package with `pip install .` "
        "(this source directory has no compiled extension)"
    ) from exc

check_torch_version(_BUILT_TORCH_VERSION, torch.__version__)

# After the version check, on purpose; _fake registers the fake (meta) implementations.
from . import _C, _fake  # noqa: E402, F401


def build_info() -> dict:
    """Facts of this build.

    Returns a dict with ``torch_version`` (the torch compiled against), ``cuda_kernels``
    (bool), ``cuda_archs`` (e.g. ``["sm_80", "sm_90"]``), ``cxx_compiler``,
    ``cpu_kernel_variants`` (inner CPU kernels compiled), ``cpu_kernel`` (the one in use),
    ``cuda_request`` (``GAMDSS_CUDA`` at build time: ``"AUTO"``, ``"ON"`` or ``"OFF"``) and
    ``cuda_skipped_reason`` (why the CUDA kernels were not built, else ``""``).
    """
    info = dict(_C.build_info())
    info["cuda_request"] = getattr(_build_config, "CUDA_REQUEST", "")
    info["cuda_skipped_reason"] = getattr(_build_config, "CUDA_SKIPPED_REASON", "")
    return info


def set_cpu_kernel(name: str) -> None:
    """Choose the CPU inner kernels: ``"auto"`` (best this CPU supports), ``"baseline"``
    (portable loops), ``"avx2"``, ``"avxvnni"`` (AVX2 with AVX-VNNI's 256-bit dots),
    ``"avx512_ymm"`` (the same scheme with AVX-512 VNNI on 256-bit registers; by name only)
    or ``"avx512"``. Raises ``ValueError`` if unavailable here."""
    _C.set_cpu_kernel(name)


def cpu_kernel() -> str:
    """Name of the CPU inner kernels in use."""
    return _C.cpu_kernel()


def cpu_l2_bytes() -> int:
    """One core's L2 cache size in bytes as the op reads it (from the C library), or -1 where
    it is unknown. The op sizes its uint8 reads to it (at most 1 MiB; 512 KiB if unknown)."""
    return _C.cpu_l2_bytes()


def core_speed_ghz(n: int = 2_000_000) -> float:
    """How fast the calling thread's core runs now, in GHz: ``n`` dependent integer additions
    (register to register, one per clock cycle) are timed, and additions per nanosecond
    returned. Frequency scaling, and on a shared virtual machine time taken by other guests,
    lower it; ``benchmarks/report.py`` prints it beside the op's cold calls. ``n`` from 1 to
    10**11 (2 million take about 1 ms at 2 GHz; under a million the clock's own overhead
    dominates); raises ``ValueError`` otherwise (``TypeError`` for a number that does not
    fit in 64 bits). Releases the GIL."""
    return _C.core_speed_ghz(n)


__all__ = ["build_info", "set_cpu_kernel", "cpu_kernel", "cpu_l2_bytes", "core_speed_ghz"]
