"""Keyframe reselection over a whole frame cache, and its results file.

:func:`reselect_cache` runs :func:`gamdss.reselect` on every clip of a
:class:`~gamdss.data.cache.FrameCache`, batched under a byte limit, reading from the
memory-mapped clip files only the frames each clip's candidate windows cover. Results are
:class:`ClipReselection` records with clip-relative, 0-based indices; :func:`frame_numbers`
turns indices back into the dataset's frame numbers (``CacheEntry.frame_numbers``).

:func:`save_reselection` / :func:`load_reselection` write and read the results as CSV (the
``reselection.csv`` of ``gamdss reselect``). With the cache at hand the file also holds the
dataset, subject, dataset frame numbers, displacements in frames, milliseconds and percent of
the clip length, and the settings.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from gamdss import atomic, yaml_dataclass
from gamdss.data.cache import CacheEntry, FrameCache

KEYFRAMES = ("onset", "apex", "offset")
DEFAULT_MAX_BATCH_BYTES = 256 * 2**20


@dataclass(frozen=True)
class ReselectionSettings:
    """What a reselection run used (saved as ``settings.yaml`` next to its results)."""

    window: str = "paper"
    lam_rise: float = 0.1
    lam_fall: float = 0.1
    distance: str = "l2"

    def run_name(self) -> str:
        """Folder name of a run with these settings, e.g. ``paper-r0.1-f0.1-l2``."""
        return f"{self.window}-r{self.lam_rise:g}-f{self.lam_fall:g}-{self.distance}"

    def to_yaml(self) -> str:
        return yaml_dataclass.dump(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "settings") -> "ReselectionSettings":
        """Settings from a mapping of fields; unknown keys raise ``ValueError`` naming ``source``."""
        return yaml_dataclass.from_dict(cls, data, source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "ReselectionSettings":
        """Settings from a ``settings.yaml`` of ``gamdss reselect`` or of an audit (its
        ``reselection`` mapping)."""
        data = yaml_dataclass.read_mapping(path, "reselection settings")
        if "reselection" in data and isinstance(data["reselection"], dict):
            data = data["reselection"]
        return cls.from_dict(data, str(path))


@dataclass(frozen=True)
class ClipReselection:
    """Annotated and reselected keyframes of one clip.

    ``annotated`` and ``reselected`` are clip-relative, 0-based (onset, apex, offset) indices
    into the cached clip; ``rise_distance`` = d(onset, apex) and ``fall_distance`` =
    d(apex, offset) of the reselected frames, in grey levels (L2 over all uint8 elements).
    """

    clip_id: str
    annotated: tuple[int, int, int]
    reselected: tuple[int, int, int]
    rise_distance: float
    fall_distance: float

    @property
    def displacement(self) -> tuple[int, int, int]:
        """Reselected minus annotated index per keyframe (frames; positive = later)."""
        return tuple(r - a for r, a in zip(self.reselected, self.annotated))  # type: ignore[return-value]

    @property
    def moved(self) -> bool:
        return self.reselected != self.annotated


def frame_numbers(entry: CacheEntry, indices: Iterable[int]) -> tuple[int, ...]:
    """Dataset frame numbers of clip-relative indices of ``entry``'s cached frames."""
    out = []
    for i in indices:
        i = int(i)
        if not 0 <= i < len(entry.frame_numbers):
            raise IndexError(f"clip {entry.clip_id}: index {i} is outside its {len(entry.frame_numbers)} "
                             f"cached frames")
        out.append(int(entry.frame_numbers[i]))
    return tuple(out)


def annotated_indices(entry: CacheEntry) -> tuple[int, int, int]:
    """The entry's annotated (onset, apex, offset) as clip-relative indices."""
    try:
        return entry.onset_index, entry.apex_index, entry.offset_index
    except ValueError:
        raise ValueError(f"clip {entry.clip_id}: annotated frames onset={entry.onset}, apex={entry.apex}, "
                         f"offset={entry.offset} are not all among its cached frame numbers "
                         f"{entry.frame_numbers[0]}..{entry.frame_numbers[-1]}") from None


