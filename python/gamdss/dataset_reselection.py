"""Keyframe reselection over a whole frame cache, and its results file.

:func:`reselect_cache` runs the method of a
:class:`~gamdss.reselection_settings.ReselectionSettings` (the paper's :func:`gamdss.reselect`
or the noise-aware :func:`gamdss.correction.correct_keyframes`) on every clip of a
:class:`~gamdss.data.cache.FrameCache`, batched under a byte limit, reading from the
memory-mapped clip files only the frames the method looks at. Results are
:class:`ClipReselection` records with clip-relative, 0-based indices; :func:`frame_numbers`
turns indices back into the dataset's frame numbers (``CacheEntry.frame_numbers``).

:func:`save_reselection` / :func:`load_reselection` write and read the results as CSV (the
``reselection.csv`` of ``gamdss reselect``). With the cache at hand the file also holds the
dataset, subject, dataset frame numbers, displacements in frames, milliseconds and percent of
the clip length, each keyframe's confidence, and the settings.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from gamdss import atomic
from gamdss.data.cache import CacheEntry, FrameCache
from gamdss.reselection_settings import ReselectionSettings, preset

KEYFRAMES = ("onset", "apex", "offset")
DEFAULT_MAX_BATCH_BYTES = 256 * 2**20


@dataclass(frozen=True)
class ClipReselection:
    """Annotated and reselected keyframes of one clip.

    ``annotated`` and ``reselected`` are clip-relative, 0-based (onset, apex, offset) indices
    into the cached clip; ``rise_distance`` = d(onset, apex) and ``fall_distance`` =
    d(apex, offset) of the reselected frames, in grey levels (L2 over all uint8 elements;
    ``max_distance`` method only, NaN for ``noise_aware``). ``confidence`` per keyframe: the
    evidence for its move in noise-floor sds (``noise_aware``; NaN where not assessed, and for
    ``max_distance``, which has no noise model).
    """

    clip_id: str
    annotated: tuple[int, int, int]
    reselected: tuple[int, int, int]
    rise_distance: float = float("nan")
    fall_distance: float = float("nan")
    confidence: tuple[float, float, float] = (float("nan"), float("nan"), float("nan"))

    def __eq__(self, other: object) -> bool:  # NaN confidences compare equal
        if not isinstance(other, ClipReselection):
            return NotImplemented
        return (self.clip_id, self.annotated, self.reselected) == (other.clip_id, other.annotated, other.reselected) \
            and all(_same(a, b) for a, b in zip((self.rise_distance, self.fall_distance, *self.confidence),
                                                (other.rise_distance, other.fall_distance, *other.confidence)))

    __hash__ = None  # type: ignore[assignment]

    @property
    def displacement(self) -> tuple[int, int, int]:
        """Reselected minus annotated index per keyframe (frames; positive = later)."""
        return tuple(r - a for r, a in zip(self.reselected, self.annotated))  # type: ignore[return-value]

    @property
    def moved(self) -> bool:
        return self.reselected != self.annotated


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


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
    """First and last frame (inclusive, clip-relative) that each clip's reselection reads."""
    import torch

    from gamdss.correction import frames_needed
    from gamdss.windows import preset_windows

    if not entries:
        return []
    ann = torch.tensor([annotated_indices(e) for e in entries], dtype=torch.int64)
    lengths = torch.tensor([e.num_frames for e in entries], dtype=torch.int64)
    for e, (o, a, f) in zip(entries, ann.tolist()):
        if not 0 <= o <= a <= f <= e.num_frames - 1:
            raise ValueError(f"clip {e.clip_id}: onset={o}, apex={a}, offset={f} violates "
                             f"0 <= onset <= apex <= offset <= T-1 with T={e.num_frames}")
    if settings.method == "noise_aware":
        return [frames_needed(o, a, f, e.fps, e.num_frames, settings) for e, (o, a, f) in zip(entries, ann.tolist())]
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


def reselect_cache(cache: FrameCache, settings: ReselectionSettings | None = None, *,
                   clip_ids: Sequence[str] | None = None, device: str = "cpu",
                   max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES, progress: bool = True) -> list[ClipReselection]:
    """Re-select the onset, apex and offset of every clip in ``cache`` (or of ``clip_ids``).

    ``settings``: a :class:`~gamdss.reselection_settings.ReselectionSettings` (default: the
    ``recommended`` preset). Clips are read from their memory-mapped files, only the frames
    the method looks at (uint8 ``[span, H, W, 3]``), and grouped into batches of at most
    ``max_batch_bytes`` bytes (a clip alone larger than that is a batch of its own; clips of
    different frame sizes never share a batch) and go to
    :func:`gamdss.reselect_clips.reselect_clips`: ``max_distance`` runs :func:`gamdss.reselect`
    on ``device`` (``"cpu"``, ``"cuda"``...), ``noise_aware`` runs
    :func:`gamdss.correction.correct_keyframes` (CPU). Results come back in cache order;
    each is identical to reselecting that whole clip on its own.

    Raises ``ValueError`` naming the clip when its annotation is not valid for its frames.
    """
    import numpy as np
    from tqdm.auto import tqdm

    settings = preset("recommended") if settings is None else settings
    if not isinstance(settings, ReselectionSettings):
        raise TypeError(f"settings must be a ReselectionSettings, got {type(settings).__name__}")
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
            for i, result in zip(batch, _reselect_batch(cache, [entries[i] for i in batch],
                                                        [spans[i] for i in batch], settings, device)):
                results[i] = result
            bar.update(len(batch))
    finally:
        bar.close()
    return [r for r in results if r is not None]


