"""The end-to-end demo: every layer of gamdss on a generated dataset, no data needed.

Steps (each the same code a user runs on a real dataset):

1. generate a small SYNTHETIC dataset with known keyframes (:mod:`gamdss.data.synthetic`)
   and write it in the CASME II layout, with biased "human" annotations in its spreadsheet;
2. read it with the CASME II reader and preprocess it (MTCNN face crop, frame cache);
3. reselect the keyframes over the cache once, as ``gamdss reselect`` does, and export the
   corrected annotation file and ``reselection.csv``;
4. audit how far the annotations moved (report with plots), from that ``reselection.csv``;
5. train a small GAMDSS model under honest LOSO on the same ``reselection.csv``
   (``reselection.files``) and print the pooled results table.

Because the data are generated, the demo can also say how far the annotated and the
reselected keyframes lie from the TRUE ones, which no real dataset can. The seconds each step
took are in :attr:`DemoResult.seconds`.

The printed numbers are reproducible on one machine: every random draw is seeded by
``DemoConfig.seed`` and the torch thread count is fixed (``threads``). Across machines the LOSO
table can differ (see the README): float reductions run in another order with another CPU
instruction set, BLAS library or thread count, and a few held-out clips near a decision
boundary change class.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gamdss.audit import audit_caches
from gamdss.data.cache import FrameCache
from gamdss.data.datasets import scan_dataset
from gamdss.data.preprocess import preprocess_clips
from gamdss.data.reselection_files import RESULTS_CSV
from gamdss.data.reselection_record import frame_numbers
from gamdss.data.synthetic import SyntheticConfig, make_dataset, read_ground_truth, write_dataset
from gamdss.reselection.export import export_reselection
from gamdss.reselection.run import reselect_cache
from gamdss.settings.reselection import preset as reselection_preset
from gamdss.train.config import TrainConfig, load_config
from gamdss.train.loso import is_run, run_loso
from gamdss.util import atomic
from gamdss.util.devices import check_device
from gamdss.util.run_lock import LOCK_NAME

MARKER = ".gamdss-demo"
MARKER_VERSION = 2  # 2: JSON recording the files each step wrote (1: a line of text)


@dataclass
class DemoConfig:
    """Sizes of the demo run; the defaults finish in a few minutes on a 2-core CPU.

    ``frame_size``: generated frames (H, W) in pixels; ``cache_size``: face crops (H, W);
    ``epochs``: training epochs per LOSO fold; ``preset``: the reselection preset of
    :mod:`gamdss.settings.reselection` used for the corrected annotations and for training
    (``recommended`` by default); ``emotions``: generated classes (CASME II
    vocabulary; the ``casme2-3`` protocol maps them to positive / surprise / negative).
    ``threads``: torch CPU threads of training (fixed so that a rerun on the same machine
    prints the same numbers; 0: torch's default, which depends on the machine). One by
    default: the tiny model gains little from a second thread, and on a machine whose cores
    are busy two threads waiting for each other made a fold 15x slower (measured: 47 s
    against 2.8 s for a 2-epoch fold).
    """

    out: Path = Path("gamdss-demo")
    subjects: int = 5
    clips_per_subject: int = 6
    frame_size: tuple[int, int] = (160, 160)
    cache_size: tuple[int, int] = (64, 64)
    bias: str = "typical"
    preset: str = "recommended"
    protocol: str = "casme2-3"
    epochs: int = 20
    emotions: tuple[str, ...] = ("happiness", "surprise", "disgust", "repression")
    seed: int = 0
    device: str = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.subjects < 2:
            problems.append(
                f"subjects must be >= 2 (LOSO needs a held-out and a training subject), got {self.subjects}"
            )
        if self.clips_per_subject < 1:
            problems.append(f"clips_per_subject must be >= 1, got {self.clips_per_subject}")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.threads < 0:
            problems.append(f"threads must be >= 0, got {self.threads}")
        if self.seed < 0:
            problems.append(f"seed must be >= 0, got {self.seed}")
        try:
            reselection_preset(self.preset)
        except ValueError as exc:
            problems.append(str(exc))
        if min(self.frame_size) < 64:
            problems.append(f"frame_size must be at least 64x64 for face detection, got {self.frame_size}")
        if min(self.cache_size) < 16:
            problems.append(f"cache_size must be at least 16x16, got {self.cache_size}")
        try:
            check_device(self.device)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("demo settings: " + "; ".join(problems))


@dataclass
class DemoResult:
    """Where everything went, and the headline numbers."""

    out: Path
    dataset: Path
    cache: Path
    reselection: Path
    audit_report: Path
    train_dir: Path
    keyframe_errors: dict[str, dict[str, float]]
    results: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


OUTPUTS = ("dataset", "cache", "reselection", "audit", "train")


class DemoOutputError(FileExistsError):
    """The demo output folder holds something the demo may not replace (the message says what)."""


def _files(folder: Path) -> list[str]:
    """Every file (and link) under ``folder``, as POSIX paths relative to it; links to
    folders are not followed."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    found = []
    for root, dirs, names in os.walk(folder):
        base = Path(root)
        found += [(base / n).relative_to(folder).as_posix() for n in names]
        found += [(base / d).relative_to(folder).as_posix() for d in dirs if (base / d).is_symlink()]
    return sorted(found)


def _read_record(out: Path) -> dict[str, Any] | None:
    """The step entries of ``out``'s marker (see :func:`prepare_output`); None when the marker
    is missing, unreadable or of an older demo (which did not record its files)."""
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    outputs = data.get("outputs") if isinstance(data, dict) and data.get("version") == MARKER_VERSION else None
    return outputs if isinstance(outputs, dict) else None


def _write_record(out: Path, outputs: dict[str, Any]) -> None:
    atomic.write_text(
        out / MARKER,
        json.dumps(
            {
                "made_by": "gamdss demo",
                "version": MARKER_VERSION,
                "note": "the files each step of `gamdss demo` wrote here; its next run deletes those files only",
                "outputs": outputs,
            },
            indent=1,
        )
        + "\n",
    )


def _inside(folder: Path, rel: Any) -> Path | None:
    """``folder / rel`` when ``rel`` is a plain relative path that stays inside ``folder``
    without passing through a link; else None (a damaged or crafted record deletes nothing)."""
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        return None
    path = folder / rel
    for parent in path.parents:
        if parent == folder:
            return path
        if parent.is_symlink():
            return None
    return None


def _prune_empty_folders(folder: Path) -> None:
    """Remove the folders under ``folder`` (and ``folder``) that hold no file any more."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for root, dirs, _ in os.walk(folder, topdown=False):
        for d in dirs:
            with contextlib.suppress(OSError):
                if not (Path(root) / d).is_symlink():
                    (Path(root) / d).rmdir()  # only when empty
    with contextlib.suppress(OSError):
        folder.rmdir()


def _demo_files(folder: Path, entry: Any) -> list[Path]:
    """The files in ``folder`` that the demo step of ``entry`` wrote: those it recorded when
    it ended (finished, failed or interrupted); after a step that could not record its end
    (killed), every file but those it found there when it began."""
    if not isinstance(entry, dict):
        return []
    if "written" in entry:
        listed = entry["written"]
        paths = [_inside(folder, rel) for rel in (listed if isinstance(listed, list) else [])]
        return [p for p in paths if p is not None and (p.is_file() or p.is_symlink())]
    kept = entry.get("kept", [])
    kept = set(kept) if isinstance(kept, list) else set()
    return [folder / rel for rel in _files(folder) if rel not in kept]


def prepare_output(out: Path, overwrite: bool) -> None:
    """Create ``out`` for the demo, deleting only files an earlier demo wrote there.

    The marker file :data:`MARKER` records, per output folder (:data:`OUTPUTS`), the files
    the demo's step wrote there (:func:`_recording`), also when the step failed or was
    interrupted. A rerun deletes exactly those, then the folders left empty, never any
    other file: a user's file inside ``train/`` or any other output folder stays, and the
    demo writes beside it. Only after a step killed outright (``kill -9``, power loss) is
    the record incomplete: it lists the files the step found when it began, and every other
    file in its folder counts as the step's. The ``train`` folder is a LOSO run folder,
    cleared by :func:`~gamdss.train.loso.run_loso` (``overwrite=True``), which deletes only
    the run's own files; here it is only checked to be a run (or to hold no files).

    Refused (:class:`DemoOutputError`, a ``FileExistsError``, before anything is deleted):
    ``out`` is a file; ``out`` is not empty and has no marker, unless ``overwrite``; an
    output folder holds files the demo has no record of writing where the demo cannot tell
    them from its own (no marker, or the marker of an older gamdss demo); an output entry
    is a file or a link; ``train`` holds files but no training run.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DemoOutputError(f"demo output {out} exists and is not a folder")
    record = _read_record(out) if out.is_dir() else None
    if out.is_dir():
        marked = (out / MARKER).is_file()
        if any(out.iterdir()) and not marked and not overwrite:
            raise DemoOutputError(
                f"demo output folder {out} is not empty and was not made by "
                f"`gamdss demo`; choose another --out or pass --overwrite "
                f"(which deletes no file of yours, only files the demo wrote)"
            )
        for name in OUTPUTS:
            target = out / name
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                raise DemoOutputError(
                    f"{target} is a file or a link, not a folder the demo made; move it or choose another --out"
                )
            unknown = [rel for rel in _files(target) if rel != LOCK_NAME]
            if name == "train":
                if unknown and not is_run(target):
                    raise DemoOutputError(
                        f"{target} holds files but no training run (e.g. {unknown[0]}); the demo "
                        f"trains there: move them or choose another --out"
                    )
            elif record is None and unknown:
                why = "an older gamdss demo made this folder and" if marked else "this folder has no demo marker, so"
                raise DemoOutputError(
                    f"{target}: {why} the demo cannot tell its own files from yours (e.g. "
                    f"{unknown[0]}); delete the demo's outputs there yourself or choose another "
                    f"--out"
                )
        for name in OUTPUTS:
            if name == "train":
                continue
            target = out / name
            for path in _demo_files(target, (record or {}).get(name)):
                path.unlink(missing_ok=True)
            _prune_empty_folders(target)
        with contextlib.suppress(OSError):
            (out / "train").rmdir()  # only when empty
    out.mkdir(parents=True, exist_ok=True)
    _write_record(out, {})


@contextlib.contextmanager
def _recording(out: Path, name: str, outputs: dict[str, Any]) -> Iterator[Path]:
    """Record in the marker the files a step writes into ``out / name`` (see
    :func:`prepare_output`); ``outputs``: the entries recorded so far (updated)."""
    folder = out / name
    before = set(_files(folder))
    outputs[name] = {"finished": False, "kept": sorted(before)}
    _write_record(out, outputs)
    try:
        yield folder
    except BaseException as exc:  # an error or Ctrl-C: record what the step wrote so far
        if not isinstance(exc, GeneratorExit):  # (not when a never-ended step is collected)
            outputs[name] = {"finished": False, "written": sorted(set(_files(folder)) - before)}
            _write_record(out, outputs)
        raise
    outputs[name] = {"finished": True, "written": sorted(set(_files(folder)) - before)}
    _write_record(out, outputs)


def keyframe_errors(ground_truth: dict, cache, results) -> dict[str, dict[str, float]]:
    """Mean |error| to the TRUE keyframes, in frames, of the annotation and the reselection.

    ``ground_truth``: clip id -> :class:`~gamdss.data.synthetic.GroundTruthRow` (dataset frame
    numbers); ``results``: :class:`~gamdss.data.reselection_record.ClipReselection` per clip.
    Returns ``{"annotated": {"onset": ..., "apex": ..., "offset": ...}, "reselected": {...}}``.
    """
    names = ("onset", "apex", "offset")
    err: dict[str, list[list[int]]] = {"annotated": [], "reselected": []}
    for r in results:
        entry = cache[r.clip_id]
        truth = ground_truth[r.clip_id].truth
        for kind, idx in (("annotated", r.annotated), ("reselected", r.reselected)):
            numbers = frame_numbers(entry, idx)
            err[kind].append([abs(n - t) for n, t in zip(numbers, truth)])
    return {
        kind: dict(zip(names, np.asarray(v, dtype=float).mean(axis=0).round(2).tolist())) for kind, v in err.items()
    }


STEPS = ("generate", "preprocess", "reselect", "audit", "train")


def train_config(cfg: DemoConfig, cache_dir: Path, reselection_csv: Path, train_dir: Path) -> TrainConfig:
    """The demo's training config: the ``tiny-cpu`` preset on the demo's cache, trained on the
    keyframes of ``reselection_csv`` (the demo's one reselection, ``reselection.files``)."""
    data = load_config("tiny-cpu").to_dict()
    data["data"].update(caches=[str(cache_dir)], protocol=cfg.protocol)
    # the file records its settings; the section names the same preset so that nothing differs
    data["reselection"] = {"enabled": True, "files": [str(reselection_csv)], "preset": cfg.preset}
    data["optim"]["epochs"] = cfg.epochs
    data["run"].update(output_dir=str(train_dir), device=cfg.device, seed=cfg.seed, num_threads=cfg.threads)
    return TrainConfig.from_dict(data, source="demo")


def run_demo(
    cfg: DemoConfig, *, overwrite: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> DemoResult:
    """Run every step; returns where the outputs are, the headline numbers and the seconds
    each step took (:data:`STEPS`; installing is not a step)."""
    out = Path(cfg.out)
    prepare_output(out, overwrite)
    recorded: dict[str, Any] = {}  # the marker's record of what each step writes
    seconds: dict[str, float] = {}
    dataset_dir, cache_dir = out / "dataset", out / "cache"
    resel_dir, audit_dir, train_dir = out / "reselection", out / "audit", out / "train"

    def step(name: str, title: str):
        log(f"\n[{STEPS.index(name) + 1}/{len(STEPS)}] {title}")
        seconds[name] = time.perf_counter()

    def done(name: str) -> None:
        seconds[name] = round(time.perf_counter() - seconds[name], 1)

    step(
        "generate",
        f"generating {cfg.subjects * cfg.clips_per_subject} SYNTHETIC clips "
        f"({cfg.subjects} subjects, 200 fps, {cfg.frame_size[1]}x{cfg.frame_size[0]}), "
        f"annotated with the {cfg.bias!r} bias model, written in the CASME II layout",
    )
    samples = make_dataset(
        SyntheticConfig(fps=200.0, size=tuple(cfg.frame_size)),
        n_subjects=cfg.subjects,
        clips_per_subject=cfg.clips_per_subject,
        seed=cfg.seed,
        bias=cfg.bias,
        emotions=cfg.emotions,
        progress=progress,
    )
    with _recording(out, "dataset", recorded):
        write_dataset(samples, dataset_dir, "casme2", overwrite=True, progress=progress)
    done("generate")
    log(f"      {dataset_dir}  (annotated keyframes in the spreadsheet, true ones in ground_truth.csv)")

    step(
        "preprocess",
        f"reading it with the CASME II reader; MTCNN face crop to "
        f"{cfg.cache_size[1]}x{cfg.cache_size[0]} into the frame cache",
    )
    scan = scan_dataset(dataset_dir, "casme2")
    for s in scan.skipped:
        log(f"      skipped row {s.row} {s.clip or ''}: {s.reason}")
    with _recording(out, "cache", recorded):
        report = preprocess_clips(
            scan.clips,
            cache_dir,
            dataset="casme2",
            size=tuple(cfg.cache_size),
            workers=1,
            device=cfg.device,
            overwrite=True,
            progress=progress,
        )
    for failure in report.failed:
        log(f"      FAILED {failure.clip_id}: {failure.reason}")
    if not report.done and not report.already_done:
        raise RuntimeError("the demo's preprocessing cached no clip; see the failures above")
    cache = FrameCache(cache_dir)
    done("preprocess")
    log(f"      {len(cache)} clips cached in {cache_dir}")

    # One reselection, as `gamdss reselect` makes it; the audit and training read its file.
    settings = reselection_preset(cfg.preset)
    step("reselect", f"reselecting keyframes once, as `gamdss reselect` does ({settings.describe()})")
    results = reselect_cache(cache, settings, device=cfg.device, progress=progress)
    with _recording(out, "reselection", recorded):
        export = export_reselection(cache, results, resel_dir, settings, overwrite=True)
    errors = keyframe_errors(read_ground_truth(dataset_dir), cache, results)
    done("reselect")
    log("      " + export.summary().replace("\n", "\n      "))

    step("audit", f"auditing the annotations from {resel_dir / RESULTS_CSV}")
    with _recording(out, "audit", recorded):
        audit = audit_caches(
            [cache], audit_dir, reselection_csv=[resel_dir / RESULTS_CSV], overwrite=True, progress=progress
        )
    done("audit")
    log(f"      audit report: {audit.report}")

    step(
        "train",
        f"training gamdss_tiny under honest LOSO ({cfg.protocol}, {cfg.epochs} epochs per fold, "
        f"last-epoch predictions) on the keyframes of {resel_dir / RESULTS_CSV}",
    )
    train_cfg = train_config(cfg, cache_dir, resel_dir / RESULTS_CSV, train_dir)
    with _recording(out, "train", recorded):
        # overwrite=True replaces an earlier demo's run, deleting only the run's own files.
        train_results = run_loso(train_cfg, overwrite=True, progress=progress)
    done("train")
    return DemoResult(
        out=out,
        dataset=dataset_dir,
        cache=cache_dir,
        reselection=resel_dir,
        audit_report=Path(audit.report),
        train_dir=train_dir,
        keyframe_errors=errors,
        results=train_results,
        seconds=seconds,
    )
