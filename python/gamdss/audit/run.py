"""``audit_cache`` / ``audit_caches``: how far GAMDSS reselection moves a dataset's
annotated keyframes, as a report with plots and the CSV numbers behind them."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gamdss.audit import plots, report, tables
from gamdss.data.cache import FrameCache, clip_file_name
from gamdss.data.reselection_files import check_against_cache, load_reselection, recorded_settings, save_reselection
from gamdss.data.reselection_record import ClipReselection
from gamdss.op.api import frame_distance_curves
from gamdss.op.windows import preset_windows
from gamdss.reselection.noise_aware import apex_window_frames
from gamdss.reselection.run import reselect_cache
from gamdss.settings import yaml_io
from gamdss.settings.reselection import KEYFRAMES, ReselectionSettings, preset
from gamdss.util import atomic
from gamdss.util.csv_rows import rows_to_csv

FORMATS = ("markdown", "html")


@dataclass
class AuditSettings:
    """What an audit used (saved as ``settings.yaml`` in its folder with
    :mod:`gamdss.settings.yaml_io`; ``yaml_io.load(AuditSettings, path)`` reads it back).
    ``created``: when the audit ran (ISO 8601, local time)."""

    reselection: ReselectionSettings = field(default_factory=lambda: preset("recommended"))
    caches: list[str] = field(default_factory=list)
    reselection_csv: list[str] | None = None
    curves_for: list[str] | None = None
    group_by: list[str] | None = None
    fmt: str = "markdown"
    created: str = ""


@dataclass
class AuditReport:
    """Paths an audit wrote (relative to ``out``), its per-clip rows and summary rows."""

    out: Path
    report: Path
    files: list[str]
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]


def _open(cache: FrameCache | str | Path) -> FrameCache:
    return cache if isinstance(cache, FrameCache) else FrameCache(cache)


def _choose_curves(rows: Sequence[dict[str, Any]], how_many: int = 3) -> list[tuple[str, str]]:
    """(cache, clip id) of the clips that moved most (largest Eq. 17 mean, ms) plus the first
    that did not move at all."""
    moved = sorted((r for r in rows if r["mean_abs_ms"] > 0), key=lambda r: -r["mean_abs_ms"])
    chosen = [(r["cache"], r["clip_id"]) for r in moved[:how_many]]
    still = [r for r in rows if r["mean_abs_ms"] == 0]
    if still:
        chosen.append((still[0]["cache"], still[0]["clip_id"]))
    return chosen


def _curve(cache: FrameCache, result: ClipReselection, settings: ReselectionSettings) -> dict[str, Any]:
    entry = cache[result.clip_id]
    clip = torch.from_numpy(np.array(cache.frames(entry)))
    # The wrapped uint8 difference of the released code is not a distance to plot.
    distance = "l2" if settings.distance == "released_uint8" else settings.distance
    o, a, f = result.annotated
    curves = frame_distance_curves([clip, clip], [o, f], distance=distance)
    ann = torch.tensor([result.annotated], dtype=torch.int64)
    if settings.method == "noise_aware":  # the apex window; onset and offset are not searched
        w = apex_window_frames(entry.fps, settings)
        win = torch.tensor([[o, o, max(o, a - w), min(f, a + w), f, f]])
    else:
        win = preset_windows(
            settings.window,
            ann[:, 0],
            ann[:, 1],
            ann[:, 2],
            torch.tensor([entry.num_frames]),
            settings.lam_rise,
            settings.lam_fall,
        )
    return {
        "clip_id": entry.clip_id,
        "dataset": entry.dataset,
        "fps": entry.fps,
        "frame_numbers": list(entry.frame_numbers),
        "to_onset": curves[0].tolist(),
        "to_offset": curves[1].tolist(),
        "annotated": list(result.annotated),
        "reselected": list(result.reselected),
        "windows": win[0].tolist(),
        "distance": distance,
    }


def _curve_rows(curve: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, (fn, d_on, d_off) in enumerate(zip(curve["frame_numbers"], curve["to_onset"], curve["to_offset"])):
        marks = [
            f"{kind} {k}" for kind in ("annotated", "reselected") for k, idx in zip(KEYFRAMES, curve[kind]) if idx == i
        ]
        out.append(
            {
                "index": i,
                "frame_number": fn,
                "time_ms": i * 1000.0 / curve["fps"],
                "distance_to_annotated_onset": d_on,
                "distance_to_annotated_offset": d_off,
                "keyframes": "; ".join(marks),
            }
        )
    return out


def audit_cache(cache: FrameCache | str | Path, out: str | Path, **kwargs) -> AuditReport:
    """Audit one cache: see :func:`audit_caches` (``reselection_csv`` may be one path)."""
    csv = kwargs.pop("reselection_csv", None)
    return audit_caches([cache], out, reselection_csv=None if csv is None else [csv], **kwargs)


def audit_caches(
    caches: Sequence[FrameCache | str | Path],
    out: str | Path,
    *,
    settings: ReselectionSettings | None = None,
    reselection_csv: Sequence[str | Path] | None = None,
    curves_for: Sequence[str] | None = None,
    group_by: Sequence[str] | None = None,
    fmt: str = "markdown",
    overwrite: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> AuditReport:
    """Write an annotation audit of one or more frame caches into ``out``.

    Keyframes are reselected with ``settings`` (default: the ``recommended`` preset), or read
    from ``reselection_csv`` (one
    ``reselection.csv`` of ``gamdss reselect`` per cache, whose recorded settings then
    apply). The folder gets ``displacements.csv`` (per clip), ``summary.csv`` (mean, median
    and p90 |displacement| per keyframe in frames and ms, for all clips and per group),
    displacement histograms in frames and ms, offset versus apex uncertainty, one
    side-by-side comparison per ``group_by`` key (default: ``dataset`` and the subject-group
    metadata such as ``ethnicity`` or ``gender`` with 2-12 groups), Fig.-2 frame-difference curves under ``curves/``
    for ``curves_for`` (clip ids; default: the three clips that moved most and one that did
    not), each PNG with its CSV, ``settings.yaml`` and ``report.md`` or ``report.html``.

    Refuses to write into a folder that already holds files unless ``overwrite``.
    """
    # Every argument is checked (and the reselection files read) before anything is written,
    # so that a mistake leaves no partial report behind to block the corrected rerun.
    caches, out = _check_arguments(caches, out, fmt, curves_for, reselection_csv, overwrite)
    names = _cache_names(caches)
    settings = preset("recommended") if settings is None else settings
    loaded = _read_reselection_files(caches, reselection_csv)
    _check_curves_for(curves_for, caches, loaded)
    name = "report.md" if fmt == "markdown" else "report.html"
    # Written as one set (atomic.output_set): a run stopped by an error or Ctrl-C leaves
    # nothing in `out`, so the same command runs again; the report comes last.
    with atomic.output_set(out, last=[name]) as staging:
        writer = _Writer(staging)
        per_cache = _reselections(caches, names, settings, reselection_csv, loaded, writer, device, progress)
        settings = per_cache[0][2]

        rows = [
            row
            for (cache, results, s), name in zip(per_cache, names)
            for row in tables.displacement_rows(cache, results, s, name)
        ]
        if not rows:
            raise ValueError("nothing to audit: the caches (or reselection files) hold no clips")
        keys = list(group_by) if group_by is not None else tables.default_group_keys(rows)
        summary = tables.summary_rows(rows, keys, settings.move_z)
        writer.subtitle = (
            f"{len(rows)} clips of {', '.join(sorted({r['dataset'] for r in rows}))}; {settings.describe()}"
        )
        writer.csv("displacements.csv", rows)
        writer.csv("summary.csv", summary)
        wanted = _curve_targets(rows, curves_for)
        sections = [
            _summary_section(rows, summary, settings, names, len(caches)),
            _histogram_section(rows, writer),
            _apex_offset_section(rows, summary, settings, writer),
            _group_section(rows, summary, keys, writer),
            _curve_section(wanted, per_cache, names, writer),
        ]
        audit = AuditSettings(
            settings,
            [str(c.root) for c in caches],
            None if reselection_csv is None else [str(p) for p in reselection_csv],
            [c for _, c in wanted],
            keys,
            fmt,
            datetime.datetime.now().isoformat(timespec="seconds"),
        )
        yaml_io.save(audit, staging / "settings.yaml", overwrite=True)
        writer.files.append("settings.yaml")
        sections.append(_settings_section(settings, caches, reselection_csv, writer.files))
        atomic.write_text(
            staging / name,
            report.render(sections, "Annotation audit: GAMDSS keyframe reselection", fmt, base=staging),
        )
        writer.files.append(name)
    return AuditReport(out, out / name, writer.files, rows, summary)


class _Writer:
    """Writes an audit's CSV and PNG files into ``out`` and lists them (relative paths) in
    ``files``; PNGs carry ``subtitle``."""

    def __init__(self, out: Path):
        self.out = out
        self.files: list[str] = []
        self.subtitle = ""

    def csv(self, name: str, data: Sequence[dict[str, Any]]) -> str:
        atomic.write_text(self.out / name, rows_to_csv(data))
        self.files.append(name)
        return name

    def png(self, name: str, draw: Callable[..., Any], *args: Any) -> str:
        draw(*args, self.out / name, self.subtitle)
        self.files.append(name)
        return name


def _check_arguments(
    caches: Sequence[FrameCache | str | Path],
    out: str | Path,
    fmt: str,
    curves_for: Sequence[str] | None,
    reselection_csv: Sequence[str | Path] | None,
    overwrite: bool,
) -> tuple[list[FrameCache], Path]:
    """The opened caches and the report folder, after the checks that need no reselection."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {FORMATS}")
    if isinstance(curves_for, str):
        raise TypeError("curves_for must be a sequence of clip ids, not one string")
    opened = [_open(c) for c in caches]
    if not opened:
        raise ValueError("audit_caches needs at least one cache")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"the report folder {out} is a file; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already holds files; pass overwrite=True (--overwrite) or choose another --out")
    if reselection_csv is not None and len(reselection_csv) != len(opened):
        raise ValueError(
            f"reselection_csv gives {len(reselection_csv)} files for {len(opened)} caches; "
            f"give one per cache, in the same order"
        )
    if reselection_csv is None and not any(len(cache) for cache in opened):
        raise ValueError("nothing to audit: the caches hold no clips")
    return opened, out


