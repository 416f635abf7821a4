"""The results file of a reselection run (``reselection.csv``): one row per clip.

:func:`save_reselection` / :func:`load_reselection` write and read it. With the cache at hand
the file also holds the dataset, subject, dataset frame numbers, displacements in frames,
milliseconds and percent of the clip length, each keyframe's confidence, and the settings.
It is the one column scheme of every reselection table: ``gamdss reselect``, the audit and
training write it (training and the audit of several caches add a ``cache`` column), and
training and the audit read it back with :func:`load_reselection`,
:func:`check_against_cache` and :func:`recorded_settings`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gamdss.data.cache import FrameCache
from gamdss.data.reselection_record import ClipReselection, annotated_indices, frame_numbers
from gamdss.settings.reselection import KEYFRAMES, ReselectionSettings
from gamdss.util import atomic, csv_rows

RESULTS_CSV = "reselection.csv"
SETTINGS_YAML = "settings.yaml"

_CORE_COLUMNS = (
    ["clip_id"]
    + [f"annotated_{k}_index" for k in KEYFRAMES]
    + [f"reselected_{k}_index" for k in KEYFRAMES]
    + ["rise_distance", "fall_distance"]
)


def reselection_rows(
    results: Sequence[ClipReselection],
    cache: FrameCache | None = None,
    settings: ReselectionSettings | None = None,
    *,
    cache_name: str | None = None,
) -> list[dict[str, Any]]:
    """One dict per clip, the rows of the results CSV.

    With ``cache_name`` (runs over several caches): first a ``cache`` column. Always: ``clip_id``, ``annotated_<k>_index``, ``reselected_<k>_index`` and
    ``shift_<k>_frames`` (reselected - annotated) for k in onset/apex/offset,
    ``rise_distance``, ``fall_distance``. With ``cache``: ``dataset``, ``subject``,
    ``annotated_<k>_frame``/``reselected_<k>_frame`` (dataset frame numbers), ``fps``,
    ``num_frames``, ``shift_<k>_ms`` (frames x 1000 / fps) and ``shift_<k>_percent``
    (|frames| / num_frames x 100, the paper's Eq. 15 with the cached clip length), the
    entry's ``meta`` as ``meta_<key>``, and ``clip_sha256``, the sha256 of the cached pixels
    the keyframes were chosen on (checked by :func:`check_against_cache`). ``confidence_<k>``:
    evidence for the move in noise-floor sds (empty where not assessed). With ``settings``: its fields and ``preset``
    (the preset's name, empty for custom settings).
    """
    rows = []
    for r in results:
        row: dict[str, Any] = {} if cache_name is None else {"cache": cache_name}
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
            row["clip_sha256"] = entry.sha256
        rows.append(row)
    return rows


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV text of dict rows (:func:`gamdss.util.csv_rows.rows_to_csv`); no rows give the
    header of the core columns."""
    return csv_rows.rows_to_csv(rows, None if rows else _CORE_COLUMNS)


def save_reselection(
    results: Sequence[ClipReselection],
    path: str | Path,
    *,
    cache: FrameCache | None = None,
    settings: ReselectionSettings | None = None,
    overwrite: bool = False,
) -> Path:
    """Atomically write ``results`` as CSV (columns: :func:`reselection_rows`).

    Refuses to replace an existing file unless ``overwrite=True``.
    """
    path = atomic.refuse_existing(path, overwrite)
    return atomic.write_text(path, rows_to_csv(reselection_rows(results, cache, settings)))


def recorded_settings(path: str | Path) -> ReselectionSettings | None:
    """The settings a ``reselection.csv`` was made with: those of the ``settings.yaml`` beside
    it (written by ``gamdss reselect`` and the audit), else those of the file's settings
    columns; None when neither records any. ``ValueError`` when that ``settings.yaml`` cannot
    be read as settings."""
    path = Path(path)
    yaml_path = path.parent / SETTINGS_YAML
    if yaml_path.is_file():
        try:
            return ReselectionSettings.from_yaml(yaml_path)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{yaml_path}: not readable as the settings of {path.name}: {exc}") from None
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            first = next(csv.DictReader(fh), None)
    except UnicodeDecodeError as exc:
        raise _not_text(path, exc) from None
    if first and (first.get("method") or first.get("window")):
        return ReselectionSettings.from_csv_row(first)
    return None


def load_reselection(path: str | Path) -> list[ClipReselection]:
    """Read a CSV written by :func:`save_reselection` (extra columns are ignored)."""
    path = Path(path)
    try:
        return _read_reselection(path)
    except UnicodeDecodeError as exc:
        raise _not_text(path, exc) from None


def _not_text(path: Path, exc: UnicodeDecodeError) -> ValueError:
    return ValueError(f"{path}: not a reselection results file (not UTF-8 text: {exc})")


def _read_reselection(path: Path) -> list[ClipReselection]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _CORE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a reselection results file, columns {missing} are missing")
        out = []
        for line, row in enumerate(reader, start=2):
            try:
                out.append(
                    ClipReselection(
                        clip_id=row["clip_id"],
                        annotated=tuple(int(row[f"annotated_{k}_index"]) for k in KEYFRAMES),  # type: ignore[arg-type]
                        reselected=tuple(int(row[f"reselected_{k}_index"]) for k in KEYFRAMES),  # type: ignore[arg-type]
                        rise_distance=float(row["rise_distance"]),
                        fall_distance=float(row["fall_distance"]),
                        confidence=tuple(_float_or_nan(row.get(f"confidence_{k}")) for k in KEYFRAMES),
                        clip_sha256=row.get("clip_sha256") or None,
                    )
                )  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}, line {line} (clip {row.get('clip_id')!r}): {exc}") from None
    return out


def _float_or_nan(text: str | None) -> float:
    return float("nan") if text in (None, "") else float(text)


def check_against_cache(results: Sequence[ClipReselection], cache: FrameCache, source: str = "results") -> None:
    """Raise ``ValueError`` when a result's clip is missing from ``cache``, its annotated
    indices differ from the cache's or it was chosen on other pixels (its ``clip_sha256``, where
    recorded, is not the cache's: results of another cache or an older preprocessing), its
    reselected indices are outside the clip or out of order (onset <= apex <= offset), or when
    a clip has more than one result (which one would be used is not for us to guess)."""
    seen: set[str] = set()
    for r in results:
        if r.clip_id in seen:
            raise ValueError(f"{source}: clip {r.clip_id!r} has more than one row")
        seen.add(r.clip_id)
        if r.clip_id not in cache:
            raise ValueError(f"{source}: clip {r.clip_id!r} is not in the cache {cache.root}")
        entry = cache[r.clip_id]
        if r.clip_sha256 is not None and r.clip_sha256 != entry.sha256:
            raise ValueError(
                f"{source}: clip {r.clip_id!r} was reselected on other pixels (sha256 {r.clip_sha256[:12]}, the "
                f"cache {cache.root} now holds {entry.sha256[:12]}: preprocessed again since); reselect it again"
            )
        ann = annotated_indices(entry)
        if ann != tuple(r.annotated):
            raise ValueError(
                f"{source}: clip {r.clip_id!r} has annotated indices {tuple(r.annotated)}, "
                f"the cache {cache.root} has {ann}"
            )
        n = entry.num_frames
        if not all(0 <= k < n for k in r.reselected):
            raise ValueError(
                f"{source}: clip {r.clip_id!r} reselected indices {tuple(r.reselected)} are outside its {n} frames"
            )
        onset, apex, offset = r.reselected
        if not onset <= apex <= offset:
            raise ValueError(
                f"{source}: clip {r.clip_id!r} reselected indices {tuple(r.reselected)} are not in order "
                "(onset <= apex <= offset)"
            )
