"""Keyframe-recovery benchmark: how far annotated, reselected and spotted keyframes lie from
the true ones, on generated micro-expressions (:mod:`gamdss.data.synthetic`).

For every bias model (how a human coder errs) and every illumination-flicker level, the same
generated clips are annotated by the bias model, and then compared with the truth:

- ``annotation``: the biased annotation itself;
- ``gamdss``: :func:`gamdss.reselect` from the annotation, for every window preset, distance
  and ``lam`` (``lam_rise = lam_fall``), one batched call per combination;
- the apex-spotting baselines of :mod:`gamdss.spotting` (apex only; they take the annotated
  onset and offset, so their onset and offset are the annotation's).

Errors are in frames and milliseconds (mean, median and 90th percentile of ``|error|``, mean
signed error, share of exact hits), per keyframe, over all clips and per frame rate.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from gamdss.yaml_dataclass import YamlDataclass

from .metrics import METRICS, error_stats

KEYFRAMES = ("onset", "apex", "offset")
CONDITION_COLUMNS = ("bias", "flicker_gl", "method", "window", "distance", "lam", "keyframe", "fps")
COLUMNS = CONDITION_COLUMNS + METRICS


@dataclass(frozen=True)
class KeyframeBenchConfig(YamlDataclass):
    """What the benchmark runs.

    Attributes:
        clips: generated clips per condition, spread evenly over ``fps`` (clip ``i`` has
            ``fps[i % len(fps)]``); the same clips serve every bias model.
        fps: frame rates of the clips.
        size: frame height and width, px.
        biases: bias-model presets of :mod:`gamdss.data.synthetic.bias`.
        flicker_gl: illumination flicker amplitudes, grey levels (0: none).
        windows, distances, lams: reselection settings (``lam_rise = lam_fall = lam``).
        spotters: apex-spotting baselines (:data:`gamdss.spotting.SPOTTERS`).
        noise_sd, jpeg_quality, head_motion_px: camera settings of the generator.
        table_lams: the ``lam`` values shown in the printed table.
        seed: everything (clips, annotations) is deterministic from it.
    """

    clips: int = 48
    fps: tuple[float, ...] = (30.0, 60.0, 90.0, 200.0)
    size: int = 96
    biases: tuple[str, ...] = ("none", "careful", "typical", "multicultural")
    flicker_gl: tuple[float, ...] = (0.0, 2.0)
    windows: tuple[str, ...] = ("paper", "released", "symmetric")
    distances: tuple[str, ...] = ("l2", "centered", "released_uint8")
    lams: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
    spotters: tuple[str, ...] = ("midpoint", "frame_difference", "frequency", "optical_flow")
    noise_sd: float = 1.0
    jpeg_quality: int | None = 90
    head_motion_px: float = 0.2
    table_lams: tuple[float, ...] = (0.1, 0.3)
    seed: int = 0

    def __post_init__(self) -> None:
        from gamdss.data.synthetic import BIAS_PRESETS
        from gamdss.spotting import SPOTTERS
        from gamdss.windows import PRESETS

        def fail(name: str, why: str) -> None:
            raise ValueError(f"KeyframeBenchConfig.{name}: {why}, got {getattr(self, name)!r}")

        for name in ("fps", "biases", "flicker_gl", "windows", "distances", "lams", "spotters", "table_lams"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                fail(name, "must be a list")
            object.__setattr__(self, name, tuple(value))
        for name in ("fps", "flicker_gl", "lams", "table_lams"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if int(self.clips) < 1:
            fail("clips", "must be >= 1")
        if not self.fps or min(self.fps) <= 0:
            fail("fps", "must be a non-empty list of positive frame rates")
        if int(self.size) < 16:
            fail("size", "must be at least 16 px")
        for name, known in (("biases", BIAS_PRESETS), ("windows", PRESETS), ("spotters", SPOTTERS),
                            ("distances", ("l2", "centered", "released_uint8"))):
            unknown = [v for v in getattr(self, name) if v not in known]
            if unknown:
                fail(name, f"unknown {unknown}; expected some of {list(known)}")
        if not self.biases or not self.flicker_gl:
            fail("biases" if not self.biases else "flicker_gl", "must not be empty")
        if min(self.flicker_gl) < 0 or (self.lams and min(self.lams) < 0):
            fail("flicker_gl" if min(self.flicker_gl) < 0 else "lams", "must be >= 0")
        if int(self.seed) < 0:
            fail("seed", "must be >= 0")

    @classmethod
    def quick(cls, **changes: Any) -> "KeyframeBenchConfig":
        """A small configuration that runs in about a minute on 2 CPU cores."""
        base = dict(clips=16, size=64, lams=(0.0, 0.1, 0.3, 0.5), table_lams=(0.1, 0.3))
        base.update(changes)
        return cls(**base)



@dataclass(frozen=True)
class ClipSpec:
    """Clip ``index`` of the benchmark: its frame rate, generator seed and face (subject)."""

    index: int
    fps: float
    seed: int
    subject: int


def clip_specs(config: KeyframeBenchConfig) -> list[ClipSpec]:
    """The benchmark's clips: clip ``i`` has ``fps[i % len(fps)]`` and a seed derived from
    ``(config.seed, i)``; faces cycle through the generator's photographs."""
    from gamdss.data.synthetic import PHOTOS

    specs = []
    for i in range(int(config.clips)):
        seed = int(np.random.SeedSequence([int(config.seed), i]).generate_state(1)[0])
        specs.append(ClipSpec(i, config.fps[i % len(config.fps)], seed, i % len(PHOTOS)))
    return specs