def _select_entries(cache: FrameCache, clip_ids: Sequence[str] | None) -> list[CacheEntry]:
    if clip_ids is None:
        return cache.entries
    if isinstance(clip_ids, str):
        raise TypeError("clip_ids must be a sequence of clip ids, not one string")
    wanted = set(clip_ids)
    missing = [c for c in clip_ids if c not in cache]
    if missing:
        raise KeyError(f"clip ids not in the cache {cache.root}: {missing}")
    return [e for e in cache.entries if e.clip_id in wanted]


def _spans(entries: list[CacheEntry], settings: ReselectionSettings) -> list[tuple[int, int]]:
    """First and last frame (inclusive, clip-relative) that each clip's windows cover."""
    import torch

    from gamdss.windows import preset_windows

    if not entries:
        return []
    ann = torch.tensor([annotated_indices(e) for e in entries], dtype=torch.int64)
    lengths = torch.tensor([e.num_frames for e in entries], dtype=torch.int64)
    for e, (o, a, f) in zip(entries, ann.tolist()):
        if not 0 <= o <= a <= f <= e.num_frames - 1:
            raise ValueError(f"clip {e.clip_id}: onset={o}, apex={a}, offset={f} violates "
                             f"0 <= onset <= apex <= offset <= T-1 with T={e.num_frames}")
    win = preset_windows(settings.window, ann[:, 0], ann[:, 1], ann[:, 2], lengths,
                         settings.lam_rise, settings.lam_fall)
    first = win[:, 0::2].amin(dim=1).tolist()
    last = win[:, 1::2].amax(dim=1).tolist()
    return list(zip(first, last))


def _batches(span_bytes: list[tuple[int, int]], limit: int) -> list[list[int]]:
    """Group consecutive clips so that each padded batch (clips x longest span x frame
    bytes) stays under ``limit``; a clip bigger than the limit forms a batch of its own.
    ``span_bytes`` holds (span length in frames, bytes per frame)."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i, (n, frame_bytes) in enumerate(span_bytes):
        new_longest = max(longest, n)
        if current and (len(current) + 1) * new_longest * frame_bytes > limit:
            batches.append(current)
            current, new_longest = [], n
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def reselect_cache(cache: FrameCache, *, window: str = "paper", lam_rise: float = 0.1,
                   lam_fall: float = 0.1, distance: str = "l2", clip_ids: Sequence[str] | None = None,
                   device: str = "cpu", max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
                   progress: bool = True) -> list[ClipReselection]:
    """Re-select the onset, apex and offset of every clip in ``cache`` (or of ``clip_ids``).

    Clips are read from their memory-mapped files, only the frames their candidate windows
    cover (uint8 ``[span, H, W, 3]``), and grouped into padded batches of at most
    ``max_batch_bytes`` bytes (a clip alone larger than that is a batch of its own) that go
    to :func:`gamdss.reselect` on ``device`` (``"cpu"``, ``"cuda"``...). Clips of different
    frame sizes never share a batch. Results come back in cache order; each is identical to
    reselecting that whole clip on its own (the windows do not depend on frames outside
    them).

    Raises ``ValueError`` naming the clip when its annotation is not valid for its frames.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    import gamdss
    from gamdss.windows import PRESETS

    settings = ReselectionSettings(window, float(lam_rise), float(lam_fall), distance)
    if window not in PRESETS:
        raise ValueError(f"unknown window preset {window!r}; expected one of {PRESETS}")
    if int(max_batch_bytes) <= 0:
        raise ValueError(f"max_batch_bytes must be positive, got {max_batch_bytes}")
    entries = _select_entries(cache, clip_ids)
    spans = _spans(entries, settings)
    results: list[ClipReselection | None] = [None] * len(entries)

    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, e in enumerate(entries):
        by_shape.setdefault(tuple(e.shape[1:]), []).append(i)
    plan: list[list[int]] = []
    for shape, members in by_shape.items():
        frame_bytes = int(np.prod(shape))
        sizes = [(spans[i][1] - spans[i][0] + 1, frame_bytes) for i in members]
        plan += [[members[j] for j in batch] for batch in _batches(sizes, int(max_batch_bytes))]

    bar = tqdm(total=len(entries), desc=f"reselect ({cache.root.name})", unit="clip", disable=not progress)
    try:
        for batch in plan:
            lens = [spans[i][1] - spans[i][0] + 1 for i in batch]
            frame_shape = tuple(entries[batch[0]].shape[1:])
            padded = torch.zeros((len(batch), max(lens), *frame_shape), dtype=torch.uint8)
            ann = []
            for row, i in enumerate(batch):
                first, last = spans[i]
                frames = cache.frames(entries[i])  # memory map: only these pages are read
                padded[row, :lens[row]] = torch.from_numpy(np.array(frames[first:last + 1]))
                ann.append([k - first for k in annotated_indices(entries[i])])
            ann_t = torch.tensor(ann, dtype=torch.int64)
            out = gamdss.reselect(padded.to(device), ann_t[:, 0], ann_t[:, 1], ann_t[:, 2],
                                  lengths=torch.tensor(lens, dtype=torch.int64),
                                  lam_rise=settings.lam_rise, lam_fall=settings.lam_fall,
                                  window=window, distance=distance,
                                  clip_ids=[entries[i].clip_id for i in batch])
            picked = torch.stack([out.onset, out.apex, out.offset], dim=1).cpu().tolist()
            rise = out.rise_distance.cpu().tolist()
            fall = out.fall_distance.cpu().tolist()
            for row, i in enumerate(batch):
                first = spans[i][0]
                results[i] = ClipReselection(
                    clip_id=entries[i].clip_id,
                    annotated=annotated_indices(entries[i]),
                    reselected=tuple(int(k) + first for k in picked[row]),  # type: ignore[arg-type]
                    rise_distance=float(rise[row]), fall_distance=float(fall[row]))
            bar.update(len(batch))
    finally:
        bar.close()
    return [r for r in results if r is not None]