def _read_reselection_files(
    caches: Sequence[FrameCache], reselection_csv: Sequence[str | Path] | None
) -> list[list[ClipReselection]] | None:
    """The results of each ``reselection_csv`` file (checked against its cache), or None."""
    if reselection_csv is None:
        return None
    loaded = []
    for cache, path in zip(caches, map(Path, reselection_csv)):
        if not path.is_file():
            raise FileNotFoundError(f"reselection file {path} does not exist")
        results = load_reselection(path)
        check_against_cache(results, cache, str(path))
        loaded.append(results)
    return loaded


def _check_curves_for(
    curves_for: Sequence[str] | None, caches: Sequence[FrameCache], loaded: list[list[ClipReselection]] | None
) -> None:
    if curves_for is None:
        return
    known = (
        {r.clip_id for results in loaded for r in results}
        if loaded is not None
        else {e.clip_id for cache in caches for e in cache.entries}
    )
    unknown = [c for c in curves_for if c not in known]
    if unknown:
        raise KeyError(
            f"curves_for: clip {unknown[0]!r} is not among the audited clips"
            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
        )


def _reselections(
    caches: Sequence[FrameCache],
    names: Sequence[str],
    settings: ReselectionSettings,
    reselection_csv: Sequence[str | Path] | None,
    loaded: list[list[ClipReselection]] | None,
    writer: _Writer,
    device: str,
    progress: bool,
) -> list[tuple[FrameCache, list[ClipReselection], ReselectionSettings]]:
    """(cache, results, settings) per cache: read from the files (with their recorded
    settings), or reselected now with ``settings`` and written as ``reselection.csv``
    (``reselection_<cache name>.csv`` for several caches). All must share one setting."""
    per_cache = []
    for i, cache in enumerate(caches):
        if loaded is None or reselection_csv is None:
            results = reselect_cache(cache, settings, device=device, progress=progress)
            name = "reselection.csv" if len(caches) == 1 else f"reselection_{names[i]}.csv"
            save_reselection(results, writer.out / name, cache=cache, settings=settings, overwrite=True)
            writer.files.append(name)
            per_cache.append((cache, results, settings))
        else:
            used = recorded_settings(reselection_csv[i])
            if used is None:  # labelling it with the CLI's settings would describe another method
                raise ValueError(
                    f"{reselection_csv[i]} records no reselection settings (no settings.yaml beside it, no "
                    "settings columns); write it with `gamdss reselect` or save_reselection(..., settings=...)"
                )
            per_cache.append((cache, loaded[i], used))
    used_all = {s for _, _, s in per_cache}
    if len(used_all) > 1:
        raise ValueError(f"the reselection files were made with different settings: {sorted(map(str, used_all))}")
    return per_cache


