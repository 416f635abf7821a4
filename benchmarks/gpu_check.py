"""The GPU check: everything that needs a CUDA GPU, in one run, into one markdown report.

::

    bash scripts/gpu_check.sh REPORT.md          # or: python benchmarks/gpu_check.py REPORT.md

Steps (each a subprocess with its own time limit, the most wanted numbers first; the whole run
stays under 8 minutes on an H100/H200: a step gets at most what is left of the budget, and one
that would get under 10 s is listed as not run):

1. ``build``: the extension must load with its CUDA kernels under this Python and torch. A lent
   GPU machine has its own Python and torch (and no virtual environment from here), so when it
   does not load, it is built there with CMake for this GPU's architecture only (the CUDA
   toolkit found by :func:`cuda_root`) and put beside the sources (``python/gamdss_ext``, as a
   development build). When it cannot be built, no other step runs.
2. ``cuda-tests``: ``pytest -k cuda`` over the test files with CUDA cases (the CUDA kernels
   against the reference, bad inputs, ``torch.compile``, the released tie order).
3. ``bandwidth``: a device-to-device copy probe (the card's memory bandwidth, read + write,
   measured in this run) and the op on the CASME II-like workload (a), one call at a time and
   back to back on eight copies of it, with its fraction of that bandwidth.
4. ``reselect-vs-epoch``: reselection of a whole synthetic CASME II-sized cache (255 clips of 64
   frames at 224 px) on the GPU against one training epoch over the same clips.
5. ``train-fp32``, ``train-amp``: a two-fold LOSO smoke run of the GAMDSS model (224 px, two
   epochs) on a small synthetic cache, without and with mixed precision.
6. ``pipeline``: ``benchmarks/pipeline.py --device cuda`` (samples/s delivered to the GPU).
7. ``op-bench``: ``benchmarks/report.py --device cuda`` (the op against the plain-PyTorch methods).

The report is rewritten (atomically) after every step, so a run stopped from outside keeps
what it measured. Without a CUDA GPU (no ``nvidia-smi`` answering, or torch without CUDA) it
prints one line, ``no CUDA GPU: skipped``, writes it to the report, and exits 0. Exit 1 when a
step failed (a step left out for lack of time is listed in the report, not counted as failed).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SKIP_LINE = "no CUDA GPU: skipped"
TOTAL_BUDGET_S = 450  # the whole check: under 8 minutes with start-up and report
STEPS = (  # name, time limit in seconds; the most wanted numbers first
    ("build", 240),
    ("cuda-tests", 120),
    ("bandwidth", 60),
    ("reselect-vs-epoch", 90),
    ("train-fp32", 45),
    ("train-amp", 45),
    ("pipeline", 50),
    ("op-bench", 90),
)
#: test files with CUDA cases (``-k cuda`` picks them, and all of test_cuda.py)
CUDA_TEST_FILES = (
    "test_cuda.py",
    "test_bad_inputs.py",
    "test_compile.py",
    "test_released_ties.py",
    "test_reselect_cases.py",
)


def has_cuda_gpu() -> bool:
    """A CUDA GPU that torch can use (``nvidia-smi`` asked first, so a machine without a
    driver answers without importing torch)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        if subprocess.run([smi, "-L"], capture_output=True, timeout=20).returncode != 0:
            return False
    except (OSError, subprocess.TimeoutExpired):
        return False
    import torch  # deferred: only where a driver answered

    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"  # a step stopped at its limit keeps what it printed
    return env


def _command(step: str, work: Path, device: str, small: bool = False) -> list[str]:
    py = sys.executable
    if step == "cuda-tests":
        files = [str(ROOT / "tests" / name) for name in CUDA_TEST_FILES]
        return [py, "-m", "pytest", *files, "-k", "cuda", "-q", "-p", "no:cacheprovider"]
    if step == "op-bench":
        return [py, str(HERE / "report.py"), "--device", "cuda"]
    if step == "pipeline":
        return [py, str(HERE / "pipeline.py"), "--device", device, "--workers", "0", "4", "8", "--batches", "20"]
    tail = ["--small"] if small else []
    return [py, str(Path(__file__).resolve()), "--step", step, "--work", str(work), "--device", device, *tail]


