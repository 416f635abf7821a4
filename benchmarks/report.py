"""Run the reselection comparisons directly (no pytest) and print a Markdown table.

    python benchmarks/report.py [--scale full|small] [--device cpu|cuda]

Same workloads, methods, repeat policy, checks and roofline as
``benchmarks/test_bench_reselect.py`` (both use workloads.py, baselines.py and timing.py).
On the CPU the op's headline time is cold-cache: before every timed call a buffer 4x the
L3 size is rewritten and read (untimed, on one thread, so that no torch thread is left
spinning on a core), so the frames come from memory as they do when a pipeline reselects a
dataset once; the roofline fraction and the speed-ups use that time.
The op's time over repeated calls (frames may still be cached) is a second column. Every
row names the CPU (model, family/model numbers, the inner kernel in use).
With ``--device cuda`` the frames of the op, the reference and the careful implementation
are on the GPU and the roofline uses the GPU's read bandwidth; the released-style loop is
numpy code and always runs on the CPU frames.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import baselines  # noqa: E402
import timing  # noqa: E402
import workloads  # noqa: E402

ORDER = ("op", "op_cold", "careful", "released_loop", "reference")


def cpu_model() -> str:
    """The CPU's model name with its family/model numbers where /proc/cpuinfo has them
    (a virtual machine may show only "AMD EPYC"; family 25 is Zen 3/4, 23 Zen 1/2)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def l2_per_core() -> str:
    """One core's L2 size as the op reads it (it sizes its uint8 pieces to it), or "unknown"."""
    import gamdss_ext

    size = gamdss_ext.cpu_l2_bytes()
    return f"{size // 1024} KiB" if size > 0 else "unknown"


def cpu_label() -> str:
    """What every CPU row of the table names: the CPU model and the inner kernel in use."""
    import gamdss_ext

    return f"{cpu_model()}, {gamdss_ext.cpu_kernel()} kernel"


def plan_key(method: str, device: str) -> str:
    return "op_cuda" if (method == "op" and device == "cuda") else method


def measure(case: workloads.Case, method: str, scale: str, device: str) -> dict:
    """Time ``method`` on ``case`` by its plan; returns batch median seconds, repeats, clips
    (the op with cold caches: measure_cold)."""
    plan = timing.plan_for(plan_key(method, device), scale)
    run_case = case.subset(plan.clips)
    runner = baselines.METHODS[method]
    timed = timing.time_call(lambda: runner(run_case), plan.rounds, plan.warmup, device=run_case.device)
    return measured(case, run_case, plan, timed.times, timed.result, timed.cores_used)


def measured(case, run_case, plan: timing.Plan, times: list[float], selection, cores: float) -> dict:
    """What measure() returns: the batch median seconds (per clip x B when ``run_case`` is a
    subset of ``case``), the repeats, the clips timed, the selection and the cores kept busy."""
    return dict(
        batch_s=timing.median(times) * case.batch / run_case.batch,
        rounds=plan.rounds,
        warmup=plan.warmup,
        clips=run_case.batch,
        selection=selection,
        cores=cores,
    )


def measure_cold(
    case: workloads.Case, scale: str, flusher: timing.CacheFlusher
) -> tuple[dict, tuple[timing.PairedCold, int]]:
    """The op with cold caches, each call paired with a cold read of the bandwidth probe
    (timing.time_cold_paired); returns measure()'s dict, and the paired times with the
    candidate bytes of the clips they timed (the plan may time a subset)."""
    plan = timing.plan_for("op_cold", scale)
    run_case = case.subset(plan.clips)
    timed_bytes = workloads.unique_candidate_bytes(run_case)
    pc = timing.time_cold_paired(
        lambda: baselines.run_op(run_case), plan.rounds, plan.warmup, flusher, timing.probe_bytes(scale), timed_bytes
    )
    res = measured(case, run_case, plan, pc.op_s, pc.result, math.nan)
    return res, (pc, timed_bytes)