def _summary_section(
    rows: Sequence[dict[str, Any]],
    summary: Sequence[dict[str, Any]],
    settings: ReselectionSettings,
    names: Sequence[str],
    num_caches: int,
) -> dict[str, Any]:
    return {
        "heading": "Summary",
        "text": [
            f"GAMDSS reselection of {len(rows)} clips from {num_caches} cache(s) ({', '.join(names)}). "
            f"A displacement is the reselected minus the annotated keyframe: in frames, in milliseconds "
            f"(frames × 1000 / fps, the paper's Eq. 16) and as |frames| in percent of the cached clip length "
            f"(Eq. 15, in displacements.csv). The last column is Eq. 17, the mean |displacement| over onset, apex "
            f"and offset. Settings: {settings.describe()}. " + _method_note(settings)
        ],
        "table": report.summary_table(summary),
        "links": [("summary.csv", "summary.csv"), ("displacements.csv (one row per clip)", "displacements.csv")],
    }


def _histogram_section(rows: Sequence[dict[str, Any]], writer: _Writer) -> dict[str, Any]:
    hist_f = tables.histogram_frames(rows)
    hist_ms = tables.histogram_ms(rows)
    return {
        "heading": "Displacement histograms",
        "text": [
            "Clips per displacement of each keyframe; 0 means the annotation was kept. The millisecond bins are "
            "one frame of the fastest recording wide."
        ],
        "images": [
            writer.png("hist_frames.png", plots.histograms, hist_f, "frames"),
            writer.png("hist_ms.png", plots.histograms, hist_ms, "ms"),
        ],
        "links": [
            ("hist_frames.csv", writer.csv("hist_frames.csv", hist_f)),
            ("hist_ms.csv", writer.csv("hist_ms.csv", hist_ms)),
        ],
    }