# ---------------------------------------------------------------- CSV -----------------

_CORE_COLUMNS = (["clip_id"] + [f"annotated_{k}_index" for k in KEYFRAMES]
                 + [f"reselected_{k}_index" for k in KEYFRAMES] + ["rise_distance", "fall_distance"])


def reselection_rows(results: Sequence[ClipReselection], cache: FrameCache | None = None,
                     settings: ReselectionSettings | None = None) -> list[dict[str, Any]]:
    """One dict per clip, the rows of the results CSV.

    Always: ``clip_id``, ``annotated_<k>_index``, ``reselected_<k>_index`` and
    ``shift_<k>_frames`` (reselected - annotated) for k in onset/apex/offset,
    ``rise_distance``, ``fall_distance``. With ``cache``: ``dataset``, ``subject``,
    ``annotated_<k>_frame``/``reselected_<k>_frame`` (dataset frame numbers), ``fps``,
    ``num_frames``, ``shift_<k>_ms`` (frames x 1000 / fps) and ``shift_<k>_percent``
    (|frames| / num_frames x 100, the paper's Eq. 15 with the cached clip length), and the
    entry's ``meta`` as ``meta_<key>``. With ``settings``: ``window``, ``lam_rise``,
    ``lam_fall``, ``distance``.
    """
    rows = []
    for r in results:
        row: dict[str, Any] = {}
        entry = cache[r.clip_id] if cache is not None else None
        if entry is not None:
            row.update(dataset=entry.dataset, subject=entry.subject)
        row["clip_id"] = r.clip_id
        for name, idx in (("annotated", r.annotated), ("reselected", r.reselected)):
            if entry is not None:
                for k, fn in zip(KEYFRAMES, frame_numbers(entry, idx)):
                    row[f"{name}_{k}_frame"] = fn
            for k, i in zip(KEYFRAMES, idx):
                row[f"{name}_{k}_index"] = int(i)
        for k, d in zip(KEYFRAMES, r.displacement):
            row[f"shift_{k}_frames"] = int(d)
        if entry is not None:
            row["fps"] = entry.fps
            row["num_frames"] = entry.num_frames
            for k, d in zip(KEYFRAMES, r.displacement):
                row[f"shift_{k}_ms"] = d * 1000.0 / entry.fps
            for k, d in zip(KEYFRAMES, r.displacement):
                row[f"shift_{k}_percent"] = abs(d) * 100.0 / entry.num_frames
        row["rise_distance"] = r.rise_distance
        row["fall_distance"] = r.fall_distance
        if settings is not None:
            row.update(asdict(settings))
        if entry is not None:
            for key, value in sorted(entry.meta.items()):
                row[f"meta_{key}"] = value
        rows.append(row)
    return rows


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    return str(value)


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV text of dict rows; columns in first-seen order across all rows."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns or _CORE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _format(v) for k, v in row.items()})
    return buf.getvalue()


