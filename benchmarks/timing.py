"""Timing helpers shared by the pytest-benchmark suite and ``report.py``: the repeat policy
per method, a timer, the read-bandwidth probe and the roofline arithmetic."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
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
        "op_cold": Plan(rounds=15, warmup=1),
        "op_cuda": Plan(rounds=30, warmup=3),
        "careful": Plan(rounds=5, warmup=1),
        "reference": Plan(rounds=1, warmup=0),
        "released_loop": Plan(rounds=1, warmup=0),
    },
    "small": {
        "op": Plan(rounds=3, warmup=1),
        "op_cold": Plan(rounds=2, warmup=0),
        "op_cuda": Plan(rounds=3, warmup=1),
        "careful": Plan(rounds=2, warmup=0),
        "reference": Plan(rounds=1, warmup=0),
        "released_loop": Plan(rounds=1, warmup=0),
    },
}

# Bytes of the float32 tensor summed by the bandwidth probe, and of the buffer read to
# evict the caches before each "op_cold" round (full: 1 GiB, 4x this machine's 260 MiB L3).
_PROBE_BYTES = {"full": 1 << 30, "small": 64 << 20}


def plan_for(method: str, scale: str) -> Plan:
    return _PLANS[scale][method]


def synchronizer(device: torch.device | str) -> Callable[[], None]:
    dev = torch.device(device)
    if dev.type == "cuda":
        return lambda: torch.cuda.synchronize(dev)
    return lambda: None


@dataclass
class Timed:
    """``times``: seconds of each timed call; ``result``: the last call's result;
    ``cores_used``: process CPU time / wall time over the timed calls (how many cores the
    method kept busy), NaN when calls have a ``setup`` or last under ``MIN_CORES_WALL_S`` in
    all (other threads' CPU time is only brought up to date at scheduler ticks)."""

    times: list[float]
    result: object
    cores_used: float


MIN_CORES_WALL_S = 0.1


def process_cpu_seconds() -> float:
    """CPU time of this process, all threads (CLOCK_PROCESS_CPUTIME_ID)."""
    return time.process_time()


def time_call(
    fn: Callable[[], object],
    rounds: int,
    warmup: int = 0,
    device: torch.device | str = "cpu",
    setup: Callable[[], None] | None = None,
) -> Timed:
    """Time ``rounds`` calls of ``fn`` after ``warmup`` untimed ones. ``setup`` (untimed)
    runs before every call. On CUDA the device is synchronised around each call."""
    sync = synchronizer(device)
    result = None
    for _ in range(warmup):
        if setup is not None:
            setup()
        result = fn()
    sync()
    times = []
    cpu0, wall0 = process_cpu_seconds(), time.perf_counter()
    for _ in range(rounds):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t0)
    cpu, wall = process_cpu_seconds() - cpu0, time.perf_counter() - wall0
    cores = cpu / wall if (setup is None and wall >= MIN_CORES_WALL_S) else math.nan
    return Timed(times, result, cores)


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
        return (
            f"{self.bytes_per_s / 1e9:.1f} GB/s on {self.device} (`t.sum()` of a "
            f"{self.nbytes / 2**30:.3g} GiB float32 tensor, best of {self.repeats})"
        )