# ---------------------------------------------------------------------------- in-process steps
# Imports are deferred into the steps: the check's own process answers "skipped" without importing
# torch, and each step (a subprocess) loads only what it measures.


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


LOAD_CHECK = (
    "import gamdss_ext, torch; info = gamdss_ext.build_info(); "
    "assert info['cuda_kernels'], 'built without its CUDA kernels: ' + repr(info.get('cuda_skipped_reason')); "
    "print('gamdss_ext loads:', {k: info[k] for k in ('torch_version', 'cuda_archs', 'cxx_compiler')})"
)


def _loads(env: dict[str, str]) -> tuple[bool, str]:
    """Whether gamdss_ext loads with its CUDA kernels in a fresh interpreter, and what it said."""
    proc = subprocess.run([sys.executable, "-c", LOAD_CHECK], env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def cuda_root() -> Path:
    """The CUDA toolkit: the first of $CUDA_HOME, $CUDA_PATH, the folder above the ``nvcc`` on
    PATH and /usr/local/cuda that holds ``bin/nvcc`` and ``include/cuda_runtime.h`` (an
    ``nvcc`` on PATH may be a wrapper script elsewhere)."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    candidates.append("/usr/local/cuda")
    for candidate in filter(None, candidates):
        root = Path(candidate)
        if (root / "bin" / "nvcc").is_file() and (root / "include" / "cuda_runtime.h").is_file():
            return root
    return Path("/usr/local/cuda")


def python_include() -> Path:
    """The folder of this Python's C headers: $GAMDSS_PYTHON_INCLUDE, else the interpreter's own."""
    import sysconfig

    return Path(os.environ.get("GAMDSS_PYTHON_INCLUDE") or sysconfig.get_paths()["include"])


def tool(name: str, python: str) -> str | None:
    """``name`` (cmake, ninja) beside ``python`` (the pip-installed ones), else on PATH."""
    beside = Path(python).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def cmake_commands(build_dir: Path, arch: str, python: str, jobs: int) -> list[list[str]]:
    """Configure and build the extension for one CUDA architecture (``"9.0"``), CUDA required."""
    cmake = tool("cmake", python) or "cmake"
    ninja = tool("ninja", python)
    generator = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else []
    configure = [
        cmake,
        "-S",
        str(ROOT),
        "-B",
        str(build_dir),
        *generator,
        "-DCMAKE_BUILD_TYPE=Release",
        "-DGAMDSS_CUDA=ON",
        f"-DGAMDSS_CUDA_ARCHS={arch}",
        f"-DGAMDSS_CUDA_ROOT={cuda_root()}",
        f"-DPython_EXECUTABLE={python}",
    ]
    return [configure, [cmake, "--build", str(build_dir), "--parallel", str(jobs)]]


def step_build(device: str) -> None:
    """Make sure the extension loads with its CUDA kernels; build it here if it does not."""
    env = _env()
    ok, said = _loads(env)
    if ok:
        print(said)
        return
    print(f"gamdss_ext does not load as it is ({said.splitlines()[-1] if said else 'no output'}); building it")
    import torch

    major, minor = torch.cuda.get_device_capability(torch.device(device))
    arch = f"{major}.{minor}"
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    build_dir = ROOT / "build" / f"gpu-check-{tag}-sm{major}{minor}"
    include = python_include()
    if not (include / "Python.h").is_file():
        raise SystemExit(
            f"this Python has no C headers ({include / 'Python.h'} is missing), so the extension cannot be "
            f"built: set GAMDSS_PYTHON_INCLUDE to a folder with the headers of Python "
            f"{sys.version_info.major}.{sys.version_info.minor} (any patch release)"
        )
    t0 = time.perf_counter()
    commands = cmake_commands(build_dir, arch, sys.executable, os.cpu_count() or 1)
    commands[0].append(f"-DPython_INCLUDE_DIR={include}")
    for command in commands:
        print("$", " ".join(command), flush=True)
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            said = (proc.stdout + proc.stderr).splitlines()
            errors = [line for line in said if "error" in line.lower()][:30]
            print("\n".join(["first lines naming an error:", *errors, "", "last lines:", *said[-30:]]))
            raise SystemExit(f"build failed (exit {proc.returncode})")
    target = ROOT / "python" / "gamdss_ext"
    built = sorted(build_dir.glob("_C*.so")) + [build_dir / "_build_config.py"]
    for path in built:
        shutil.copy2(path, target / path.name)
    print(
        f"built for sm_{major}{minor} with {cuda_root()} in {time.perf_counter() - t0:.0f} s: "
        f"{', '.join(p.name for p in built)} -> {target}"
    )
    ok, said = _loads(env)
    print(said)
    if not ok:
        raise SystemExit("the extension built here does not load")


def step_bandwidth(device: str, small: bool) -> None:
    """Copy-probe bandwidth and the op's fraction of it on workload (a)."""
    import torch

    import baselines
    import workloads

    nbytes = (64 << 20) if small else (2 << 30)
    a = torch.empty(nbytes, dtype=torch.uint8, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    _sync(device)
    reps = 10
    t0 = time.perf_counter()
    for _ in range(reps):
        b.copy_(a)
    _sync(device)
    copy_s = (time.perf_counter() - t0) / reps
    bandwidth = 2 * nbytes / copy_s  # read + write
    print(f"device-to-device copy of {nbytes / 2**30:.2f} GiB: {copy_s * 1e3:.2f} ms, {bandwidth / 1e9:.0f} GB/s")
    del a, b
    name = workloads.WORKLOADS[0].name
    case = workloads.build_case(name, "uint8", "small" if small else "full").to(device)
    baselines.run_op(case)
    _sync(device)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        baselines.run_op(case)
        _sync(device)
        times.append(time.perf_counter() - t0)
    op_s = sorted(times)[len(times) // 2]
    read = workloads.unique_candidate_bytes(case)
    print(
        f"op on workload {name} (uint8), one call at a time (results back on the CPU): {op_s * 1e3:.3f} ms "
        f"median of 5, reads >= {read / 2**20:.0f} MiB of unique candidate frames: {read / op_s / 1e9:.0f} GB/s "
        f"= {read / op_s / bandwidth:.0%} of the copy probe"
    )
    # Back to back on eight copies of the workload (one call reads 8x the bytes), timed by CUDA
    # events around 10 calls: the kernels' own speed, without a call's fixed costs.
    import gamdss

    copies = 2 if small else 8
    x = case.x.repeat(copies, *([1] * (case.x.dim() - 1)))
    packed = gamdss.op.packing.pack_clips(x, case.packed.lengths.repeat(copies))
    ann, win = case.ann.repeat(copies, 1), case.win.repeat(copies, 1)
    args = (packed.frames, packed.starts, packed.lengths, ann, win, "l2", 0, 0, 0)
    torch.ops.gamdss.reselect(*args)
    _sync(device)
    if torch.device(device).type == "cuda":
        with torch.cuda.device(device):  # the events go on that device's stream
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(10):
                torch.ops.gamdss.reselect(*args)
            end.record()
            _sync(device)
            call_s = start.elapsed_time(end) / 1e3 / 10
    else:  # trying the step on the CPU (--small)
        t0 = time.perf_counter()
        for _ in range(10):
            torch.ops.gamdss.reselect(*args)
        call_s = (time.perf_counter() - t0) / 10
    print(
        f"op on {copies} copies of workload {name} ({case.batch * copies} clips), 10 calls back to back: "
        f"{call_s * 1e3:.3f} ms per call, reads >= {copies * read / 2**20:.0f} MiB: "
        f"{copies * read / call_s / 1e9:.0f} GB/s = {copies * read / call_s / bandwidth:.0%} of the copy probe "
        f"(target: 50%)"
    )


def _synthetic_cache(work: Path, clips: int, frames: int, size: int):
    from pipeline import make_cache

    root = work / f"cache-{clips}x{frames}x{size}"
    if (root / "manifest.json").is_file():
        shutil.rmtree(root)
    return root, make_cache(root, clips, frames, size)


def step_train(device: str, amp: bool, small: bool, work: Path) -> None:
    """Two LOSO folds of the GAMDSS model, two epochs, on a small synthetic cache."""
    from gamdss.data.protocols import get_protocol
    from gamdss.train import load_config
    from gamdss.train.loso import run_loso

    size = 64 if small else 224
    root, samples = _synthetic_cache(work, 24, 16, size)
    protocol = get_protocol("casme2-5")
    folds = sorted({protocol.subject_key("casme2", s.subject) for s in samples})[:2]
    out = work / f"train-{'amp' if amp else 'fp32'}"
    overrides = [
        f"data.caches=[{root}]",
        f"data.image_size={size}",
        f"run.output_dir={out}",
        f"run.device={device}",
        f"run.amp={'true' if amp else 'false'}",
        f"run.folds=[{', '.join(folds)}]",
        "run.tsne=false",
        "optim.epochs=2",
        "optim.batch_size=8",
    ]
    cfg = load_config("casme2-5", overrides)
    t0 = time.perf_counter()
    run_loso(cfg, progress=False)
    print(f"two folds ({', '.join(folds)}), 2 epochs, amp={amp}, {size} px: {time.perf_counter() - t0:.1f} s")
    table = out / "table.md"
    if table.is_file():
        print(table.read_text(encoding="utf-8"))


def step_reselect_vs_epoch(device: str, small: bool, work: Path) -> None:
    """Reselection of a whole CASME II-sized cache vs one training epoch over it."""
    import torch

    from gamdss.data.cache import FrameCache
    from gamdss.data.keyframes import KeyframeDataset, collate
    from gamdss.models import build_model
    from gamdss.models.gamdss import gamdss_loss
    from gamdss.reselection.run import reselect_cache
    from gamdss.settings.reselection import PRESETS

    clips, frames, size = (32, 24, 64) if small else (255, 64, 224)
    t0 = time.perf_counter()
    root, samples = _synthetic_cache(work, clips, frames, size)
    print(f"synthetic cache: {clips} clips x {frames} frames x {size} px, written in {time.perf_counter() - t0:.1f} s")
    cache = FrameCache(root)
    reselect_cache(cache, PRESETS["paper"], device=device, progress=False, clip_ids=[cache.entries[0].clip_id])
    _sync(device)
    t0 = time.perf_counter()
    reselect_cache(cache, PRESETS["paper"], device=device, progress=False)
    _sync(device)
    resel_s = time.perf_counter() - t0
    print(f"reselection (paper preset, max_distance op on {device}) of all {clips} clips: {resel_s:.2f} s")

    ds = KeyframeDataset(samples, [root], image_size=size, augment=True)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=32, shuffle=True, collate_fn=collate, num_workers=min(8, os.cpu_count() or 1), pin_memory=True
    )
    model = build_model("gamdss", 5, img_size=size).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=8e-4)
    model.train()

    def epoch() -> float:
        _sync(device)
        t = time.perf_counter()
        for batch, labels, _ in loader:
            x = ds.transform(batch, device)
            rise, fall = x.motion()
            out = model(rise, fall, x.onset, x.offset)
            loss = gamdss_loss(out, labels.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        return time.perf_counter() - t

    first = epoch()  # cudnn autotuning, worker start-up
    second = epoch()
    print(f"one training epoch (GAMDSS, fp32, batch 32, {len(ds)} clips): {second:.2f} s (first epoch {first:.2f} s)")
    print(f"reselection / one epoch: {resel_s / second:.2%} (target: under 1%)")


# ---------------------------------------------------------------------------- the check


def _tail(text: str, lines: int = 60) -> str:
    parts = text.strip().splitlines()
    return "\n".join(parts[-lines:])


def run_check(report: Path, device: str, budget: float, small: bool = False) -> int:
    """Run the steps in order within ``budget`` seconds, rewriting ``report`` after each."""
    started = time.perf_counter()
    env = _env()
    sections: list[str] = []
    failed: list[str] = []
    not_run: list[str] = []  # no time left in the budget: not a failure
    try:
        head = _header(device)
    except Exception as exc:  # noqa: BLE001 - a bad --device must not cost the report
        head = [f"- device {device}: {type(exc).__name__}: {exc}"]

    def write(done: bool) -> None:
        total = time.perf_counter() - started
        state = "" if done else " (so far: the check is still running or was stopped)"
        lines = [
            "# gamdss GPU check",
            "",
            *head,
            f"- total: {total:.0f} s{state}; failed: {', '.join(failed) or 'none'}; "
            f"not run for lack of time: {', '.join(not_run) or 'none'}",
        ]
        report.parent.mkdir(parents=True, exist_ok=True)
        partial = report.with_name(report.name + ".partial")
        partial.write_text("\n".join([*lines, "", *sections]), encoding="utf-8")
        os.replace(partial, report)

    try:
        write(done=False)  # a report exists from the start
        with tempfile.TemporaryDirectory(prefix="gamdss-gpu-check-", ignore_cleanup_errors=True) as tmp:
            work = Path(tmp)
            for name, limit in STEPS:
                left = budget - (time.perf_counter() - started)
                if "build" in failed:
                    sections.append(f"## {name}\n\nnot run: the extension could not be built (see build)\n")
                    failed.append(name)
                    continue
                if left < 10:
                    sections.append(f"## {name}\n\nnot run: the check's {budget:.0f} s were spent\n")
                    not_run.append(name)
                    continue
                limit = min(limit, left)
                print(f"gpu check: {name} (limit {limit:.0f} s)", flush=True)
                status, seconds, output = _run_step(_command(name, work, device, small), env, limit)
                if status != "ok":
                    failed.append(name)
                sections.append(f"## {name}: {status}, {seconds:.1f} s\n\n```\n{_tail(output)}\n```\n")
                write(done=False)
    finally:
        write(done=True)
    total = time.perf_counter() - started
    ok = len(STEPS) - len(failed) - len(not_run)
    print(f"gpu check: {ok} of {len(STEPS)} steps ok, {len(not_run)} not run for lack of time, in {total:.0f} s")
    print(f"gpu check: report {report}")
    return 1 if failed else 0


def _run_step(command: list[str], env: dict[str, str], limit: float) -> tuple[str, float, str]:
    """(status, seconds, output) of one step's subprocess; stdout and stderr both kept when it
    fails or runs over ``limit``."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        output = proc.stdout + ("\n" + proc.stderr if proc.returncode else "")
    except subprocess.TimeoutExpired as exc:
        status = f"FAILED (over its {limit:.0f} s limit)"
        output = "\n".join(_text(part) for part in (exc.stdout, exc.stderr) if part)
    except OSError as exc:  # the command could not start
        status, output = "FAILED (could not start)", str(exc)
    return status, time.perf_counter() - t0, output


def _text(part: str | bytes) -> str:
    return part.decode("utf-8", errors="replace") if isinstance(part, bytes) else part


def _header(device: str) -> list[str]:
    import torch

    lines = [f"- torch {torch.__version__}, CUDA {torch.version.cuda}, Python {platform.python_version()}"]
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        lines.append(f"- GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, {os.cpu_count()} CPUs")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", nargs="?", type=Path, help="the markdown report to write")
    ap.add_argument("--device", default="cuda", help="the CUDA device (cuda, cuda:1)")
    ap.add_argument("--budget", type=float, default=TOTAL_BUDGET_S, help="seconds for all steps together")
    ap.add_argument("--step", choices=[s for s, _ in STEPS], help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--small", action="store_true", help="tiny sizes (to try the steps on any device)")
    args = ap.parse_args(argv)
    if args.step:  # one in-process step (run by the check as a subprocess)
        sys.path.insert(0, str(HERE))
        work = args.work or Path(tempfile.mkdtemp(prefix="gamdss-gpu-step-"))
        if args.step == "build":
            step_build(args.device)
        elif args.step == "bandwidth":
            step_bandwidth(args.device, args.small)
        elif args.step in ("train-fp32", "train-amp"):
            step_train(args.device, args.step == "train-amp", args.small, work)
        elif args.step == "reselect-vs-epoch":
            step_reselect_vs_epoch(args.device, args.small, work)
        else:
            ap.error(f"--step {args.step} runs as its own command")
        return 0
    if args.report is None:
        ap.error("give the report path: gpu_check.py REPORT.md")
    if not has_cuda_gpu():
        print(SKIP_LINE)
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(f"# gamdss GPU check\n\n{SKIP_LINE}\n", encoding="utf-8")
        return 0
    return run_check(args.report, args.device, args.budget, args.small)


if __name__ == "__main__":
    raise SystemExit(main())