def save_reselection(results: Sequence[ClipReselection], path: str | Path, *,
                     cache: FrameCache | None = None, settings: ReselectionSettings | None = None,
                     overwrite: bool = False) -> Path:
    """Atomically write ``results`` as CSV (columns: :func:`reselection_rows`).

    Refuses to replace an existing file unless ``overwrite=True``.
    """
    path = atomic.refuse_existing(path, overwrite)
    return atomic.write_text(path, rows_to_csv(reselection_rows(results, cache, settings)))


def load_reselection(path: str | Path) -> list[ClipReselection]:
    """Read a CSV written by :func:`save_reselection` (extra columns are ignored)."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _CORE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a reselection results file, columns {missing} are missing")
        out = []
        for line, row in enumerate(reader, start=2):
            try:
                out.append(ClipReselection(
                    clip_id=row["clip_id"],
                    annotated=tuple(int(row[f"annotated_{k}_index"]) for k in KEYFRAMES),  # type: ignore[arg-type]
                    reselected=tuple(int(row[f"reselected_{k}_index"]) for k in KEYFRAMES),  # type: ignore[arg-type]
                    rise_distance=float(row["rise_distance"]), fall_distance=float(row["fall_distance"])))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}, line {line} (clip {row.get('clip_id')!r}): {exc}") from None
    return out


def check_against_cache(results: Sequence[ClipReselection], cache: FrameCache, source: str = "results") -> None:
    """Raise ``ValueError`` when a result's clip is missing from ``cache`` or its annotated
    indices differ from the cache's (results of another cache or an older preprocessing)."""
    for r in results:
        if r.clip_id not in cache:
            raise ValueError(f"{source}: clip {r.clip_id!r} is not in the cache {cache.root}")
        ann = annotated_indices(cache[r.clip_id])
        if ann != tuple(r.annotated):
            raise ValueError(f"{source}: clip {r.clip_id!r} has annotated indices {tuple(r.annotated)}, "
                             f"the cache {cache.root} has {ann}")
        n = cache[r.clip_id].num_frames
        if not all(0 <= k < n for k in r.reselected):
            raise ValueError(f"{source}: clip {r.clip_id!r} reselected indices {tuple(r.reselected)} "
                             f"are outside its {n} frames")


def corrected_records(cache: FrameCache, results: Sequence[ClipReselection]) -> list:
    """:class:`~gamdss.data.records.AnnotationRecord` per result, with the reselected
    keyframes as onset/apex/offset (dataset frame numbers) and everything else (subject,
    video, emotion, AUs, fps, row, meta, the reader's corrections) from the cache entry."""
    from gamdss.data.records import AnnotationRecord, Correction

    records = []
    for r in results:
        e = cache[r.clip_id]
        onset, apex, offset = frame_numbers(e, r.reselected)
        records.append(AnnotationRecord(
            dataset=e.dataset, subject=e.subject, clip_id=e.clip_id, video=e.video, onset=onset,
            apex=apex, offset=offset, emotion=e.emotion, aus=tuple(e.aus), fps=e.fps, row=e.row,
            meta=dict(e.meta), corrections=tuple(Correction(**c) for c in e.corrections)))
    return records


ORIGINAL_COLUMNS = ("Original Onset", "Original Apex", "Original Offset")


def original_columns(cache: FrameCache, results: Sequence[ClipReselection]) -> dict[str, list[int]]:
    """The annotated (pre-reselection) dataset frame numbers, one list per extra column
    (``Original Onset``, ``Original Apex``, ``Original Offset``), in the order of ``results``."""
    cols: dict[str, list[int]] = {name: [] for name in ORIGINAL_COLUMNS}
    for r in results:
        for name, fn in zip(ORIGINAL_COLUMNS, frame_numbers(cache[r.clip_id], r.annotated)):
            cols[name].append(fn)
    return cols


