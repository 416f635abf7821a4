"""The numbers of an annotation audit: per-clip displacements, summaries per group and
histogram counts. Plain lists of dicts, written as CSV next to the plots.

A displacement is reselected minus annotated keyframe (positive: the reselection is later),
in frames, in milliseconds (frames x 1000 / fps, the paper's Eq. 16) and as |frames| in
percent of the cached clip length (Eq. 15).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from gamdss.data.cache import FrameCache
from gamdss.data.reselection_files import reselection_rows
from gamdss.data.reselection_record import ClipReselection
from gamdss.op.windows import search_ranges
from gamdss.settings.reselection import KEYFRAMES, ReselectionSettings

ALL = "all clips"


def displacement_rows(
    cache: FrameCache, results: Sequence[ClipReselection], settings: ReselectionSettings, cache_name: str
) -> list[dict[str, Any]]:
    """One row per clip: :func:`gamdss.data.reselection_files.reselection_rows` plus ``cache``,
    the search ranges ``rise_range``/``fall_range`` (frames; ``max_distance`` only, empty for
    ``noise_aware``) and ``mean_abs_ms`` (the mean |displacement| over the three keyframes,
    the paper's Eq. 17)."""
    rows = reselection_rows(results, cache, settings)
    if not rows:
        return rows
    ann = torch.tensor([r.annotated for r in results], dtype=torch.int64)
    rise, fall = search_ranges(ann[:, 0], ann[:, 1], ann[:, 2], settings.lam_rise, settings.lam_fall)
    out = []
    ranged = settings.method == "max_distance"
    for row, r_rise, r_fall in zip(rows, rise.tolist(), fall.tolist()):
        row = {
            "cache": cache_name,
            **row,
            "rise_range": r_rise if ranged else "",
            "fall_range": r_fall if ranged else "",
        }
        row["mean_abs_ms"] = sum(abs(row[f"shift_{k}_ms"]) for k in KEYFRAMES) / len(KEYFRAMES)
        out.append(row)
    return out


def group_value(row: dict[str, Any], key: str) -> str:
    """A row's group under ``key``: a column (``dataset``, ``subject``, ``cache``) or a meta
    key (``ethnicity`` ...); ``unknown`` when the clip has no such metadata."""
    value = row.get(key, row.get(f"meta_{key}"))
    return "unknown" if value in (None, "") else str(value)


# Metadata that describes who the subject is (or the sample's coded class): the groups the
# paper compares. Other metadata (durations, notes, inducement codes) are not groups; ask for
# them by name with ``group_by``.
GROUP_KEYS = ("ethnicity", "ethnic_group", "race", "gender", "sex", "age_group", "group", "objective_class")


def default_group_keys(rows: Sequence[dict[str, Any]], max_groups: int = 12) -> list[str]:
    """``dataset`` plus each of :data:`GROUP_KEYS` that the clips' metadata has and that
    splits them into 2..``max_groups`` groups."""
    keys = ["dataset"]
    meta_keys = {c[5:] for r in rows for c in r if c.startswith("meta_")}
    for key in GROUP_KEYS:
        if key in meta_keys and 2 <= len({group_value(r, key) for r in rows}) <= max_groups:
            keys.append(key)
    return keys


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"mean": math.nan, "median": math.nan, "p90": math.nan}
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "median": float(np.median(arr)), "p90": float(np.percentile(arr, 90))}


def confident_moves(rows: Sequence[dict[str, Any]], keyframe: str, confident_z: float) -> int | str:
    """How many of ``rows`` moved ``keyframe`` with confidence >= ``confident_z``; ``""``
    when no row has a confidence for it."""
    rated = [r for r in rows if r.get(f"confidence_{keyframe}", "") != ""]
    if not rated:
        return ""
    return sum(
        1 for r in rated if r[f"shift_{keyframe}_frames"] != 0 and float(r[f"confidence_{keyframe}"]) >= confident_z
    )


