"""Printed tables and plots of the keyframe-recovery benchmark's rows
(:func:`gamdss.accuracy.keyframes.run_benchmark`).

- :func:`format_table`: per keyframe and bias model, rows = methods, columns = confounders,
  cells mean ``|error|`` over all clips as ``frames (ms)``.
- :func:`format_summary`: the compact (Markdown) table for the README: 200 fps clips,
  confounder ``all``, biases ``typical``, ``multicultural`` and ``none``; annotation, the
  ``recommended`` and ``paper`` presets and the best spotter; mean / median / p90 ``|error|``
  in frames, and for bias ``none`` the share of keyframes left exactly in place.
- :func:`plot_error_vs_lambda`: per keyframe a grid (rows: confounders, columns: biases) of
  mean ``|error|`` (ms) versus ``lam`` of the ``gamdss`` grid, presets and baselines as
  horizontal lines.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt

from gamdss.settings.reselection import KEYFRAMES
from gamdss.util import atomic

#: method-name prefix of the benchmark's rows for a named preset (``preset:recommended``)
PRESET_PREFIX = "preset:"


BASELINE_STYLES = {  # colour, line style, width of the horizontal reference lines
    "annotation": ("black", "--", 2.0),
    "midpoint": ("tab:gray", ":", 1.5),
    "frame_difference": ("tab:brown", ":", 1.5),
    "frequency": ("tab:pink", ":", 1.5),
    "optical_flow": ("tab:olive", ":", 1.5),
    PRESET_PREFIX + "recommended": ("tab:red", "-", 2.4),
    PRESET_PREFIX + "paper": ("navy", "-.", 1.8),
    PRESET_PREFIX + "released": ("darkorange", "-.", 1.8),
}
WINDOW_COLOURS = {"paper": "tab:blue", "released": "tab:orange", "symmetric": "tab:green"}
DISTANCE_STYLES = {"l2": ("-", "o"), "centered": ("--", "s"), "released_uint8": (":", "^")}
#: the summary's conditions (those the config has; see :func:`format_summary`)
SUMMARY_FPS = 200.0
SUMMARY_CONFOUNDER = "all"
SUMMARY_BIASES = ("typical", "multicultural", "none")
SUMMARY_PRESETS = ("recommended", "paper")


def _method_key(method: str, window: Any = "", distance: Any = "", lam: Any = "") -> tuple:
    """A method's identity: ``("gamdss", window, distance, lam)`` for the grid, ``(method,)``
    for every other method (presets included, whatever their window columns say)."""
    if method == "gamdss":
        return (method, window, distance, "" if lam == "" else float(lam))
    return (method,)


def _index(rows: list[dict[str, Any]], fps: str = "all") -> dict[tuple, dict[str, Any]]:
    """``(bias, confounder, method key, keyframe) -> row`` for frame-rate group ``fps``."""
    out = {}
    for r in rows:
        if str(r["fps"]) == fps:
            key = _method_key(r["method"], r["window"], r["distance"], r["lam"])
            out[(r["bias"], r["confounder"], key, r["keyframe"])] = r
    return out


def _value(row: dict[str, Any] | None, metric: str) -> float | None:
    if row is None or row.get(metric, "") == "":
        return None
    value = float(row[metric])
    return None if math.isnan(value) else value


def table_methods(config, keyframe: str) -> list[tuple[str, tuple]]:
    """(label, method key) of the rows of :func:`format_table` for ``keyframe``: annotation,
    presets, the grid at ``table_lams`` (those in ``lams``), spotters (apex only)."""
    methods = [("annotation", ("annotation",))]
    methods += [(PRESET_PREFIX + p, (PRESET_PREFIX + p,)) for p in config.presets]
    lams = [lam for lam in config.table_lams if lam in config.lams]
    methods += [
        (f"gamdss {w}/{d} lam={lam:g}", _method_key("gamdss", w, d, lam))
        for lam in lams
        for w in config.windows
        for d in config.distances
    ]
    if keyframe == "apex":
        methods += [(m, (m,)) for m in config.spotters]
    return methods


def format_table(rows: list[dict[str, Any]], config) -> str:
    """Per keyframe and bias model a text table: rows are methods, columns confounders, cells
    mean ``|error|`` to the true keyframe over all clips (all frame rates) as ``frames (ms)``."""
    idx = _index(rows)
    width = max(13, *(len(c) for c in config.confounders))
    out = []
    for keyframe in KEYFRAMES:
        methods = table_methods(config, keyframe)
        lw = max(len("method"), *(len(label) for label, _ in methods))
        for bias in config.biases:
            out.append(
                f"{keyframe}, bias {bias}: mean |error| to the true {keyframe}, frames (ms), "
                f"{config.clips} clips at all frame rates; columns: confounders"
            )
            out.append(f"{'method':<{lw}}  " + "  ".join(f"{c:>{width}}" for c in config.confounders))
            out.append("-" * (lw + (width + 2) * len(config.confounders)))
            for label, key in methods:
                cells = []
                for confounder in config.confounders:
                    row = idx.get((bias, confounder, key, keyframe))
                    frames, ms = _value(row, "mean_abs_frames"), _value(row, "mean_abs_ms")
                    text = "-" if frames is None else f"{frames:.2f} ({ms:.1f})"
                    cells.append(f"{text:>{width}}")
                out.append(f"{label:<{lw}}  " + "  ".join(cells))
            out.append("")
    return "\n".join(out).rstrip("\n")


def _stats_cell(row: dict[str, Any] | None) -> str:
    mean, median, p90 = (_value(row, m) for m in ("mean_abs_frames", "median_abs_frames", "p90_abs_frames"))
    return "-" if mean is None else f"{mean:.2f} / {median:g} / {p90:.1f}"


def _kept_cell(row: dict[str, Any] | None) -> str:
    moved = _value(row, "moved_rate")
    return "-" if moved is None else f"{100 * (1 - moved):.0f}%"


def format_summary(rows: list[dict[str, Any]], config) -> str:
    """The compact Markdown table for the README.

    Conditions: clips at 200 fps (all clips when the config has no 200 fps), confounder
    ``all`` (else the config's last), biases ``typical``, ``multicultural``, ``none`` (those
    the config has; else all of its biases). Methods: annotation, ``preset:recommended``,
    ``preset:paper`` (those run) and per bias the spotter with the least mean apex error
    (apex only). Cells: ``|error|`` in frames, mean / median / p90; for bias ``none``
    (annotation = truth) the share of keyframes each method left exactly in place.
    """
    fps = f"{SUMMARY_FPS:g}" if SUMMARY_FPS in config.fps else "all"
    confounder = SUMMARY_CONFOUNDER if SUMMARY_CONFOUNDER in config.confounders else config.confounders[-1]
    biases = [b for b in SUMMARY_BIASES if b in config.biases] or list(config.biases)
    idx = _index(rows, fps)
    n = next((int(r["n"]) for r in rows if str(r["fps"]) == fps and r["confounder"] == confounder), 0)
    where = f"{fps} fps" if fps != "all" else "all frame rates"
    out = [
        f"Summary: {n} generated clips at {where}, confounder {confounder}. |error| to the true keyframe in "
        "frames: mean / median / p90. 'kept': share of keyframes left exactly in place, for bias none "
        "(annotation = truth), onset / apex / offset. Spotters change the apex only.",
        "",
        "| bias | method | onset | apex | offset | kept |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for bias in biases:
        methods = [("annotation", ("annotation",))]
        methods += [(PRESET_PREFIX + p, (PRESET_PREFIX + p,)) for p in SUMMARY_PRESETS if p in config.presets]
        spotted = [(m, _value(idx.get((bias, confounder, (m,), "apex")), "mean_abs_frames")) for m in config.spotters]
        spotted = [(m, v) for m, v in spotted if v is not None]
        if spotted:
            best = min(spotted, key=lambda mv: mv[1])[0]
            methods.append((f"best spotter ({best})", (best,)))
        for label, key in methods:
            cells = [_stats_cell(idx.get((bias, confounder, key, k))) for k in KEYFRAMES]
            kept = (
                " / ".join(_kept_cell(idx.get((bias, confounder, key, k))) for k in KEYFRAMES) if bias == "none" else ""
            )
            out.append(f"| {bias} | {label} | " + " | ".join(cells) + f" | {kept} |")
    return "\n".join(out)


def plot_error_vs_lambda(
    rows: list[dict[str, Any]], config, path: str | Path, keyframe: str, *, metric: str = "mean_abs_ms"
) -> Path:
    """A grid (rows: confounders, columns: bias models) of ``metric`` (over all clips) versus
    ``lam`` for every window x distance of the ``gamdss`` grid, with horizontal lines for the
    annotation, each preset and (apex) the spotting baselines. Written atomically as PNG."""
    matplotlib.use("Agg")

    idx = _index(rows)
    n_r, n_c = len(config.confounders), len(config.biases)
    fig, axes = plt.subplots(n_r, n_c, figsize=(3.3 * n_c + 0.6, 2.5 * n_r + 1.8), squeeze=False, sharex=True)
    lams = sorted(config.lams)
    refs = ["annotation"] + [PRESET_PREFIX + p for p in config.presets]
    refs += list(config.spotters) if keyframe == "apex" else []
    for i, confounder in enumerate(config.confounders):
        for j, bias in enumerate(config.biases):
            ax = axes[i][j]
            for w in config.windows:
                for d in config.distances:
                    if not lams:
                        continue
                    ys = [
                        _value(idx.get((bias, confounder, _method_key("gamdss", w, d, lam), keyframe)), metric)
                        for lam in lams
                    ]
                    ys = [float("nan") if y is None else y for y in ys]
                    style, marker = DISTANCE_STYLES.get(d, ("-", "o"))
                    ax.plot(
                        lams,
                        ys,
                        color=WINDOW_COLOURS.get(w),
                        linestyle=style,
                        marker=marker,
                        markersize=3.5,
                        linewidth=1.2,
                        label=f"GAMDSS {w} / {d}",
                    )
            for m in refs:
                value = _value(idx.get((bias, confounder, (m,), keyframe)), metric)
                if value is not None:
                    colour, style, lw = BASELINE_STYLES.get(m, ("gray", ":", 1.5))
                    kind = "biased" if m == "annotation" else "preset" if m.startswith(PRESET_PREFIX) else "baseline"
                    ax.axhline(
                        value, color=colour, linestyle=style, linewidth=lw, label=f"{m.replace('_', ' ')} ({kind})"
                    )
            if lams:
                ax.set_xticks(lams)
            ax.set_title(f"{bias} / {confounder}", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.set_ylim(bottom=0)
            if i == n_r - 1:
                ax.set_xlabel("lambda (lam_rise = lam_fall)", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{confounder}\n{metric.replace('_', ' ')}", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    ncol = 4
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.suptitle(
        f"{keyframe}: error to the true {keyframe} versus lambda (rows: confounders, columns: bias "
        f"models; {config.clips} generated clips, fps {', '.join(f'{f:g}' for f in config.fps)})",
        fontsize=10,
    )
    legend_in = 0.2 * ((len(handles) + ncol - 1) // ncol) + 0.2
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, legend_in / height, 1, 1 - 0.45 / height))
    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
