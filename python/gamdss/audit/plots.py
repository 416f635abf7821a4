"""Matplotlib (Agg) figures of an annotation audit. Every function takes the numbers of
:mod:`gamdss.audit.tables` (or a curve) and writes one PNG atomically.

Legends never hide data: each is placed outside the axes, by construction (:func:`_legend_outside`).
Frame-difference curves are drawn against the dataset's frame numbers, the numbers of the
annotation spreadsheet and of ``reselection.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from gamdss.audit.tables import group_value
from gamdss.settings.reselection import KEYFRAMES
from gamdss.util import atomic

COLOURS = {"onset": "tab:blue", "apex": "tab:red", "offset": "tab:green"}


def _legend_outside(ax, where: str = "right", **kwargs):
    """A legend of ``ax`` outside its axes: to the right of them (``where="right"``) or below
    them, under the x label (``"below"``); the saved figure grows to hold it."""
    if where == "right":
        return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), borderaxespad=0.0, **kwargs)


def _save(fig, path: Path) -> Path:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return path


def histograms(table: Sequence[dict[str, Any]], unit: str, path: Path, subtitle: str) -> Path:
    """Three stacked bar charts (onset, apex, offset) of clips per displacement.

    ``table``: :func:`histogram_frames` rows (``unit="frames"``) or :func:`histogram_ms`
    rows (``unit="ms"``)."""
    fig = Figure(figsize=(7, 7))
    axes = fig.subplots(3, 1, sharex=True)
    if unit == "frames":
        x = np.array([r["shift_frames"] for r in table], dtype=float)
        width = 0.8
    else:
        x = np.array([r["bin_centre_ms"] for r in table], dtype=float)
        width = 0.8 * (table[0]["bin_hi_ms"] - table[0]["bin_lo_ms"]) if table else 1.0
    for ax, k in zip(axes, KEYFRAMES):
        counts = np.array([r[k] for r in table], dtype=float)
        ax.bar(x, counts, width=width, color=COLOURS[k], label=k)
        ax.axvline(0, color="black", lw=0.8, ls=":")
        total = counts.sum()
        moved = counts[x != 0].sum()
        ax.set_ylabel("clips")
        ax.set_title(f"{k}: {int(moved)} of {int(total)} clips moved", fontsize=10)
        ax.yaxis.get_major_locator().set_params(integer=True)
    axes[-1].set_xlabel(
        f"reselected − annotated ({'frames' if unit == 'frames' else 'milliseconds'}; positive = later)"
    )
    if unit == "frames":
        axes[-1].xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(f"Keyframe displacement in {unit}\n{subtitle}", fontsize=11)
    return _save(fig, path)


def apex_vs_offset(rows: Sequence[dict[str, Any]], path: Path, subtitle: str) -> Path:
    """Left: |offset displacement| against |apex displacement| (ms), one bubble per distinct
    pair, area by the number of clips, colour by dataset. Right: box plots of |displacement|
    (ms) per keyframe."""
    fig = Figure(figsize=(11, 4.6))
    left, right = fig.subplots(1, 2)
    datasets = sorted({r["dataset"] for r in rows})
    top = 1.0
    for i, d in enumerate(datasets):
        pairs: dict[tuple[float, float], int] = {}
        for r in rows:
            if r["dataset"] == d:
                key = (abs(r["shift_apex_ms"]), abs(r["shift_offset_ms"]))
                pairs[key] = pairs.get(key, 0) + 1
        xs = np.array([p[0] for p in pairs])
        ys = np.array([p[1] for p in pairs])
        n = np.array(list(pairs.values()))
        top = max(top, xs.max(initial=0), ys.max(initial=0))
        left.scatter(
            xs,
            ys,
            s=30 + 40 * n,
            alpha=0.55,
            color=f"C{i}",
            label=f"{d} ({int(n.sum())} clips)",
            edgecolors="black",
            linewidths=0.5,
        )
        for x, y, c in zip(xs, ys, n):
            if c > 1:
                left.annotate(str(c), (x, y), ha="center", va="center", fontsize=8)
    left.plot([0, top * 1.05], [0, top * 1.05], color="grey", lw=0.8, ls="--", label="|Δoffset| = |Δapex|")
    left.set_xlabel("|apex displacement| (ms)")
    left.set_ylabel("|offset displacement| (ms)")
    left.set_title("Offset versus apex uncertainty\n(bubble area: clips; number: clips when > 1)", fontsize=10)
    _legend_outside(left, "below", fontsize=8, ncol=2)
    data = [[abs(r[f"shift_{k}_ms"]) for r in rows] for k in KEYFRAMES]
    box = right.boxplot(data, patch_artist=True, showmeans=True)
    right.set_xticks(range(1, len(KEYFRAMES) + 1), list(KEYFRAMES))
    for patch, k in zip(box["boxes"], KEYFRAMES):
        patch.set_facecolor(COLOURS[k])
        patch.set_alpha(0.45)
    right.set_ylabel("|reselected − annotated| (ms)")
    right.set_title("Distribution of |displacement| per keyframe\n(box: quartiles; triangle: mean)", fontsize=10)
    fig.suptitle(subtitle, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def groups_side_by_side(
    rows: Sequence[dict[str, Any]], key: str, groups: Sequence[str], path: Path, subtitle: str
) -> Path:
    """Box plots of |displacement| (ms) per keyframe with the groups of ``key`` side by side
    (e.g. SAMM and 4DME next to CASME II), group sizes in the legend; the title says so when
    there is only one group."""
    fig = Figure(figsize=(max(6.5, 1.2 + 0.9 * len(groups) * len(KEYFRAMES) / 2), 4.6))
    ax = fig.subplots()
    n = len(groups)
    width = 0.8 / max(n, 1)
    handles = []
    for g, value in enumerate(groups):
        members = [r for r in rows if group_value(r, key) == value]
        data = [[abs(r[f"shift_{k}_ms"]) for r in members] for k in KEYFRAMES]
        pos = [i + 1 - 0.4 + width * (g + 0.5) for i in range(len(KEYFRAMES))]
        box = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showmeans=True, manage_ticks=False)
        for patch in box["boxes"]:
            patch.set_facecolor(f"C{g}")
            patch.set_alpha(0.5)
        handles.append(Rectangle((0, 0), 1, 1, color=f"C{g}", alpha=0.5, label=f"{value} ({len(members)} clips)"))
    ax.set_xticks(range(1, len(KEYFRAMES) + 1), list(KEYFRAMES))
    ax.set_xlim(0.5, len(KEYFRAMES) + 0.5)
    ax.set_ylabel("|reselected − annotated| (ms)")
    ax.set_xlabel("keyframe")
    _legend_outside(ax, "right", handles=handles, title=key, fontsize=8)
    only = f" (only one group, {groups[0]!r}: nothing to compare)" if len(groups) == 1 else ""
    ax.set_title(f"|Displacement| by {key}{only}\n{subtitle}", fontsize=10)
    return _save(fig, path)


def distance_curves(curve: dict[str, Any], path: Path, subtitle: str) -> Path:
    """The paper's Fig. 2 for one clip: distance of every frame to the annotated onset (top)
    and to the annotated offset (bottom), with the annotated (dashed) and reselected (solid)
    keyframes and the candidate windows (shaded), against the dataset's frame numbers (those of
    the annotation file), with the time from the clip's first frame (ms) on top.

    ``curve``: ``clip_id``, ``dataset``, ``fps``, ``frame_numbers`` (int [T], the dataset frame
    number of each clip frame), ``to_onset``, ``to_offset`` (float arrays [T]),
    ``annotated``/``reselected`` (clip-relative index triples), ``windows`` (6 clip-relative
    indices: onset lo/hi, apex lo/hi, offset lo/hi), ``distance``."""
    fig = Figure(figsize=(10, 6.2))
    axes = fig.subplots(2, 1, sharex=True)
    numbers = np.asarray(curve["frame_numbers"], dtype=np.int64)
    fps = float(curve["fps"])
    first = int(numbers[0])
    win = [int(numbers[min(max(i, 0), len(numbers) - 1)]) for i in curve["windows"]]
    ann = [int(numbers[i]) for i in curve["annotated"]]
    res = [int(numbers[i]) for i in curve["reselected"]]
    for ax, name, values in (
        (axes[0], "annotated onset", curve["to_onset"]),
        (axes[1], "annotated offset", curve["to_offset"]),
    ):
        ax.plot(numbers, values, color="black", lw=1.4, marker=".", ms=3, label=f"distance to the {name}")
        for j, k in enumerate(KEYFRAMES):
            lo, hi = win[2 * j], win[2 * j + 1]
            ax.axvspan(lo - 0.5, hi + 0.5, color=COLOURS[k], alpha=0.08)
            a, r = ann[j], res[j]
            ax.axvline(a, color=COLOURS[k], ls="--", lw=1.3, label=f"annotated {k} (frame {a})")
            ax.axvline(
                r,
                color=COLOURS[k],
                ls="-",
                lw=1.3,
                alpha=0.8,
                label=f"reselected {k} (frame {r}{', moved ' + format(r - a, '+d') if r != a else ''})",
            )
        ax.set_ylabel(f"{curve['distance']} distance\n(grey levels)")
        ax.set_title(f"Frame difference to the {name} (frame {ann[0 if 'onset' in name else 2]})", fontsize=10)
    _legend_outside(axes[0], "right", fontsize=8, framealpha=0.9)
    axes[1].set_xlabel(f"dataset frame number (frames {first}–{int(numbers[-1])}); shaded: candidate windows")
    axes[1].xaxis.get_major_locator().set_params(integer=True)
    top = axes[0].secondary_xaxis(
        "top", functions=(lambda n: (n - first) * 1000.0 / fps, lambda ms: ms * fps / 1000.0 + first)
    )
    top.set_xlabel(f"time from the clip's first frame (ms, {fps:g} fps)")
    fig.suptitle(
        f"{curve['dataset']} {curve['clip_id']}: frame-difference curves (paper Fig. 2)\n{subtitle}", fontsize=11
    )
    fig.tight_layout()
    return _save(fig, path)