def _apex_offset_section(
    rows: Sequence[dict[str, Any]], summary: Sequence[dict[str, Any]], settings: ReselectionSettings, writer: _Writer
) -> dict[str, Any]:
    joint = tables.apex_offset_rows(rows)
    return {
        "heading": "Offset versus apex uncertainty",
        "text": [
            "The paper reports that offset annotations are more uncertain than apex annotations, especially in "
            "multicultural datasets. Left: each clip's |offset displacement| against its |apex displacement|; points "
            "above the diagonal are clips whose offset moved more. Right: the distributions per keyframe. "
            + _apex_offset_note(settings, summary)
        ],
        "images": [writer.png("apex_vs_offset.png", plots.apex_vs_offset, rows)],
        "links": [("apex_vs_offset.csv", writer.csv("apex_vs_offset.csv", joint))],
    }


def _group_section(
    rows: Sequence[dict[str, Any]], summary: Sequence[dict[str, Any]], keys: Sequence[str], writer: _Writer
) -> dict[str, Any]:
    group_images, group_links = [], []
    for key in keys:
        groups = sorted({tables.group_value(r, key) for r in rows})
        safe = re.sub(r"[^A-Za-z0-9_-]+", "_", key) or "group"
        group_images.append(writer.png(f"groups_{safe}.png", plots.groups_side_by_side, rows, key, groups))
        group_links.append((f"groups_{safe}.csv", writer.csv(f"groups_{safe}.csv", tables.group_rows(rows, key))))
    return {
        "heading": "By dataset and subject group",
        "text": [
            f"|Displacement| in ms per keyframe with the groups side by side, for: {', '.join(keys) or 'none'}. "
            "The paper's claim is that multicultural datasets (SAMM, 4DME) move more than single-culture ones "
            "(CASME II, CAS(ME)^3). A group of one clip, or of clips with no such metadata ('unknown'), says little.",
            report.single_group_note(summary),
        ],
        "images": group_images,
        "links": group_links,
    }


def _curve_section(
    wanted: Sequence[tuple[str, str]],
    per_cache: Sequence[tuple[FrameCache, list[ClipReselection], ReselectionSettings]],
    names: Sequence[str],
    writer: _Writer,
) -> dict[str, Any]:
    curve_images, curve_links = [], []
    lookup = {(name, r.clip_id): (cache, r, s) for (cache, results, s), name in zip(per_cache, names) for r in results}
    for cache_name, clip_id in wanted:
        cache, result, s = lookup[(cache_name, clip_id)]
        curve = _curve(cache, result, s)
        stem = "curves/" + clip_file_name(f"{cache_name}/{clip_id}" if len(per_cache) > 1 else clip_id)[:-4]
        curve_images.append(writer.png(f"{stem}.png", plots.distance_curves, curve))
        curve_links.append((f"{clip_id} numbers", writer.csv(f"{stem}.csv", _curve_rows(curve))))
    return {
        "heading": "Frame-difference curves (paper Fig. 2)",
        "text": [
            "Distance of every frame to the annotated onset (top: the rise, whose peak is the apex) and to the "
            "annotated offset (bottom: the fall). Dashed lines: annotated keyframes; solid: reselected; shaded: the "
            "candidate windows. A reselected apex at the curve's peak where the annotated one is not is an apex "
            "annotation error the reselection fixed; a peak outside the window was out of reach."
        ],
        "images": curve_images,
        "links": curve_links,
    }


