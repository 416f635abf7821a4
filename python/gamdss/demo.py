"""The end-to-end demo: every layer of gamdss on a generated dataset, no data needed.

Steps (each the same code a user runs on a real dataset):

1. generate a small SYNTHETIC dataset with known keyframes (:mod:`gamdss.data.synthetic`)
   and write it in the CASME II layout, with biased "human" annotations in its spreadsheet;
2. read it with the CASME II reader and preprocess it (MTCNN face crop, frame cache);
3. reselect the keyframes over the cache and export the corrected annotation file;
4. audit how far the annotations moved (report with plots);
5. train a small GAMDSS model under honest LOSO and print the pooled results table
   (steps 3 and 4 are reported as one).

Because the data are generated, the demo can also say how far the annotated and the
reselected keyframes lie from the TRUE ones, which no real dataset can.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

MARKER = ".gamdss-demo"


@dataclass
class DemoConfig:
    """Sizes of the demo run; the defaults finish in a few minutes on a 2-core CPU.

    ``frame_size``: generated frames (H, W) in pixels; ``cache_size``: face crops (H, W);
    ``epochs``: training epochs per LOSO fold; ``preset``: the reselection preset of
    :mod:`gamdss.reselection_settings` used for the corrected annotations and for training
    (``recommended`` by default); ``emotions``: generated classes (CASME II
    vocabulary; the ``casme2-3`` protocol maps them to positive / surprise / negative).
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

    def __post_init__(self) -> None:
        from gamdss.devices import check_device
        from gamdss.reselection_settings import preset as reselection_preset

        problems = []
        if self.subjects < 2:
            problems.append(f"subjects must be >= 2 (LOSO needs a held-out and a training subject), got {self.subjects}")
        if self.clips_per_subject < 1:
            problems.append(f"clips_per_subject must be >= 1, got {self.clips_per_subject}")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
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