def summary_rows(
    rows: Sequence[dict[str, Any]], group_keys: Iterable[str], confident_z: float = 6.0
) -> list[dict[str, Any]]:
    """Mean, median and 90th percentile of |displacement| per keyframe, in frames and ms,
    the share of clips whose keyframe moved, the number of moves with a confidence of at
    least ``confident_z`` noise sds (``<k>_confident_moves``; empty when the method gives no
    confidence, as the paper's does not), and the mean of Eq. 17, for all clips and for
    every group of every key in ``group_keys``."""
    groups: list[tuple[str, str, list[dict[str, Any]]]] = [("", ALL, list(rows))]
    for key in group_keys:
        for value in sorted({group_value(r, key) for r in rows}):
            groups.append((key, value, [r for r in rows if group_value(r, key) == value]))
    out = []
    for key, value, members in groups:
        row: dict[str, Any] = {"group_by": key or "-", "group": value, "clips": len(members)}
        for k in KEYFRAMES:
            frames = [abs(r[f"shift_{k}_frames"]) for r in members]
            ms = [abs(r[f"shift_{k}_ms"]) for r in members]
            row[f"{k}_moved_share"] = (sum(1 for f in frames if f) / len(frames)) if frames else math.nan
            row[f"{k}_confident_moves"] = confident_moves(members, k, confident_z)
            for unit, vals in (("frames", frames), ("ms", ms)):
                for stat, v in _stats(vals).items():
                    row[f"{k}_{stat}_abs_{unit}"] = v
        row["mean_abs_ms_eq17"] = _stats([r["mean_abs_ms"] for r in members])["mean"]
        out.append(row)
    return out


def histogram_frames(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counts of clips per displacement in whole frames (one row per value from the
    smallest to the largest seen, zero counts included), per keyframe."""
    values = [r[f"shift_{k}_frames"] for r in rows for k in KEYFRAMES]
    lo, hi = (min(values), max(values)) if values else (0, 0)
    lo, hi = min(lo, 0), max(hi, 0)
    out = []
    for v in range(lo, hi + 1):
        out.append({"shift_frames": v, **{k: sum(1 for r in rows if r[f"shift_{k}_frames"] == v) for k in KEYFRAMES}})
    return out


def histogram_ms(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counts of clips per displacement bin in milliseconds, per keyframe. Bins are one frame
    of the fastest recording wide (1000 / max fps ms), centred on its multiples, so every
    displacement of that dataset falls in the middle of a bin; ``[lo, hi)``."""
    if not rows:
        return []
    step = 1000.0 / max(float(r["fps"]) for r in rows)
    values = [r[f"shift_{k}_ms"] for r in rows for k in KEYFRAMES]
    first = math.floor(min(min(values), 0.0) / step + 0.5)
    last = math.floor(max(max(values), 0.0) / step + 0.5)
    out = []
    for b in range(first, last + 1):
        lo, hi = (b - 0.5) * step, (b + 0.5) * step
        counts = {k: sum(1 for r in rows if lo <= r[f"shift_{k}_ms"] < hi) for k in KEYFRAMES}
        out.append({"bin_lo_ms": lo, "bin_hi_ms": hi, "bin_centre_ms": b * step, **counts})
    return out


def apex_offset_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clips per (dataset, |apex displacement|, |offset displacement|), in frames and ms."""
    counts: dict[tuple, int] = {}
    for r in rows:
        key = (
            r["dataset"],
            abs(r["shift_apex_frames"]),
            abs(r["shift_offset_frames"]),
            abs(r["shift_apex_ms"]),
            abs(r["shift_offset_ms"]),
        )
        counts[key] = counts.get(key, 0) + 1
    return [
        {
            "dataset": d,
            "abs_apex_frames": af,
            "abs_offset_frames": of,
            "abs_apex_ms": ams,
            "abs_offset_ms": oms,
            "clips": n,
        }
        for (d, af, of, ams, oms), n in sorted(counts.items())
    ]


def group_rows(rows: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Quartiles of |displacement| (ms) per group of ``key`` and keyframe: the numbers of
    the side-by-side box plot."""
    out = []
    for value in sorted({group_value(r, key) for r in rows}):
        members = [r for r in rows if group_value(r, key) == value]
        for k in KEYFRAMES:
            ms = np.asarray([abs(r[f"shift_{k}_ms"]) for r in members], dtype=np.float64)
            q1, med, q3, p90 = np.percentile(ms, [25, 50, 75, 90])
            out.append(
                {
                    "group_by": key,
                    "group": value,
                    "keyframe": k,
                    "clips": len(members),
                    "mean_abs_ms": float(ms.mean()),
                    "q1_abs_ms": float(q1),
                    "median_abs_ms": float(med),
                    "q3_abs_ms": float(q3),
                    "p90_abs_ms": float(p90),
                    "max_abs_ms": float(ms.max()),
                }
            )
    return out