# ---------------------------------------------------------------- a run's output folder ----

RESULTS_CSV = "reselection.csv"
SETTINGS_YAML = "settings.yaml"


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
        """Clips, how many moved per keyframe, mean |displacement| in frames and ms."""
        n = len(self.rows)
        lines = [f"reselected {n} clips; results in {self.out}"]
        for k in KEYFRAMES:
            moved = sum(1 for r in self.rows if r[f"shift_{k}_frames"] != 0)
            frames = [abs(r[f"shift_{k}_frames"]) for r in self.rows]
            ms = [abs(r[f"shift_{k}_ms"]) for r in self.rows]
            mean_f = sum(frames) / n if n else float("nan")
            mean_ms = sum(ms) / n if n else float("nan")
            lines.append(f"  {k:<6}: {moved:>5} of {n} moved; mean |displacement| {mean_f:.2f} frames, "
                         f"{mean_ms:.2f} ms")
        for path in [self.results_csv, *self.annotation_files, self.settings_yaml]:
            lines.append(f"  wrote {path}")
        lines += [f"  not written: {why}" for why in self.skipped_exports]
        return "\n".join(lines)


def annotation_file_name(dataset: str) -> str:
    """Name of a run's corrected annotation file for ``dataset``: the dataset's official
    annotation file name with ``_reselected`` and ``.xlsx`` (e.g.
    ``CASME2-coding-20190701_reselected.xlsx``), or ``<dataset>_annotations_reselected.xlsx``."""
    try:
        from gamdss.data.datasets import get_dataset

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


def export_reselection(cache: FrameCache, results: Sequence[ClipReselection], out: str | Path,
                       settings: ReselectionSettings, *, overwrite: bool = False,
                       extra_settings: dict[str, Any] | None = None) -> ReselectionExport:
    """Write a reselection run's folder (all atomically; refuses to replace existing files
    unless ``overwrite``):

    - ``reselection.csv``: :func:`reselection_rows` with the cache and the settings;
    - per dataset in the cache, the corrected annotation file in the dataset's own schema
      (reselected keyframes as onset/apex/offset, originals in ``Original Onset`` ...
      columns), written by the dataset's reader (``get_dataset(name).write_annotations``);
      the readers identify its clips by the ``Original Onset`` (same clip ids and clip
      folders as the cache's source file) and read the reselected keyframes;
    - ``settings.yaml``: the settings, the cache, clip count, gamdss version.
    """
    import datetime

    import yaml

    import gamdss

    out = Path(out)
    atomic.refuse_any_existing(planned_outputs(cache, out), overwrite)
    check_against_cache(results, cache, "reselection results")
    rows = reselection_rows(results, cache, settings)
    results_csv = atomic.write_text(out / RESULTS_CSV, rows_to_csv(rows))
    written, skipped = [], []
    for dataset in sorted({cache[r.clip_id].dataset for r in results}):
        part = [r for r in results if cache[r.clip_id].dataset == dataset]
        path = out / annotation_file_name(dataset)
        try:
            from gamdss.data.datasets import get_dataset

            spec = get_dataset(dataset)
        except (ImportError, KeyError, ValueError) as exc:
            skipped.append(f"{path.name} (no reader for dataset {dataset!r}: {exc})")
            continue
        spec.write_annotations(corrected_records(cache, part), path,
                               extra_columns=original_columns(cache, part), overwrite=overwrite)
        written.append(path)
    info = {"reselection": asdict(settings), "cache": str(cache.root.resolve()),
            "cache_dataset": cache.dataset, "clips": len(results), "gamdss_version": gamdss.__version__,
            "created": datetime.datetime.now().isoformat(timespec="seconds"), **(extra_settings or {})}
    settings_yaml = atomic.write_text(out / SETTINGS_YAML, yaml.safe_dump(info, sort_keys=False))
    return ReselectionExport(out, results_csv, settings_yaml, written, skipped, rows)
