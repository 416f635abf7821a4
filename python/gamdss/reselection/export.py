"""A reselection run's output folder: the results file, corrected annotation files in each
dataset's own schema, and the settings.

The corrected annotation file is the dataset's source annotation file (the one the cache was
made from) with only the reselected keyframe cells changed and the ``Original ...`` and
``... Confidence`` columns added (:meth:`Dataset.write_reselected`). The cache does not
record that file's path: it is found from the clips' frame folders recorded in the cache
(the dataset root whose layout puts each clip in its folder, then the annotation file under
that root as ``gamdss preprocess`` finds it), or given (``annotations=``), and used only when
every clip of the cache has its own row in it. Otherwise (frames moved, a file edited since)
the file is written from the cache entries alone (:meth:`Dataset.write_annotations`) and the
summary says so.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

import gamdss
from gamdss.data.cache import CacheEntry, FrameCache
from gamdss.data.datasets import get_dataset
from gamdss.data.datasets.base import RESELECT_SOURCE, Dataset, ReselectedRow, RowMatchError
from gamdss.data.datasets.frames import DirIndex
from gamdss.data.datasets.tables import TableError
from gamdss.data.records import AnnotationRecord, Correction
from gamdss.data.reselection_files import RESULTS_CSV, SETTINGS_YAML, check_against_cache, reselection_rows, rows_to_csv
from gamdss.data.reselection_record import ClipReselection, frame_numbers
from gamdss.settings.reselection import KEYFRAMES, ReselectionSettings
from gamdss.util import atomic, run_lock


def corrected_records(cache: FrameCache, results: Sequence[ClipReselection]) -> list:
    """:class:`~gamdss.data.records.AnnotationRecord` per result, with the reselected
    keyframes as onset/apex/offset (dataset frame numbers) and everything else (subject,
    video, emotion, AUs, fps, row, meta, the reader's corrections) from the cache entry."""
    return [_entry_record(cache[r.clip_id], frame_numbers(cache[r.clip_id], r.reselected)) for r in results]


ORIGINAL_COLUMNS = ("Original Onset", "Original Apex", "Original Offset")
CONFIDENCE_COLUMNS = ("Onset Confidence", "Apex Confidence", "Offset Confidence")


def original_columns(cache: FrameCache, results: Sequence[ClipReselection]) -> dict[str, list[Any]]:
    """The extra columns of an exported annotation file, in the order of ``results``: the
    annotators' dataset frame numbers (``Original Onset``, ``Original Apex``, ``Original
    Offset``: the annotated keyframes, or where the cache was made from an earlier ``gamdss
    reselect`` export, the values that file kept as original, not its reselected ones) and
    each keyframe's confidence in noise-floor sds (``Onset Confidence``...; this run's, empty
    where not assessed)."""
    cols: dict[str, list[Any]] = {name: [] for name in ORIGINAL_COLUMNS + CONFIDENCE_COLUMNS}
    for r in results:
        entry = cache[r.clip_id]
        for name, fn in zip(ORIGINAL_COLUMNS, annotators_frames(entry, r.annotated)):
            cols[name].append(fn)
        for name, c in zip(CONFIDENCE_COLUMNS, r.confidence):
            cols[name].append(None if c != c else round(float(c), 2))
    return cols


def annotators_frames(entry: CacheEntry, annotated: Sequence[int]) -> list[int]:
    """Dataset frame numbers of the clip-relative ``annotated`` (onset, apex, offset), except
    where the entry's reader took a keyframe from a ``gamdss reselect`` export
    (:data:`~gamdss.data.datasets.base.RESELECT_SOURCE`): there the annotators' value that the
    export kept in its ``Original`` column."""
    earlier = _earlier_export_originals(entry)
    return [int(earlier.get(name, fn)) for name, fn in zip(KEYFRAMES, frame_numbers(entry, annotated))]


def _earlier_export_originals(entry: CacheEntry) -> dict[str, int]:
    """Keyframe name -> the annotators' frame number, for the keyframes the entry's reader took
    from a ``gamdss reselect`` export that had moved them (none otherwise)."""
    return {c["field"]: c["original"] for c in entry.corrections if c.get("source") == RESELECT_SOURCE}


def from_an_earlier_export(entries: Sequence[CacheEntry]) -> bool:
    """Whether any entry's keyframes were read from a ``gamdss reselect`` export that moved them."""
    return any(_earlier_export_originals(e) for e in entries)


@dataclass
class ReselectionExport:
    """What :func:`export_reselection` wrote, and the numbers for its summary."""

    out: Path
    results_csv: Path
    settings_yaml: Path
    annotation_files: list[Path]
    skipped_exports: list[str]
    rows: list[dict[str, Any]]
    #: per annotation file written from the cache entries alone, why it is not a drop-in
    notes: list[str] = field(default_factory=list)

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
        lines += [f"  note: {why}" for why in self.notes]
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


def _entry_record(e: CacheEntry, keyframes: Sequence[int] | None = None) -> AnnotationRecord:
    """The cache entry as the reader's record of its clip, with ``keyframes`` (dataset frame
    numbers; default: the annotated ones) as onset, apex and offset."""
    onset, apex, offset = (e.onset, e.apex, e.offset) if keyframes is None else keyframes
    return AnnotationRecord(
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


def _row(e: CacheEntry, keyframes: Sequence[int] | None = None, values: Sequence[Any] = ()) -> ReselectedRow:
    annotated = (e.onset, e.apex, e.offset)
    return ReselectedRow(
        clip_id=e.clip_id,
        subject=e.subject,
        video=e.video,
        row=e.row,
        annotated=annotated,
        keyframes=tuple(keyframes) if keyframes is not None else annotated,  # type: ignore[arg-type]
        corrections=tuple(Correction(**c) for c in e.corrections),
        values=tuple(values),
    )


#: how many folders above a clip's frame folder its dataset root may be (CAS(ME)^3 raw
#: ``ROOT/part_A/spNO.1/a/color``, MMEW ``ROOT/MMEW/Micro_Expression/<emotion>/<clip>``).
_ROOT_LEVELS = 5


def _candidate_roots(spec: Dataset, entries: Sequence[CacheEntry]) -> list[Path]:
    """Folders from which the dataset's layout puts clips in the frame folders recorded in
    the cache (the dataset root ``gamdss preprocess`` was given, or a folder inside it),
    nearest to the frames first. A relative frame path (recorded by gamdss before paths were
    made absolute, when ``gamdss preprocess`` was given a relative ROOT) is taken from the
    current folder, as that run took it."""
    index = DirIndex()
    roots: list[Path] = []
    looked = 0
    for e in entries:
        if not e.sources:
            continue
        folder = Path(e.sources[0]).absolute().parent
        if not folder.is_dir():
            continue
        looked += 1
        record = _entry_record(e)
        for root in list(folder.parents)[:_ROOT_LEVELS]:
            try:
                found, _ = spec.locate_clip_dir(index, root, record)
                same = found is not None and found.resolve() == folder.resolve()
            except OSError:
                same = False
            if same and root not in roots:
                roots.append(root)
        if looked >= 3:
            break
    return roots


def find_source_file(cache: FrameCache, dataset: str, annotations: str | Path | None = None) -> tuple[Path | None, str]:
    """``(path, "")``: the annotation file that ``dataset``'s clips of ``cache`` were read
    from, verified: each clip has its own row in it (:meth:`Dataset.match_rows`); or
    ``(None, why)``. ``annotations``: the file to use (still verified); without it, the file
    is found under the dataset root of the frame folders recorded in the cache
    (:meth:`Dataset.find_annotation_file`, as ``gamdss preprocess`` finds it)."""
    try:
        spec = get_dataset(dataset)
    except ValueError as exc:
        return None, str(exc)
    entries = [e for e in cache.entries if e.dataset == dataset]
    clips = [_row(e) for e in entries]
    if annotations is not None:
        candidates = [Path(annotations)]
    else:
        candidates = []
        for root in _candidate_roots(spec, entries):
            try:
                path = spec.find_annotation_file(root)
            except (FileNotFoundError, OSError):
                continue
            if path not in candidates:
                candidates.append(path)
        if not candidates:
            return None, (
                "its source annotation file was not found (the cache does not record it, and no dataset "
                "root holding the frame folders recorded in the cache has one)"
            )
    reasons = []
    for path in candidates:
        try:
            rows = spec.match_rows(path, clips)
            differing = _other_labels(spec, path, entries, rows)
        except (RowMatchError, TableError, ValueError, OSError) as exc:
            reasons.append(str(exc))
            continue
        if differing:
            reasons.append(f"annotation file {path}: {differing}")
            continue
        return path, ""
    return None, f"no annotation file matches the cache's clips: {'; '.join(reasons)}"


def _other_labels(spec: Dataset, path: Path, entries: Sequence[CacheEntry], rows: Mapping[str, int]) -> str:
    """Where the reader's records of ``path`` (by the matched row numbers ``rows``) give a clip
    another emotion or other AUs than the cache recorded: a file whose keyframes match but
    whose labels were edited (another copy of the file) is not the cache's source. "" when
    none differs."""
    records = {r.row: r for r in spec.read_annotations(path).records}
    for e in entries:
        rec = records.get(rows[e.clip_id])
        if rec is None:
            return f"row {rows[e.clip_id]} ({e.clip_id}) is not a usable record"
        if rec.emotion != e.emotion or tuple(rec.aus) != tuple(e.aus):
            return (
                f"clip {e.clip_id} is {rec.emotion!r} with AUs {list(rec.aus)} there, "
                f"{e.emotion!r} with {list(e.aus)} in the cache"
            )
    return ""


@dataclass(frozen=True)
class _Plan:
    dataset: str
    name: str
    source: Path | None
    why: str


def _plans(cache: FrameCache, annotations: Mapping[str, str | Path] | None) -> list[_Plan]:
    plans = []
    for d in sorted({e.dataset for e in cache.entries}):
        source, why = find_source_file(cache, d, (annotations or {}).get(d))
        name = get_dataset(d).reselected_name(source) if source is not None else annotation_file_name(d)
        plans.append(_Plan(d, name, source, why))
    names = [p.name for p in plans]
    # two datasets whose source files share a name: each keeps its dataset's own name
    return [
        p if names.count(p.name) == 1 else _Plan(p.dataset, f"{p.dataset}_{p.name}", p.source, p.why) for p in plans
    ]


def planned_outputs(
    cache: FrameCache, out: str | Path, *, annotations: Mapping[str, str | Path] | None = None
) -> list[Path]:
    """The files :func:`export_reselection` would write for ``cache`` into ``out``."""
    out = Path(out)
    return [out / RESULTS_CSV, *(out / p.name for p in _plans(cache, annotations)), out / SETTINGS_YAML]


def export_reselection(
    cache: FrameCache,
    results: Sequence[ClipReselection],
    out: str | Path,
    settings: ReselectionSettings,
    *,
    overwrite: bool = False,
    extra_settings: dict[str, Any] | None = None,
    annotations: Mapping[str, str | Path] | None = None,
) -> ReselectionExport:
    """Write a reselection run's folder as one set (:func:`gamdss.util.atomic.output_set`: written
    into a staging folder, moved into ``out`` only when complete, ``settings.yaml`` last);
    refuses to replace existing files unless ``overwrite``:

    - ``reselection.csv``: :func:`reselection_rows` with the cache and the settings;
    - per dataset in the cache, the corrected annotation file: the source annotation file
      (:func:`find_source_file`; ``annotations`` maps a dataset to its file, else it is
      found from the cache's frame folders) as ``<its name>_reselected.xlsx`` (``.csv`` for
      a CSV) with every row, column and cell kept and only the reselected clips' keyframe
      cells changed, ``Original Onset`` ... and ``Onset Confidence`` ... columns added
      (:meth:`Dataset.write_reselected`); when no such file is found, written from the cache
      entries alone (``get_dataset(name).write_annotations``, the official file's name;
      :attr:`ReselectionExport.notes` says why). Either way the readers identify its clips by
      the ``Original Onset`` (same clip ids and clip folders as the cache's source file) and
      read the reselected keyframes;
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
        plans = _plans(cache, annotations)
        atomic.refuse_any_existing([out / RESULTS_CSV, *(out / p.name for p in plans), out / SETTINGS_YAML], overwrite)
        return _write_set(cache, results, out, settings, rows, extra_settings, plans)


def _write_set(
    cache: FrameCache,
    results: Sequence[ClipReselection],
    out: Path,
    settings: ReselectionSettings,
    rows: list[dict[str, Any]],
    extra_settings: dict[str, Any] | None,
    plans: Sequence[_Plan],
) -> ReselectionExport:
    written: list[Path] = []
    skipped: list[str] = []
    notes: list[str] = []
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
        by_dataset = {p.dataset: p for p in plans}
        for dataset in sorted({cache[r.clip_id].dataset for r in results}):
            part = [r for r in results if cache[r.clip_id].dataset == dataset]
            plan = by_dataset[dataset]
            name = plan.name
            try:
                spec = get_dataset(dataset)
            except (ImportError, KeyError, ValueError) as exc:
                skipped.append(f"{name} (no reader for dataset {dataset!r}: {exc})")
                continue
            extra = original_columns(cache, part)
            if plan.source is not None:
                columns = list(extra)
                clips = [
                    _row(
                        cache[r.clip_id], frame_numbers(cache[r.clip_id], r.reselected), [extra[c][i] for c in columns]
                    )
                    for i, r in enumerate(part)
                ]
                spec.write_reselected(plan.source, staging / name, clips, columns=columns)
            else:
                spec.write_annotations(corrected_records(cache, part), staging / name, extra_columns=extra)
                notes.append(
                    f"{name} is written from the cache's clips alone, not as a drop-in copy of the dataset's "
                    f"annotation file ({plan.why}): rows the reader skipped, clips without cached frames and "
                    f"columns outside the schema are not in it"
                )
            if from_an_earlier_export([cache[r.clip_id] for r in part]):
                notes.append(
                    f"{name}: the cache was made from an earlier gamdss reselect export; its 'Original' columns "
                    "keep that file's original (the annotators') keyframes, and the confidences are this run's, "
                    "measured from the keyframes that export held"
                )
            written.append(out / name)
        atomic.write_text(staging / SETTINGS_YAML, yaml.safe_dump(info, sort_keys=False))
    results_csv, settings_yaml = out / RESULTS_CSV, out / SETTINGS_YAML
    return ReselectionExport(out, results_csv, settings_yaml, written, skipped, rows, notes)