def _settings_section(
    settings: ReselectionSettings,
    caches: Sequence[FrameCache],
    reselection_csv: Sequence[str | Path] | None,
    files: Sequence[str],
) -> dict[str, Any]:
    source = (
        "computed by this audit" if reselection_csv is None else "read from " + ", ".join(map(str, reselection_csv))
    )
    return {
        "heading": "Settings and files",
        "text": [f"{settings.describe()}; caches: {', '.join(str(c.root) for c in caches)}; reselection {source}."],
        "links": [(f, f) for f in files],
    }


def _method_note(settings: ReselectionSettings) -> str:
    """What a displacement means under ``settings``' method, for the report's summary."""
    if settings.method == "noise_aware":
        offset = (
            f"an offset moved only later, where it was still inside the expression by more than "
            f"{settings.offset_z:g} sds"
            if settings.move_offset
            else "offsets are kept"
        )
        return (
            f"Every move is a confident one: an apex moved only where its evidence exceeded the clip's own "
            f"noise floor by more than {settings.move_z:g} sds, {offset} (confidence_<keyframe> in "
            f"displacements.csv; <keyframe>_confident_moves in summary.csv). The onset is kept as annotated "
            f"(not assessed), so its displacement is 0 by construction, not a sign of accurate annotation; "
            f"an offset marked too late is never moved either."
        )
    onset_dir = "later" if settings.window in ("paper", "released") else "either way"
    return (
        f"With window={settings.window!r} the onset can only move {onset_dir}, and each keyframe at most its "
        f"search range R = int(λ × span) (rise_range, fall_range in displacements.csv): larger spans allow "
        f"larger moves, so compare groups at equal λ. These moves are NOT tested against noise: on generated "
        f"clips with known keyframes the max-distance rule also moves accurate annotations (README, keyframe "
        f"benchmark), so part of every displacement here is noise."
    )


def _apex_offset_note(settings: ReselectionSettings, summary: Sequence[dict[str, Any]]) -> str:
    if settings.method == "noise_aware":
        total = summary[0] if summary else {}
        return (
            f"With the noise-aware method this comparison uses confident moves only "
            f"({total.get('apex_confident_moves', 0)} apexes and {total.get('offset_confident_moves', 0)} offsets "
            f"of {total.get('clips', 0)} clips moved). Offsets move only later and only when clearly too early; "
            f"an offset marked too late cannot be seen in the frames, so the offset side understates how loose "
            f"offsets are: judge that from the annotation file itself (durations), not from these plots."
        )
    return (
        "These displacements come from the max-distance rule, which also moves keyframes by noise: a "
        "difference between groups can be an artifact of the method; rerun with the recommended preset to "
        "see how many moves are confident."
    )


def _cache_names(caches: Sequence[FrameCache]) -> list[str]:
    """Short unique names: the folder name, or with its parent when folder names repeat."""
    names = [c.root.resolve().name for c in caches]
    if len(set(names)) < len(names):
        names = [f"{c.root.resolve().parent.name}_{c.root.resolve().name}" for c in caches]
    if len(set(names)) < len(names):
        names = [f"{i}_{n}" for i, n in enumerate(names)]
    return names


def _curve_targets(rows: Sequence[dict[str, Any]], curves_for: Sequence[str] | None) -> list[tuple[str, str]]:
    if curves_for is None:
        return _choose_curves(rows)
    if isinstance(curves_for, str):
        raise TypeError("curves_for must be a sequence of clip ids, not one string")
    out = []
    for clip_id in curves_for:
        hits = [(r["cache"], r["clip_id"]) for r in rows if r["clip_id"] == clip_id]
        if not hits:
            raise KeyError(f"curves_for: clip {clip_id!r} is not among the audited clips")
        out += hits
    return out
