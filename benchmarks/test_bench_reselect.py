"""pytest-benchmark suite of keyframe reselection.

Parametrized over workload x dtype (the ``case`` fixture) x method, grouped by
workload-dtype. Methods: the fused op (``op``: repeated calls, so frames a previous call
read may still be in the caches), the op with the caches flushed before every round
(``op_cold``: an untimed read of a buffer 4x the L3 size), the pure-PyTorch reference, the
careful plain-PyTorch implementation, the released-style per-pair loop, and the op with
frames on CUDA (``op_cuda``; skipped without a GPU). Every method's selection is checked against the
op's once per case, outside the timed region.

    GAMDSS_BENCH_SCALE=small pytest benchmarks -q     # smoke test, seconds
    pytest benchmarks                                 # full scale, a few minutes
"""

from __future__ import annotations

import time
import warnings

import pytest
import torch

import baselines
import timing
import workloads

# Warn when other processes used more than this share of the CPU during a measurement.
OTHER_ACTIVITY_WARN = 0.1

METHODS = ["op", "op_cold", "reference", "careful", "released_loop", "op_cuda"]


def _cuda_skip_reason() -> str | None:
    if not torch.cuda.is_available():
        return "CUDA not available (torch.cuda.is_available() is False)"
    import gamdss_ext

    if not gamdss_ext.build_info().get("cuda_kernels", False):
        return "gamdss was built without CUDA kernels (gamdss_ext.build_info()['cuda_kernels'] is False)"
    return None


@pytest.mark.parametrize("method", METHODS)
def test_reselect(benchmark, request, case, method, scale):
    device = "cpu"
    if method == "op_cuda":
        reason = _cuda_skip_reason()
        if reason is not None:
            pytest.skip(reason)
        device = "cuda"
        bandwidth = request.getfixturevalue("cuda_bandwidth")
    else:
        bandwidth = request.getfixturevalue("cpu_bandwidth")

    plan = timing.plan_for(method, scale)
    run_case = case.subset(plan.clips)
    if device == "cuda":
        run_case = run_case.to("cuda")
    runner = baselines.METHODS["op" if method in ("op_cold", "op_cuda") else method]
    setup = request.getfixturevalue("cache_flusher") if method == "op_cold" else None
    sync = timing.synchronizer(device)

    def call():
        out = runner(run_case)
        sync()
        return out

    benchmark.group = case.label
    activity = timing.OtherActivity()
    cpu0, wall0 = timing.process_cpu_seconds(), time.perf_counter()
    selection = benchmark.pedantic(call, setup=setup, rounds=plan.rounds, warmup_rounds=plan.warmup, iterations=1)
    # Cores kept busy over all rounds (warm-up included; not for op_cold, whose untimed
    # cache flushes would count, nor for very short runs; see timing.Timed).
    wall = time.perf_counter() - wall0
    cores_used = (
        None if (setup is not None or wall < timing.MIN_CORES_WALL_S) else (timing.process_cpu_seconds() - cpu0) / wall
    )
    other = activity.fraction()

    # Outside the timed region: the same keyframes as the op (on the CPU, computed once).
    expected = case.expected if run_case.batch == case.batch else case.subset(run_case.batch).expected
    baselines.check_same(selection, expected, method, case.label)

    roof = timing.Roofline(workloads.unique_candidate_bytes(case), bandwidth)
    info = benchmark.extra_info
    info.update(
        workload=case.workload.name,
        dtype=case.dtype_name,
        method=method,
        device=device,
        scale=scale,
        threads=torch.get_num_threads(),
        other_cpu_fraction=None if other is None else round(other, 3),
        cores_used=None if cores_used is None else round(cores_used, 2),
        clips=case.batch,
        clips_timed=run_case.batch,
        timing=(
            "full batch"
            if run_case.batch == case.batch
            else f"SUBSET: first {run_case.batch} of {case.batch} clips timed; "
            f"batch_median_ms is per-clip time x {case.batch}"
        ),
        rounds=plan.rounds,
        warmup_rounds=plan.warmup,
        unique_candidate_frames=workloads.unique_candidate_frames(case.win),
        unique_candidate_bytes=roof.nbytes,
        candidate_pairs=workloads.candidate_pairs(case.win),
        read_bandwidth_GBps=round(bandwidth.bytes_per_s / 1e9, 2),
        roofline_bound_ms=round(roof.bound_s * 1e3, 3),
    )
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        batch_median = stats.stats.median * case.batch / run_case.batch
        info["batch_median_ms"] = round(batch_median * 1e3, 3)
        info["roofline_fraction"] = round(roof.fraction(batch_median), 4)
    # /proc/stat counts in 10 ms ticks: only warn about windows long enough to mean something.
    if other is not None and other > OTHER_ACTIVITY_WARN and wall >= 0.25:
        warnings.warn(
            f"{case.label} {method}: other processes used {other:.0%} of the machine's CPU "
            f"while it was timed; its numbers are skewed",
            stacklevel=2,
        )
