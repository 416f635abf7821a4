"""Printed table and plots of the keyframe-recovery benchmark's rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BASELINE_STYLES = {  # colour, line style of the horizontal reference lines
    "annotation": ("black", "--"),
    "midpoint": ("tab:gray", ":"),
    "frame_difference": ("tab:brown", ":"),
    "frequency": ("tab:pink", ":"),
    "optical_flow": ("tab:olive", ":"),
}
WINDOW_COLOURS = {"paper": "tab:blue", "released": "tab:orange", "symmetric": "tab:green"}
DISTANCE_STYLES = {"l2": ("-", "o"), "centered": ("--", "s"), "released_uint8": (":", "^")}


def _index(rows: list[dict[str, Any]], metric: str, fps: str = "all") -> dict[tuple, float]:
    """``(bias, flicker, method, window, distance, lam, keyframe) -> metric`` for ``fps``."""
    out = {}
    for r in rows:
        if str(r["fps"]) != fps:
            continue
        lam = "" if r["lam"] == "" else float(r["lam"])
        out[(r["bias"], float(r["flicker_gl"]), r["method"], r["window"], r["distance"], lam, r["keyframe"])] = \
            float(r[metric])
    return out


def format_table(rows: list[dict[str, Any]], config, *, metric: str = "mean_abs_ms") -> str:
    """One text table per keyframe: rows are methods, columns bias model x flicker level,
    cells ``metric`` over all clips (default: mean |error| in ms)."""
    idx = _index(rows, metric)
    columns = [(b, float(f)) for f in config.flicker_gl for b in config.biases]
    heads = [f"{b[:8]}/fl{f:g}" for b, f in columns]
    width = max(10, *(len(h) for h in heads))
    out = []
    for keyframe in ("onset", "apex", "offset"):
        methods = [("annotation", "", "", "")]
        methods += [("gamdss", w, d, float(lam)) for lam in config.table_lams
                    for w in config.windows for d in config.distances]
        if keyframe == "apex":
            methods += [(m, "", "", "") for m in config.spotters]
        labels = [m if m != "gamdss" else f"gamdss {w}/{d} lam={lam:g}" for m, w, d, lam in methods]
        lw = max(len(s) for s in labels)
        out.append(f"{keyframe}: {metric.replace('_', ' ')} to the true {keyframe} "
                   f"(columns: bias model / flicker grey levels)")
        out.append(f"{'method':<{lw}}  " + "  ".join(f"{h:>{width}}" for h in heads))
        out.append("-" * (lw + 2 + (width + 2) * len(heads) - 2))
        for label, (m, w, d, lam) in zip(labels, methods):
            cells = []
            for b, f in columns:
                value = idx.get((b, f, m, w, d, lam, keyframe))
                cells.append(f"{value:>{width}.1f}" if value is not None else f"{'-':>{width}}")
            out.append(f"{label:<{lw}}  " + "  ".join(cells))
        out.append("")
    return "\n".join(out)


def plot_error_vs_lambda(rows: list[dict[str, Any]], config, path: str | Path, keyframe: str, *,
                         metric: str = "mean_abs_ms") -> Path:
    """A grid (rows: flicker levels, columns: bias models) of ``metric`` versus ``lam`` for
    every window x distance, with horizontal lines for the annotation and (apex) the
    spotting baselines. Written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gamdss import atomic

    idx = _index(rows, metric)
    n_r, n_c = len(config.flicker_gl), len(config.biases)
    fig, axes = plt.subplots(n_r, n_c, figsize=(3.6 * n_c + 0.6, 3.0 * n_r + 1.6), squeeze=False, sharex=True)
    lams = sorted(config.lams)
    refs = ["annotation"] + (list(config.spotters) if keyframe == "apex" else [])
    for i, flicker in enumerate(config.flicker_gl):
        for j, bias in enumerate(config.biases):
            ax = axes[i][j]
            for w in config.windows:
                for d in config.distances:
                    ys = [idx.get((bias, float(flicker), "gamdss", w, d, float(lam), keyframe)) for lam in lams]
                    style, marker = DISTANCE_STYLES.get(d, ("-", "o"))
                    ax.plot(lams, ys, color=WINDOW_COLOURS.get(w), linestyle=style, marker=marker, markersize=3.5,
                            linewidth=1.3, label=f"GAMDSS {w} / {d}")
            for m in refs:
                value = idx.get((bias, float(flicker), m, "", "", "", keyframe))
                if value is not None:
                    colour, style = BASELINE_STYLES.get(m, ("gray", ":"))
                    ax.axhline(value, color=colour, linestyle=style, linewidth=2.0 if m == "annotation" else 1.6,
                               label=m.replace("_", " ") + (" (biased)" if m == "annotation" else " (baseline)"))
            ax.set_title(f"bias {bias}, flicker {flicker:g} gl", fontsize=10)
            ax.grid(alpha=0.3)
            ax.set_ylim(bottom=0)
            if i == n_r - 1:
                ax.set_xlabel("lambda (lam_rise = lam_fall)")
            if j == 0:
                ax.set_ylabel(f"{keyframe}: {metric.replace('_', ' ')}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"{keyframe}: error to the true {keyframe} versus lambda ({config.clips} generated clips, "
                 f"fps {', '.join(f'{f:g}' for f in config.fps)}; coinciding lines hide each other)", fontsize=11)
    legend_rows = (len(handles) + 3) // 4
    fig.tight_layout(rect=(0, 0.035 * legend_rows / max(n_r, 1) * 2, 1, 0.96))
    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
