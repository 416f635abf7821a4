"""Timing helpers shared by the pytest-benchmark suite and ``report.py``: the repeat policy
per method, a timer, the read-bandwidth probe and the roofline arithmetic."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Plan:
    """How one method is timed: ``rounds`` timed calls after ``warmup`` untimed ones, on the
    first ``clips`` clips of the batch (None: all; otherwise per-clip time x B is reported as
    the batch time, labelled as scaled)."""

    rounds: int
    warmup: int
    clips: int | None = None


# Full scale: the op and the careful implementation get medians of several rounds; the
# slow pure-Python methods (the reference and the released-style loop) one round over the
# whole batch. "small" is a smoke test: few rounds of everything.
_PLANS = {
    "full": {
        "op": Plan(rounds=15, warmup=2),
        "op_cuda": Plan(rounds=30, warmup=3),
        "careful": Plan(rounds=5, warmup=1),
        "reference": Plan(rounds=1, warmup=0),
        "released_loop": Plan(rounds=1, warmup=0),
    },
    "small": {
        "op": Plan(rounds=3, warmup=1),
        "op_cuda": Plan(rounds=3, warmup=1),
        "careful": Plan(rounds=2, warmup=0),
        "reference": Plan(rounds=1, warmup=0),
        "released_loop": Plan(rounds=1, warmup=0),
    },
}

# Bytes of the float32 tensor summed by the bandwidth probe, per scale.
_PROBE_BYTES = {"full": 1 << 30, "small": 64 << 20}


def plan_for(method: str, scale: str) -> Plan:
    return _PLANS[scale][method]


def synchronizer(device: torch.device | str) -> Callable[[], None]:
    dev = torch.device(device)
    if dev.type == "cuda":
        return lambda: torch.cuda.synchronize(dev)
    return lambda: None


def time_call(fn: Callable[[], object], rounds: int, warmup: int = 0,
              device: torch.device | str = "cpu") -> tuple[list[float], object]:
    """Seconds of each of ``rounds`` calls of ``fn`` (after ``warmup`` untimed calls), and the
    last call's result. On CUDA the device is synchronised around each call."""
    sync = synchronizer(device)
    result = None
    for _ in range(warmup):
        result = fn()
    sync()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times, result


def median(xs: list[float]) -> float:
    return statistics.median(xs)


@dataclass(frozen=True)
class Bandwidth:
    device: str
    nbytes: int
    best_s: float
    repeats: int

    @property
    def bytes_per_s(self) -> float:
        return self.nbytes / self.best_s

    def __str__(self) -> str:
        return (f"{self.bytes_per_s / 1e9:.1f} GB/s on {self.device} (`t.sum()` of a "
                f"{self.nbytes / 2**30:.3g} GiB float32 tensor, best of {self.repeats})")


def measure_read_bandwidth(device: torch.device | str = "cpu", nbytes: int = 1 << 30,
                           repeats: int = 10) -> Bandwidth:
    """Read bandwidth: best time of ``t.sum()`` over a float32 tensor of ``nbytes``.
    The tensor is freed afterwards."""
    dev = torch.device(device)
    t = torch.ones(nbytes // 4, dtype=torch.float32, device=dev)
    times, _ = time_call(lambda: t.sum(), rounds=repeats, warmup=2, device=dev)
    del t
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return Bandwidth(str(dev), nbytes, min(times), repeats)


def probe_bytes(scale: str) -> int:
    return _PROBE_BYTES[scale]


@dataclass(frozen=True)
class Roofline:
    """Lower bound on the op's time: reading the unique candidate frames once at the
    measured read bandwidth."""

    nbytes: int
    bandwidth: Bandwidth

    @property
    def bound_s(self) -> float:
        return self.nbytes / self.bandwidth.bytes_per_s

    def fraction(self, seconds: float) -> float:
        """Fraction of the bound reached by a run taking ``seconds`` (1.0 = at the bound)."""
        return self.bound_s / seconds