def build_line() -> str:
    """Which compiled extension this process loaded (it may be rebuilt between runs)."""
    import datetime

    import gamdss_ext
    from gamdss_ext import _C

    st = os.stat(_C.__file__)
    when = datetime.datetime.fromtimestamp(st.st_mtime).isoformat(timespec="seconds")
    info = gamdss_ext.build_info()
    return (
        f"gamdss_ext {os.path.basename(_C.__file__)} ({st.st_size:,} bytes, installed {when}), CPU kernel "
        f"{gamdss_ext.cpu_kernel()}, CUDA kernels {info.get('cuda_kernels')}"
    )


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:,.0f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=workloads.SCALES, default=workloads.scale_from_env())
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument(
        "--workloads",
        nargs="*",
        choices=[w.name for w in workloads.WORKLOADS],
        default=[w.name for w in workloads.WORKLOADS],
    )
    ap.add_argument("--dtypes", nargs="*", choices=list(workloads.DTYPES), default=list(workloads.DTYPES))
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to SECONDS for other processes to use < 10%% of the CPU",
    )
    ap.add_argument(
        "--cpu-kernel",
        choices=("auto", "baseline", "avx2", "avxvnni", "avx512_ymm", "avx512"),
        default="auto",
        help="the op's CPU inner kernels (default: the best this CPU supports)",
    )
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: CUDA not available (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    import gamdss_ext

    previous = gamdss_ext.cpu_kernel()
    try:
        gamdss_ext.set_cpu_kernel(args.cpu_kernel)
    except ValueError as e:
        print(f"--cpu-kernel {args.cpu_kernel}: {e}", file=sys.stderr)
        return 2
    try:
        return run_report(args)
    finally:
        gamdss_ext.set_cpu_kernel(previous)


def run_report(args: argparse.Namespace) -> int:
    """Measure and print the report for the parsed command line (the CPU kernel is set)."""
    build = build_line()  # at import time, before anything is timed
    if args.wait_quiet > 0:
        timing.wait_until_quiet(args.wait_quiet)
    run_activity = timing.OtherActivity()
    bw_start = timing.measure_read_bandwidth(args.device, timing.probe_bytes(args.scale))
    flusher = timing.CacheFlusher(timing.probe_bytes(args.scale)) if args.device == "cpu" else None
    results, notes, activities, cores = [], [], [], []
    for name in args.workloads:
        for dtype_name in args.dtypes:
            cpu_case = workloads.build_case(name, dtype_name, args.scale)
            case = cpu_case if args.device == "cpu" else cpu_case.to(args.device)
            activity = timing.OtherActivity()
            res = {}
            paired_cold = None
            res["op"] = measure(case, "op", args.scale, args.device)
            case.expected = cpu_case.expected = res["op"]["selection"]
            if flusher is not None:
                res["op_cold"], paired_cold = measure_cold(case, args.scale, flusher)
            for method in ORDER[2:]:
                on = cpu_case if method == "released_loop" else case
                res[method] = measure(on, method, args.scale, args.device)
            for method, r in res.items():
                baselines.check_same(r["selection"], case.subset(r["clips"]).expected, method, case.label)
                if r["clips"] != case.batch:
                    notes.append(
                        f"{case.label} {method}: first {r['clips']} of {case.batch} clips timed, "
                        f"scaled per clip to the batch"
                    )
            other = activity.fraction()
            if other is not None:
                activities.append(f"{case.label} {other:.0%}")
            times = {m: r["batch_s"] for m, r in res.items()}
            cores.append(
                f"{case.label} "
                + " / ".join(
                    "n/a" if math.isnan(res[m]["cores"]) else f"{res[m]['cores']:.2f}" for m in ("op", "careful")
                )
            )
            results.append(
                (
                    case.workload.name,
                    dtype_name,
                    f"{case.batch}x{case.workload.frames}",
                    workloads.unique_candidate_bytes(case),
                    times,
                    paired_cold,
                )
            )
            print(f"[done] {case.label}", file=sys.stderr, flush=True)
            del case, cpu_case, res
            gc.collect()
            if args.device == "cuda":
                torch.cuda.empty_cache()

    del flusher
    gc.collect()
    bw_end = timing.measure_read_bandwidth(args.device, timing.probe_bytes(args.scale))
    other_run = run_activity.fraction()
    bandwidth = max(bw_start, bw_end, key=lambda b: b.bytes_per_s)

    # On the CPU the headline op time is the cold-cache one; on CUDA there is no flusher.
    cold = args.device == "cpu"
    machine = cpu_label() if args.device == "cpu" else torch.cuda.get_device_name()
    head = [
        "workload",
        "dtype",
        "clips x T",
        "candidate MB",
        "machine",
        "op, cold cache (ms)" if cold else "op (ms)",
    ]
    if cold:
        head += ["read bandwidth, same rounds (GB/s)", "core speed, same rounds (GHz)"]
    head += [
        "roofline bound (ms)",
        "fraction of roofline",
    ]
    if cold:
        head += ["plain read of the same bytes, paired"]
    head += [
        "careful (ms)",
        "op vs careful",
        "released loop (ms)",
        "op vs released loop",
        "reference (ms)",
    ]
    if cold:
        head += ["fraction of the run's best bandwidth", "op, repeated calls (ms)", "fraction, repeated"]
    rows = []
    for name, dtype_name, shape, nbytes, t, paired_cold in results:
        roof = timing.Roofline(nbytes, bandwidth)
        op_s = t["op_cold"] if cold else t["op"]
        row = [name, dtype_name, shape, f"{nbytes / 1e6:.3g}", machine, fmt_ms(op_s)]
        if cold:
            assert paired_cold is not None  # measured for every case on the CPU
            pc, timed_bytes = paired_cold
            bws = pc.bandwidths()
            same_bw = timing.median(bws)
            ghz = pc.core_ghz
            row += [
                f"{same_bw / 1e9:.1f} ({min(bws) / 1e9:.0f}-{max(bws) / 1e9:.0f})",
                f"{timing.median(ghz):.2f} ({min(ghz):.1f}-{max(ghz):.1f})",
                f"{nbytes / same_bw * 1e3:.3g}",
                f"{timing.median(pc.fractions(timed_bytes)):.0%}",
                f"{timing.median(pc.same_fractions(timed_bytes)):.0%}",
            ]
        else:
            row += [f"{roof.bound_s * 1e3:.3g}", f"{roof.fraction(op_s):.0%}"]
        row += [
            fmt_ms(t["careful"]),
            f"{t['careful'] / op_s:.1f}x",
            fmt_ms(t["released_loop"]),
            f"{t['released_loop'] / op_s:.1f}x",
            fmt_ms(t["reference"]),
        ]
        if cold:
            row += [f"{roof.fraction(op_s):.0%}", fmt_ms(t["op"]), f"{roof.fraction(t['op']):.0%}"]
        rows.append(row)
    print(f"## gamdss reselection benchmark (scale {args.scale}, device {args.device})\n")
    print(
        f"- CPU: {cpu_model()} ({os.cpu_count()} logical CPUs, L2 {l2_per_core()} per core), "
        f"torch.get_num_threads() = {torch.get_num_threads()}, torch {torch.__version__}"
    )
    print(f"- build: {build}")
    if args.device == "cuda":
        print(f"- GPU: {torch.cuda.get_device_name()}")
    print(
        f"- read bandwidth: {bandwidth} (measured at the start: {bw_start.bytes_per_s / 1e9:.1f} GB/s, "
        f"at the end: {bw_end.bytes_per_s / 1e9:.1f} GB/s; the better one is used)"
    )
    if other_run is not None:
        print(
            f"- CPU share used by other processes (and steal) during the run: {other_run:.0%}; per case: "
            f"{', '.join(activities)}" + (" (WARNING: other work skewed these numbers)" if other_run > 0.1 else "")
        )
    print(
        f"- frames {workloads.scaled(workloads.WORKLOADS[0], args.scale).frame_shape}, random uint8 "
        f"(float32: the same values); paper windows, distance l2; all methods selected the same keyframes"
    )
    print(
        "- roofline bound = bytes of the unique candidate frames (union of the onset, apex and offset "
        "windows per clip, summed over clips) / read bandwidth; fraction = bound / op time"
        + (
            "; on the CPU (the headline): each cold call of the op is followed at once by a cold "
            "`t.sum()` of the bandwidth probe, the fraction is taken per round and its median shown, "
            "with the probe's median (min-max) bandwidth over the same rounds; "
            '"fraction of the run\'s best bandwidth" sets the median cold call against the better '
            "of the two best-of-10 probes above (shared machines change bandwidth within seconds); "
            '"core speed": dependent integer additions per ns (about the clock in GHz), timed just before '
            "each cold call, median (min-max): a shared machine's cores also change speed, which stretches "
            "the op's arithmetic and which the read bandwidth does not show; "
            '"plain read of the same bytes": in the same rounds, a cold `t.sum()` of a float32 tensor '
            "of as many bytes as the op reads, as a paired fraction of the roofline: what the simplest "
            "read of that much memory reaches, start-up included"
            if cold
            else ""
        )
    )
    reps = ", ".join(
        f"{m}: {'median of ' + str(p.rounds) if p.rounds > 1 else str(p.rounds) + ' run'} after {p.warmup} warm-up"
        for m in ORDER
        if not (m == "op_cold" and args.device == "cuda")
        for p in [timing.plan_for(plan_key(m, args.device), args.scale)]
    )
    print(f"- repeats: {reps}")
    if args.device == "cpu":
        print(f"- cores kept busy (process CPU time / wall time while timed), op / careful: {', '.join(cores)}")
    if args.device == "cuda":
        print("- released loop: numpy on the CPU frames")
    else:
        print(
            "- op, cold cache (the headline: the roofline fraction and the speed-ups use it): before each timed "
            f"call an untimed rewrite and read of a {timing.probe_bytes(args.scale) / 2**30:.3g} GiB buffer "
            "(numpy, one thread) evicts the frames (and their page-table entries) from the caches; op, repeated calls: no eviction "
            "(frames may stay in the caches between calls)"
        )
    for n in notes:
        print(f"- {n}")
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