def _span_frames(cache: FrameCache, entry: CacheEntry, span: tuple[int, int]):
    """uint8 torch ``[last - first + 1, H, W, 3]``: the span's frames, read from the memory map."""
    import numpy as np
    import torch

    first, last = span
    return torch.from_numpy(np.array(cache.frames(entry)[first:last + 1]))


def _reselect_batch(cache: FrameCache, entries: list[CacheEntry], spans: list[tuple[int, int]],
                    settings: ReselectionSettings, device: str) -> list[ClipReselection]:
    """One batch through :func:`gamdss.reselect_clips.reselect_clips`, on the span frames only
    (annotations shifted into the span and the results shifted back)."""
    from gamdss.reselect_clips import reselect_clips

    clips = [_span_frames(cache, e, span) for e, span in zip(entries, spans)]
    ann = [[k - span[0] for k in annotated_indices(e)] for e, span in zip(entries, spans)]
    out = reselect_clips(clips, [a[0] for a in ann], [a[1] for a in ann], [a[2] for a in ann],
                         [e.fps for e in entries], settings, clip_ids=[e.clip_id for e in entries], device=device)
    rows = zip(entries, spans, out.keyframes.tolist(), out.confidence.tolist(), out.rise_distance.tolist(),
               out.fall_distance.tolist())
    return [ClipReselection(clip_id=e.clip_id, annotated=annotated_indices(e),
                            reselected=tuple(int(k) + span[0] for k in picked),  # type: ignore[arg-type]
                            rise_distance=float(rise), fall_distance=float(fall),
                            confidence=tuple(float(c) for c in conf))  # type: ignore[arg-type]
            for e, span, picked, conf, rise, fall in rows]


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
    entry's ``meta`` as ``meta_<key>``. ``confidence_<k>``: evidence for the move in
    noise-floor sds (empty where not assessed). With ``settings``: its fields and ``preset``
    (the preset's name, empty for custom settings).
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
        for k, c in zip(KEYFRAMES, r.confidence):
            row[f"confidence_{k}"] = "" if c != c else float(c)
        if settings is not None:
            row["preset"] = settings.preset_name() or ""
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
                    rise_distance=float(row["rise_distance"]), fall_distance=float(row["fall_distance"]),
                    confidence=tuple(_float_or_nan(row.get(f"confidence_{k}")) for k in KEYFRAMES)))  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}, line {line} (clip {row.get('clip_id')!r}): {exc}") from None
    return out


def _float_or_nan(text: str | None) -> float:
    return float("nan") if text in (None, "") else float(text)


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
            conf = [r[f"confidence_{k}"] for r in self.rows if r[f"shift_{k}_frames"] != 0
                    and r.get(f"confidence_{k}", "") != ""]
            detail = f"; median confidence of the moves {sorted(conf)[len(conf) // 2]:.1f} sd" if conf else ""
            lines.append(f"  {k:<6}: {moved:>5} of {n} moved; mean |displacement| {mean_f:.2f} frames, "
                         f"{mean_ms:.2f} ms{detail}")
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
    """Write a reselection run's folder as one set (:func:`gamdss.atomic.output_set`: written
    into a staging folder, moved into ``out`` only when complete, ``settings.yaml`` last);
    refuses to replace existing files unless ``overwrite``:

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
    written, skipped = [], []
    info = {"reselection": asdict(settings), "cache": str(cache.root.resolve()),
            "cache_dataset": cache.dataset, "clips": len(results), "gamdss_version": gamdss.__version__,
            "created": datetime.datetime.now().isoformat(timespec="seconds"), **(extra_settings or {})}
    with atomic.output_set(out, last=[SETTINGS_YAML]) as staging:
        atomic.write_text(staging / RESULTS_CSV, rows_to_csv(rows))
        for dataset in sorted({cache[r.clip_id].dataset for r in results}):
            part = [r for r in results if cache[r.clip_id].dataset == dataset]
            name = annotation_file_name(dataset)
            try:
                from gamdss.data.datasets import get_dataset

                spec = get_dataset(dataset)
            except (ImportError, KeyError, ValueError) as exc:
                skipped.append(f"{name} (no reader for dataset {dataset!r}: {exc})")
                continue
            spec.write_annotations(corrected_records(cache, part), staging / name,
                                   extra_columns=original_columns(cache, part))
            written.append(out / name)
        atomic.write_text(staging / SETTINGS_YAML, yaml.safe_dump(info, sort_keys=False))
    results_csv, settings_yaml = out / RESULTS_CSV, out / SETTINGS_YAML
    return ReselectionExport(out, results_csv, settings_yaml, written, skipped, rows)