def prepare_output(out: Path, overwrite: bool) -> None:
    """Create ``out`` for the demo.

    The demo's own entries (:data:`OUTPUTS` and the marker file) from an earlier demo are
    replaced. Anything else in the folder is never deleted: a non-empty folder without the
    marker is refused unless ``overwrite``, and then only the demo's entries are replaced
    (the user's other files stay).
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"demo output {out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).is_file() and not overwrite:
            raise FileExistsError(f"demo output folder {out} is not empty and was not made by "
                                  f"`gamdss demo`; choose another --out or pass --overwrite "
                                  f"(which replaces only the demo's own {', '.join(OUTPUTS)} folders)")
        for name in OUTPUTS:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by `gamdss demo`; the next demo run replaces its "
                              + ", ".join(OUTPUTS) + " folders here\n")


def keyframe_errors(ground_truth: dict, cache, results) -> dict[str, dict[str, float]]:
    """Mean |error| to the TRUE keyframes, in frames, of the annotation and the reselection.

    ``ground_truth``: clip id -> :class:`~gamdss.data.synthetic.GroundTruthRow` (dataset frame
    numbers); ``results``: :class:`~gamdss.dataset_reselection.ClipReselection` per clip.
    Returns ``{"annotated": {"onset": ..., "apex": ..., "offset": ...}, "reselected": {...}}``.
    """
    import numpy as np

    from gamdss.dataset_reselection import frame_numbers

    names = ("onset", "apex", "offset")
    err: dict[str, list[list[int]]] = {"annotated": [], "reselected": []}
    for r in results:
        entry = cache[r.clip_id]
        truth = ground_truth[r.clip_id].truth
        for kind, idx in (("annotated", r.annotated), ("reselected", r.reselected)):
            numbers = frame_numbers(entry, idx)
            err[kind].append([abs(n - t) for n, t in zip(numbers, truth)])
    return {kind: dict(zip(names, np.asarray(v, dtype=float).mean(axis=0).round(2).tolist()))
            for kind, v in err.items()}


def run_demo(cfg: DemoConfig, *, overwrite: bool = False, progress: bool = True,
             log: Callable[[str], None] = print) -> DemoResult:
    """Run every step; returns where the outputs are and the headline numbers."""
    from gamdss.audit import audit_caches
    from gamdss.data.cache import FrameCache
    from gamdss.data.datasets import scan_dataset
    from gamdss.data.preprocess import preprocess_clips
    from gamdss.data.synthetic import SyntheticConfig, make_dataset, read_ground_truth, write_dataset
    from gamdss.dataset_reselection import export_reselection, reselect_cache
    from gamdss.reselection_settings import preset as reselection_preset
    from gamdss.train.config import load_config
    from gamdss.train.loso import run_loso

    out = Path(cfg.out)
    prepare_output(out, overwrite)
    seconds: dict[str, float] = {}
    dataset_dir, cache_dir = out / "dataset", out / "cache"
    resel_dir, audit_dir, train_dir = out / "reselection", out / "audit", out / "train"

    def step(name: str, title: str):
        log(f"\n[{len(seconds) + 1}/4] {title}")
        seconds[name] = time.perf_counter()

    def done(name: str) -> None:
        seconds[name] = round(time.perf_counter() - seconds[name], 1)

    step("generate", f"generating {cfg.subjects * cfg.clips_per_subject} SYNTHETIC clips "
                     f"({cfg.subjects} subjects, 200 fps, {cfg.frame_size[1]}x{cfg.frame_size[0]}), "
                     f"annotated with the {cfg.bias!r} bias model, written in the CASME II layout")
    samples = make_dataset(SyntheticConfig(fps=200.0, size=tuple(cfg.frame_size)), n_subjects=cfg.subjects,
                           clips_per_subject=cfg.clips_per_subject, seed=cfg.seed, bias=cfg.bias,
                           emotions=cfg.emotions, progress=progress)
    write_dataset(samples, dataset_dir, "casme2", progress=progress)
    done("generate")
    log(f"      {dataset_dir}  (annotated keyframes in the spreadsheet, true ones in ground_truth.csv)")

    step("preprocess", f"reading it with the CASME II reader; MTCNN face crop to "
                       f"{cfg.cache_size[1]}x{cfg.cache_size[0]} into the frame cache")
    scan = scan_dataset(dataset_dir, "casme2")
    for s in scan.skipped:
        log(f"      skipped row {s.row} {s.clip or ''}: {s.reason}")
    report = preprocess_clips(scan.clips, cache_dir, dataset="casme2", size=tuple(cfg.cache_size), workers=1,
                              device=cfg.device, progress=progress)
    for failure in report.failed:
        log(f"      FAILED {failure.clip_id}: {failure.reason}")
    if not report.done and not report.already_done:
        raise RuntimeError("the demo's preprocessing cached no clip; see the failures above")
    cache = FrameCache(cache_dir)
    done("preprocess")
    log(f"      {len(cache)} clips cached in {cache_dir}")

    settings = reselection_preset(cfg.preset)
    step("reselect", f"reselecting keyframes ({settings.describe()}) and auditing the annotations")
    results = reselect_cache(cache, settings, device=cfg.device, progress=progress)
    export = export_reselection(cache, results, resel_dir, settings)
    audit = audit_caches([cache], audit_dir, reselection_csv=[resel_dir / "reselection.csv"], progress=progress)
    errors = keyframe_errors(read_ground_truth(dataset_dir), cache, results)
    done("reselect")
    log("      " + export.summary().replace("\n", "\n      "))
    log(f"      audit report: {audit.report}")

    step("train", f"training gamdss_tiny under honest LOSO ({cfg.protocol}, {cfg.epochs} epochs per fold, "
                  f"last-epoch predictions)")
    train_cfg = load_config("tiny-cpu", [f"data.caches=[{cache_dir}]", f"data.protocol={cfg.protocol}",
                                         f"optim.epochs={cfg.epochs}", f"run.output_dir={train_dir}",
                                         f"run.device={cfg.device}", f"run.seed={cfg.seed}",
                                         "reselection.enabled=true", f"reselection.method={settings.method}",
                                         f"reselection.window={settings.window}",
                                         f"reselection.lam_rise={settings.lam_rise}",
                                         f"reselection.lam_fall={settings.lam_fall}",
                                         f"reselection.distance={settings.distance}"])
    train_results = run_loso(train_cfg, progress=progress)
    done("train")
    return DemoResult(out=out, dataset=dataset_dir, cache=cache_dir, reselection=resel_dir,
                      audit_report=Path(audit.report), train_dir=train_dir, keyframe_errors=errors,
                      results=train_results, seconds=seconds)
