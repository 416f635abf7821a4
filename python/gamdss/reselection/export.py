"""A reselection run's output folder: the results file, corrected annotation files in each
dataset's own schema, and the settings."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

import gamdss
from gamdss.data.cache import FrameCache
from gamdss.data.datasets import get_dataset
from gamdss.data.records import AnnotationRecord, Correction
from gamdss.data.reselection_files import RESULTS_CSV, SETTINGS_YAML, check_against_cache, reselection_rows, rows_to_csv
from gamdss.data.reselection_record import ClipReselection, frame_numbers
from gamdss.settings.reselection import KEYFRAMES, ReselectionSettings
from gamdss.util import atomic, run_lock


def corrected_records(cache: FrameCache, results: Sequence[ClipReselection]) -> list:
    """:class:`~gamdss.data.records.AnnotationRecord` per result, with the reselected
    keyframes as onset/apex/offset (dataset frame numbers) and everything else (subject,
    video, emotion, AUs, fps, row, meta, the reader's corrections) from the cache entry."""

    records = []
    for r in results:
        e = cache[r.clip_id]
        onset, apex, offset = frame_numbers(e, r.reselected)
        records.append(
            AnnotationRecord(
                dataset=e.dataset,
                subject=e.subject,
                clip_id=e.clip_id,
                video=e.video,
                onset=onset,
                apex=apex,
                offset=offset,
                emotion=e.emotion,
                aus=tuple(e.aus),
                fps=e.fps,
                row=e.row,
                meta=dict(e.meta),
                corrections=tuple(Correction(**c) for c in e.corrections),
            )
        )
    return records


ORIGINAL_COLUMNS = ("Original Onset", "Original Apex", "Original Offset")
CONFIDENCE_COLUMNS = ("Onset Confidence", "Apex Confidence", "Offset Confidence")


def original_columns(cache: FrameCache, results: Sequence[ClipReselection]) -> dict[str, list[Any]]:
    """The extra columns of an exported annotation file, in the order of ``results``: the
    annotated (pre-reselection) dataset frame numbers (``Original Onset``, ``Original Apex``,
    ``Original Offset``) and each keyframe's confidence in noise-floor sds (``Onset
    Confidence``...; empty where not assessed)."""
    cols: dict[str, list[Any]] = {name: [] for name in ORIGINAL_COLUMNS + CONFIDENCE_COLUMNS}
    for r in results:
        for name, fn in zip(ORIGINAL_COLUMNS, frame_numbers(cache[r.clip_id], r.annotated)):
            cols[name].append(fn)
        for name, c in zip(CONFIDENCE_COLUMNS, r.confidence):
            cols[name].append(None if c != c else round(float(c), 2))
    return cols


@dataclass
class ReselectionExport:
    """What :func:`export_reselection` wrote, and the numbers for its summary."""

    out: Path
    results_csv: Path
    settings_yaml: Path
    annotation_files: list[Path]
    skipped_exports: list[str]
    rows: list[dict[str, Any]]

    def summary(self) -> str:
        """Clips, how many moved per keyframe, mean |displacement| in frames and ms, and the
        median confidence of the moves (noise-floor sds) where the method has one."""
        n = len(self.rows)
        lines = [f"reselected {n} clips; results in {self.out}"]
        for k in KEYFRAMES:
            moved = sum(1 for r in self.rows if r[f"shift_{k}_frames"] != 0)
            frames = [abs(r[f"shift_{k}_frames"]) for r in self.rows]
            ms = [abs(r[f"shift_{k}_ms"]) for r in self.rows]
            mean_f = sum(frames) / n if n else float("nan")
            mean_ms = sum(ms) / n if n else float("nan")
            conf = [
                r[f"confidence_{k}"]
                for r in self.rows
                if r[f"shift_{k}_frames"] != 0 and r.get(f"confidence_{k}", "") != ""
            ]
            detail = f"; median confidence of the moves {sorted(conf)[len(conf) // 2]:.1f} sd" if conf else ""
            lines.append(
                f"  {k:<6}: {moved:>5} of {n} moved; mean |displacement| {mean_f:.2f} frames, {mean_ms:.2f} ms{detail}"
            )
        for path in [self.results_csv, *self.annotation_files, self.settings_yaml]:
            lines.append(f"  wrote {path}")
        lines += [f"  not written: {why}" for why in self.skipped_exports]
        return "\n".join(lines)


def annotation_file_name(dataset: str) -> str:
    """Name of a run's corrected annotation file for ``dataset``: the dataset's official
    annotation file name with ``_reselected`` and ``.xlsx`` (e.g.
    ``CASME2-coding-20190701_reselected.xlsx``), or ``<dataset>_annotations_reselected.xlsx``."""
    try:
        names = getattr(get_dataset(dataset), "annotation_names", ())
    except (ImportError, ValueError):
        names = ()
    stem = Path(names[0]).stem if names else f"{dataset}_annotations"
    return f"{stem}_reselected.xlsx"


def planned_outputs(cache: FrameCache, out: str | Path) -> list[Path]:
    """The files :func:`export_reselection` would write for ``cache`` into ``out``."""
    out = Path(out)
    datasets = sorted({e.dataset for e in cache.entries})
    return [out / RESULTS_CSV, *(out / annotation_file_name(d) for d in datasets), out / SETTINGS_YAML]


def export_reselection(
    cache: FrameCache,
    results: Sequence[ClipReselection],
    out: str | Path,
    settings: ReselectionSettings,
    *,
    overwrite: bool = False,
    extra_settings: dict[str, Any] | None = None,
) -> ReselectionExport:
    """Write a reselection run's folder as one set (:func:`gamdss.util.atomic.output_set`: written
    into a staging folder, moved into ``out`` only when complete, ``settings.yaml`` last);
    refuses to replace existing files unless ``overwrite``:

    - ``reselection.csv``: :func:`reselection_rows` with the cache and the settings;
    - per dataset in the cache, the corrected annotation file in the dataset's own schema
      (reselected keyframes as onset/apex/offset, originals in ``Original Onset`` ...
      columns), written by the dataset's reader (``get_dataset(name).write_annotations``);
      the readers identify its clips by the ``Original Onset`` (same clip ids and clip
      folders as the cache's source file) and read the reselected keyframes;
    - ``settings.yaml``: the settings, the cache, clip count, gamdss version.

    Holds ``out``'s lock (:func:`gamdss.util.run_lock.hold`) meanwhile:
    :class:`~gamdss.util.run_lock.FolderBusyError` when another run writes there.
    """

    out = Path(out)
    check_against_cache(results, cache, "reselection results")
    rows = reselection_rows(results, cache, settings)
    # Two runs writing one folder at once: the second is refused (FolderBusyError) rather
    # than mixing its files with the first's; holding the lock, it looks for files the first
    # may have moved in just before.
    with run_lock.hold(out, "gamdss reselect export"):
        atomic.refuse_any_existing(planned_outputs(cache, out), overwrite)
        return _write_set(cache, results, out, settings, rows, extra_settings)


def _write_set(
    cache: FrameCache,
    results: Sequence[ClipReselection],
    out: Path,
    settings: ReselectionSettings,
    rows: list[dict[str, Any]],
    extra_settings: dict[str, Any] | None,
) -> ReselectionExport:
    written, skipped = [], []
    info = {
        "reselection": asdict(settings),
        "cache": str(cache.root.resolve()),
        "cache_dataset": cache.dataset,
        "clips": len(results),
        "gamdss_version": gamdss.__version__,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        **(extra_settings or {}),
    }
    with atomic.output_set(out, last=[SETTINGS_YAML]) as staging:
        atomic.write_text(staging / RESULTS_CSV, rows_to_csv(rows))
        for dataset in sorted({cache[r.clip_id].dataset for r in results}):
            part = [r for r in results if cache[r.clip_id].dataset == dataset]
            name = annotation_file_name(dataset)
            try:
                spec = get_dataset(dataset)
            except (ImportError, KeyError, ValueError) as exc:
                skipped.append(f"{name} (no reader for dataset {dataset!r}: {exc})")
                continue
            spec.write_annotations(
                corrected_records(cache, part), staging / name, extra_columns=original_columns(cache, part)
            )
            written.append(out / name)
        atomic.write_text(staging / SETTINGS_YAML, yaml.safe_dump(info, sort_keys=False))
    results_csv, settings_yaml = out / RESULTS_CSV, out / SETTINGS_YAML
    return ReselectionExport(out, results_csv, settings_yaml, written, skipped, rows)