def synthetic_config(config: KeyframeBenchConfig, fps: float, flicker_gl: float):
    """The generator's :class:`~gamdss.data.synthetic.SyntheticConfig` of one clip."""
    from gamdss.data.synthetic import SyntheticConfig

    return SyntheticConfig(fps=fps, size=(int(config.size), int(config.size)), noise_sd=config.noise_sd,
                           jpeg_quality=config.jpeg_quality, head_motion_px=config.head_motion_px,
                           flicker_gl=flicker_gl)


@lru_cache(maxsize=256)
def generated_clip(synthetic, seed: int, subject: int):
    """:func:`gamdss.data.synthetic.make_clip`, cached per (config, seed, subject) so every
    condition (and a repeated run in the same process) reuses the same clips."""
    from gamdss.data.synthetic import make_clip

    return make_clip(synthetic, seed=seed, subject=subject)


def annotate(clips, specs: list[ClipSpec], bias: str, seed: int) -> np.ndarray:
    """int64 ``[B, 3]`` annotated (onset, apex, offset) of every clip by bias model ``bias``.

    Each clip's coder draws from a generator seeded by ``(seed, clip index, bias name)``,
    independent of the flicker level, so flicker changes the frames but not the annotation.
    """
    from gamdss.data.synthetic import get_bias

    model = get_bias(bias)
    tag = zlib.crc32(model.name.encode("utf-8"))
    out = np.empty((len(clips), 3), dtype=np.int64)
    for b, (clip, spec) in enumerate(zip(clips, specs)):
        rng = np.random.default_rng([int(seed), spec.index, tag])
        out[b] = model.annotate(clip.truth, clip.fps, rng, n_frames=len(clip))
    return out


def stat_rows(condition: dict[str, Any], predicted: np.ndarray, truth: np.ndarray, fps: np.ndarray,
              keyframes: Iterable[str] = KEYFRAMES) -> list[dict[str, Any]]:
    """Rows of :data:`COLUMNS`: ``condition`` plus :func:`error_stats` per keyframe, over all
    clips (``fps = "all"``) and per frame rate. ``predicted``, ``truth``: int ``[B, 3]``."""
    rows = []
    groups = [("all", np.ones(len(fps), dtype=bool))]
    groups += [(f"{rate:g}", fps == rate) for rate in sorted(set(fps.tolist()))]
    for keyframe in keyframes:
        k = KEYFRAMES.index(keyframe)
        for name, sel in groups:
            stats = error_stats(predicted[sel, k], truth[sel, k], fps[sel])
            rows.append({**condition, "keyframe": keyframe, "fps": name, **stats})
    return rows


def _condition(bias: str, flicker: float, method: str, window: str = "", distance: str = "",
               lam: float | str = "") -> dict[str, Any]:
    return {"bias": bias, "flicker_gl": flicker, "method": method, "window": window, "distance": distance,
            "lam": lam}