def measure_read_bandwidth(device: torch.device | str = "cpu", nbytes: int = 1 << 30, repeats: int = 10) -> Bandwidth:
    """Read bandwidth: best time of ``t.sum()`` over a float32 tensor of ``nbytes``.
    The tensor is freed afterwards."""
    dev = torch.device(device)
    probe = torch.ones(nbytes // 4, dtype=torch.float32, device=dev)
    times = time_call(probe.sum, rounds=repeats, warmup=2, device=dev).times
    del probe
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return Bandwidth(str(dev), nbytes, min(times), repeats)


def probe_bytes(scale: str) -> int:
    return _PROBE_BYTES[scale]


class CacheFlusher:
    """Calling it rewrites, then reads, a CPU buffer of ``nbytes`` (bigger than the
    last-level cache), which evicts the frames a previous call left in the caches and their
    page-table entries from the TLBs. The read after the write leaves the caches holding
    clean lines of the buffer, so the timed call does not pay for writing them back. Used
    untimed before "op_cold" rounds.

    The flush runs on the calling thread alone (numpy, not torch): after a parallel torch op,
    the threads of torch's OpenMP pool keep spinning on the cores for milliseconds (libgomp's
    default wait policy), and a flush through torch would hand the timed call cores that are
    still busy. The flush is there to empty the caches, not to load the machine."""

    def __init__(self, nbytes: int):
        self.buf = np.ones(nbytes // 4, dtype=np.float32)

    def __call__(self) -> None:
        np.add(self.buf, 1.0, out=self.buf)
        self.buf.sum()


def _busy_cpu_seconds() -> float | None:
    """CPU seconds spent busy by the whole machine since boot (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal [guest guest_nice (inside user)]
    v = [int(x) for x in fields[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


class OtherActivity:
    """CPU time used by everything except this process (other processes, the kernel on their
    behalf, hypervisor steal) between ``start()`` and ``fraction()``, as a fraction of the
    machine's capacity over that interval (0.0 = the machine was ours alone). Work by other
    users of a small machine skews every timing; this makes it visible."""

    def __init__(self):
        self.start()

    def start(self) -> OtherActivity:
        self._t0, self._busy0, self._own0 = time.perf_counter(), _busy_cpu_seconds(), process_cpu_seconds()
        return self

    def fraction(self) -> float | None:
        busy = _busy_cpu_seconds()
        if busy is None or self._busy0 is None:
            return None
        wall = time.perf_counter() - self._t0
        other = (busy - self._busy0) - (process_cpu_seconds() - self._own0)
        return max(0.0, other) / (wall * (os.cpu_count() or 1)) if wall > 0 else 0.0


def wait_until_quiet(max_wait_s: float, threshold: float = 0.1, window_s: float = 5.0) -> float | None:
    """Wait (up to ``max_wait_s``) for a ``window_s`` window in which other processes use less
    than ``threshold`` of the machine; returns the last window's fraction."""
    deadline = time.perf_counter() + max_wait_s
    while True:
        act = OtherActivity()
        time.sleep(window_s)
        frac = act.fraction()
        if frac is None or frac < threshold or time.perf_counter() >= deadline:
            return frac


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


@dataclass(frozen=True)
class PairedCold:
    """Cold calls of the op, each followed at once by a cold read of the bandwidth probe:
    ``op_s[i]`` and ``probe_s[i]`` are one round's times, ``probe_bytes`` the probe's size,
    ``core_ghz[i]`` the core's speed just before that round's call (gamdss_ext.core_speed_ghz),
    and ``same_s[i]`` (when measured) that round's cold ``t.sum()`` of as many bytes as the op
    reads."""

    op_s: list[float]
    probe_s: list[float]
    probe_bytes: int
    result: object
    core_ghz: list[float] = field(default_factory=list)
    same_s: list[float] = field(default_factory=list)

    def bandwidths(self) -> list[float]:
        """Read bandwidth of each round's probe, bytes per second."""
        return [self.probe_bytes / t for t in self.probe_s]

    def fractions(self, nbytes: int) -> list[float]:
        """Per round: the roofline bound of ``nbytes`` at that round's bandwidth over that
        round's op time."""
        return self._fractions(nbytes, self.op_s)

    def same_fractions(self, nbytes: int) -> list[float]:
        """Per round: the roofline fraction of a cold ``t.sum()`` of ``nbytes`` (``same_s``),
        against that round's probe: what a plain read of the op's bytes reaches."""
        return self._fractions(nbytes, self.same_s)

    def _fractions(self, nbytes: int, seconds: list[float]) -> list[float]:
        return [nbytes / bw / t for bw, t in zip(self.bandwidths(), seconds, strict=True)]


def time_cold_paired(
    fn: Callable[[], object],
    rounds: int,
    warmup: int,
    flusher: CacheFlusher,
    nbytes: int,
    same_bytes: int | None = None,
) -> PairedCold:
    """``rounds`` rounds of: evict the caches, time one call of ``fn``; evict again, time one
    ``t.sum()`` of a float32 tensor of ``nbytes`` (the bandwidth probe). The op and the probe
    thus see the same state of a shared machine, whose memory bandwidth can change by half
    within seconds (a 2-vCPU AMD EPYC here read 30-34 GB/s most of the time and 53-60 GB/s at
    other times, in the same process); a roofline from the best bandwidth of the run would
    set a call in one state against the bandwidth of another. The eviction (one thread,
    about 100 ms) also gives torch's OpenMP threads time to stop spinning after the probe.
    Between the eviction and the call, a chain of additions (about 1 ms, registers only)
    times the core's speed: the machine's cores change speed too, which the bandwidth does
    not show and the op's arithmetic feels. With ``same_bytes``, each round ends with one more
    eviction and a timed cold ``t.sum()`` of a float32 tensor of that many bytes (the op's own
    byte count): a plain read of the same amount, which pays the same start-up costs (cold
    code, threads to wake, a short stream) that the 1 GiB probe spreads thin."""
    import gamdss_ext

    probe = torch.ones(nbytes // 4, dtype=torch.float32)
    same = torch.ones(same_bytes // 4, dtype=torch.float32) if same_bytes else None
    result = None
    for _ in range(warmup):
        flusher()
        result = fn()
    op_s, probe_s, core_ghz, same_s = [], [], [], []
    for _ in range(rounds):
        flusher()
        core_ghz.append(gamdss_ext.core_speed_ghz())
        t0 = time.perf_counter()
        result = fn()
        op_s.append(time.perf_counter() - t0)
        probe_s.append(_cold_sum_seconds(flusher, probe))
        if same is not None:
            same_s.append(_cold_sum_seconds(flusher, same))
    return PairedCold(op_s, probe_s, nbytes, result, core_ghz, same_s)


def _cold_sum_seconds(flusher: CacheFlusher, t: torch.Tensor) -> float:
    """Seconds of one ``t.sum()`` right after evicting the caches."""
    flusher()
    t0 = time.perf_counter()
    t.sum()
    return time.perf_counter() - t0