def run_benchmark(config: KeyframeBenchConfig, *, progress: bool = True) -> list[dict[str, Any]]:
    """Run every condition; returns the result rows (dicts with the keys of :data:`COLUMNS`).

    Methods: ``annotation``, ``gamdss`` (with ``window``, ``distance``, ``lam``) and the
    spotters' names (apex rows only). ``flicker_gl`` is the generator's flicker amplitude.
    """
    import torch
    from tqdm.auto import tqdm

    import gamdss
    from gamdss import spotting
    from gamdss.spotting import frequency

    specs = clip_specs(config)
    n_reselect = len(config.windows) * len(config.distances) * len(config.lams)
    steps_per_bias = n_reselect + len(config.spotters) + 1
    total = len(config.flicker_gl) * (len(specs) + len(config.biases) * steps_per_bias)
    rows: list[dict[str, Any]] = []
    with tqdm(total=total, desc="bench keyframes", unit="step", disable=not progress) as bar:
        for flicker in config.flicker_gl:
            clips = []
            for spec in specs:
                bar.set_postfix_str(f"flicker {flicker:g} gl: generating clips")
                clips.append(generated_clip(synthetic_config(config, spec.fps, flicker), spec.seed, spec.subject))
                bar.update()
            frames = [c.frames for c in clips]  # uint8 [T, H, W, 3]
            truth = np.array([c.truth for c in clips], dtype=np.int64)
            fps = np.array([c.fps for c in clips], dtype=np.float64)
            # The frequency score of a frame does not depend on the annotation: one curve per clip.
            freq_curves = ([frequency.score_curve(f.numpy(), fps=c.fps) for f, c in zip(frames, clips)]
                           if "frequency" in config.spotters else None)
            for bias in config.biases:
                bar.set_postfix_str(f"flicker {flicker:g} gl, bias {bias}")
                ann = annotate(clips, specs, bias, config.seed)
                rows += stat_rows(_condition(bias, flicker, "annotation"), ann, truth, fps)
                bar.update()
                on, ap, off = (torch.from_numpy(ann[:, k].copy()) for k in range(3))
                for window in config.windows:
                    for distance in config.distances:
                        for lam in config.lams:
                            out = gamdss.reselect(frames, on, ap, off, lam_rise=lam, lam_fall=lam, window=window,
                                                  distance=distance)
                            pred = torch.stack([out.onset, out.apex, out.offset], dim=1).cpu().numpy()
                            rows += stat_rows(_condition(bias, flicker, "gamdss", window, distance, lam),
                                              pred, truth, fps)
                            bar.update()
                for method in config.spotters:
                    pred = ann.copy()
                    for b, (f, c) in enumerate(zip(frames, clips)):
                        o, off_b = int(ann[b, 0]), int(ann[b, 2])
                        if method == "frequency":
                            pred[b, 1] = spotting.apex_from_curve(freq_curves[b], o, off_b)
                        else:
                            pred[b, 1] = spotting.spot_apex(method, f.numpy(), o, off_b, fps=c.fps)
                    rows += stat_rows(_condition(bias, flicker, method), pred, truth, fps, keyframes=("apex",))
                    bar.update()
    return rows


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` (long format, columns :data:`COLUMNS`) atomically as CSV."""
    import csv

    from gamdss import atomic

    with atomic.atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return Path(path)


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV written by :func:`write_csv` (numbers parsed back, empty cells as "")."""
    import csv

    numeric = set(METRICS) | {"flicker_gl", "lam"}
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append({k: (float(v) if k in numeric and v != "" else v) for k, v in row.items()})
    return rows


@dataclass(frozen=True)
class BenchOutputs:
    """Where :func:`run_keyframe_bench` wrote its results."""

    csv: Path
    config: Path
    table: Path
    plots: tuple[Path, ...]
    table_text: str


def output_paths(out: str | Path) -> dict[str, Path]:
    """The files a run writes into ``out``."""
    out = Path(out)
    paths = {"csv": out / "keyframes.csv", "config": out / "config.yaml", "table": out / "table.txt"}
    paths.update({f"plot_{k}": out / f"error_vs_lambda_{k}.png" for k in KEYFRAMES})
    return paths


def run_keyframe_bench(config: KeyframeBenchConfig, out: str | Path, *, overwrite: bool = False,
                       progress: bool = True) -> BenchOutputs:
    """Run the benchmark and write ``keyframes.csv``, ``config.yaml``, ``table.txt`` and one
    ``error_vs_lambda_<keyframe>.png`` per keyframe into ``out``.

    Raises FileExistsError (before any work) if one of these files exists and not ``overwrite``.
    """
    from gamdss import atomic

    from .report import format_table, plot_error_vs_lambda

    paths = output_paths(out)
    atomic.refuse_any_existing(paths.values(), overwrite)
    rows = run_benchmark(config, progress=progress)
    Path(out).mkdir(parents=True, exist_ok=True)
    config.save(paths["config"], overwrite=True)
    write_csv(rows, paths["csv"])
    table = format_table(rows, config)
    atomic.write_text(paths["table"], table + "\n")
    plots = tuple(plot_error_vs_lambda(rows, config, paths[f"plot_{k}"], k) for k in KEYFRAMES)
    return BenchOutputs(paths["csv"], paths["config"], paths["table"], plots, table)
