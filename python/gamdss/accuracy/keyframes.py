"""Keyframe-recovery benchmark: how far annotated, reselected and spotted keyframes lie from
the true ones, on generated micro-expressions (:mod:`gamdss.data.synthetic`).

Conditions: every bias model (how a human coder errs, :mod:`gamdss.data.synthetic.bias`)
times every confounder (:data:`CONFOUNDERS`: what, besides the camera's noise, JPEG and head
translation, disturbs the clip: ``clean``, ``flicker``, ``blink``, ``head``, ``gentle``,
``all``). The same clips (same seeds, faces and true keyframes) serve every condition; a
confounder changes the frames, never the truth nor the annotation. Methods:

- ``annotation``: the biased annotation itself;
- ``preset:<name>``: each named preset of :data:`gamdss.settings.reselection.PRESETS`
  (``noise_aware`` presets through :func:`gamdss.reselection.noise_aware.correct_keyframes`,
  ``max_distance`` presets through :func:`gamdss.reselect` with the preset's window, lams and
  distance);
- ``gamdss``: :func:`gamdss.reselect` for every window x distance x ``lam``
  (``lam_rise = lam_fall``) of the config, one batched call per combination;
- the apex-spotting baselines of :mod:`gamdss.spotting` (apex rows only; they take the
  annotated onset and offset).

Results are long-format rows (:data:`COLUMNS`), per condition, method, keyframe and frame-rate
group (``fps`` ``"all"`` or one rate such as ``"200"``): errors to the truth in frames and
milliseconds (``|error|`` mean, median, 90th percentile; mean signed error), the share of
exact hits and ``moved_rate``, the share of clips where the method changed the annotated
keyframe (:func:`gamdss.accuracy.metrics.error_stats`).
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import gamdss
from gamdss import spotting
from gamdss.data.synthetic import BIAS_PRESETS, PHOTOS, SyntheticConfig, get_bias, make_clip
from gamdss.op.windows import PRESETS
from gamdss.reselection.clips import reselect_clips
from gamdss.reselection.noise_aware import detect_eyes
from gamdss.settings.reselection import KEYFRAMES, preset
from gamdss.settings.reselection import PRESETS as RESELECTION_PRESETS
from gamdss.settings.yaml_io import YamlDataclass
from gamdss.spotting import SPOTTERS, frequency
from gamdss.util import atomic
from gamdss.util.csv_rows import write_csv as write_rows

from .metrics import METRICS, error_stats
from .report import PRESET_PREFIX, format_summary, format_table, plot_error_vs_lambda

CONDITION_COLUMNS = ("bias", "confounder", "method", "window", "distance", "lam", "keyframe", "fps")
COLUMNS = CONDITION_COLUMNS + METRICS

_CONFOUNDER_PARTS: dict[str, dict[str, Any]] = {
    "flicker": {"flicker_gl": 1.5},  # illumination flicker, grey levels
    "blink": {"blink_probability": 0.5},  # one eye blink in half the clips
    "head": {"head_rotation_deg": 0.5, "head_scale": 0.005},  # rotation (deg) and scale drift after 1 s
    "gentle": {"rise_power": 2.0, "fall_power": 2.0},  # onset and offset motion below the noise
}
#: confounder name -> changes to the generator's :class:`~gamdss.data.synthetic.SyntheticConfig`
#: (on top of the benchmark's camera settings: noise, JPEG, head translation).
CONFOUNDERS: dict[str, dict[str, Any]] = {
    "clean": {},
    **_CONFOUNDER_PARTS,
    "all": {k: v for part in _CONFOUNDER_PARTS.values() for k, v in part.items()},
}


@dataclass(frozen=True)
class KeyframeBenchConfig(YamlDataclass):
    """What the benchmark runs.

    Attributes:
        clips: generated clips per condition, spread evenly over ``fps`` (clip ``i`` has
            ``fps[i % len(fps)]``); the same clips serve every bias model and confounder.
        fps: frame rates of the clips.
        size: frame height and width, px.
        biases: bias-model presets of :mod:`gamdss.data.synthetic.bias`.
        confounders: names of :data:`CONFOUNDERS`.
        presets: reselection presets (:data:`gamdss.settings.reselection.PRESETS`), each run
            as method ``preset:<name>``.
        windows, distances, lams: the ``gamdss`` grid of :func:`gamdss.reselect` settings
            (``lam_rise = lam_fall = lam``); an empty ``lams`` skips the grid.
        spotters: apex-spotting baselines (:data:`gamdss.spotting.SPOTTERS`).
        noise_sd, jpeg_quality, head_motion_px: camera settings of the generator (sensor noise
            sd in grey levels, JPEG quality or None, head translation in px after 1 s).
        table_lams: the grid's ``lam`` values shown in the printed table.
        seed: everything (clips, annotations) is deterministic from it.
    """

    clips: int = 48
    fps: tuple[float, ...] = (30.0, 60.0, 90.0, 200.0)
    size: int = 96
    biases: tuple[str, ...] = ("none", "careful", "typical", "multicultural")
    confounders: tuple[str, ...] = tuple(CONFOUNDERS)
    presets: tuple[str, ...] = ("recommended", "paper", "released")
    windows: tuple[str, ...] = ("paper", "released", "symmetric")
    distances: tuple[str, ...] = ("l2", "centered")
    lams: tuple[float, ...] = (0.1, 0.3)
    spotters: tuple[str, ...] = ("midpoint", "frame_difference", "frequency", "optical_flow")
    noise_sd: float = 1.0
    jpeg_quality: int | None = 90
    head_motion_px: float = 0.2
    table_lams: tuple[float, ...] = (0.1, 0.3)
    seed: int = 0

    def __post_init__(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"KeyframeBenchConfig.{name}: {why}, got {getattr(self, name)!r}")

        lists = ("fps", "biases", "confounders", "presets", "windows", "distances", "lams", "spotters", "table_lams")
        for name in lists:
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                fail(name, "must be a list")
            object.__setattr__(self, name, tuple(value))
        for name in ("fps", "lams", "table_lams"):
            try:
                object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
            except (TypeError, ValueError):
                fail(name, "must be a list of numbers")
        if int(self.clips) < 1:
            fail("clips", "must be >= 1")
        if not self.fps or min(self.fps) <= 0 or not all(np.isfinite(self.fps)):
            fail("fps", "must be a non-empty list of positive frame rates")
        if int(self.size) < 16:
            fail("size", "must be at least 16 px")
        for name, known in (
            ("biases", BIAS_PRESETS),
            ("confounders", CONFOUNDERS),
            ("presets", RESELECTION_PRESETS),
            ("windows", PRESETS),
            ("spotters", SPOTTERS),
            ("distances", ("l2", "centered", "released_uint8")),
        ):
            unknown = [v for v in getattr(self, name) if v not in known]
            if unknown:
                fail(name, f"unknown {unknown}; expected some of {list(known)}")
        for name in ("biases", "confounders"):
            if not getattr(self, name):
                fail(name, "must not be empty")
        for name in ("lams", "table_lams"):
            if getattr(self, name) and min(getattr(self, name)) < 0:
                fail(name, "must be >= 0")
        if int(self.seed) < 0:
            fail("seed", "must be >= 0")

    @classmethod
    def quick(cls, **changes: Any) -> KeyframeBenchConfig:
        """A small configuration (16 clips of 48x48 px, every bias, confounder, preset, grid
        setting and spotter of the default) that runs in about 2 minutes on 2 CPU cores."""
        base: dict[str, Any] = dict(clips=16, size=48)
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
    specs = []
    for i in range(int(config.clips)):
        seed = int(np.random.SeedSequence([int(config.seed), i]).generate_state(1)[0])
        specs.append(ClipSpec(i, config.fps[i % len(config.fps)], seed, i % len(PHOTOS)))
    return specs


def synthetic_config(config: KeyframeBenchConfig, fps: float, confounder: str = "clean"):
    """The generator's :class:`~gamdss.data.synthetic.SyntheticConfig` of one clip: the
    benchmark's size and camera settings plus the changes of ``CONFOUNDERS[confounder]``.

    Raises ValueError naming ``confounder`` when it is not in :data:`CONFOUNDERS`.
    """
    if confounder not in CONFOUNDERS:
        raise ValueError(f"unknown confounder {confounder!r}; expected one of {', '.join(CONFOUNDERS)}")
    return SyntheticConfig(
        fps=fps,
        size=(int(config.size), int(config.size)),
        noise_sd=config.noise_sd,
        jpeg_quality=config.jpeg_quality,
        head_motion_px=config.head_motion_px,
        **CONFOUNDERS[confounder],
    )


@lru_cache(maxsize=256)
def generated_clip(synthetic, seed: int, subject: int):
    """:func:`gamdss.data.synthetic.make_clip`, cached per (config, seed, subject) so every
    bias model (and a repeated run in the same process) reuses the same clips."""
    return make_clip(synthetic, seed=seed, subject=subject)


def annotate(clips, specs: list[ClipSpec], bias: str, seed: int) -> np.ndarray:
    """int64 ``[B, 3]`` annotated (onset, apex, offset) of every clip by bias model ``bias``.

    Each clip's coder draws from a generator seeded by ``(seed, clip index, bias name)``,
    independent of the confounder, so a confounder changes the frames but not the annotation.
    """
    model = get_bias(bias)
    tag = zlib.crc32(model.name.encode("utf-8"))
    out = np.empty((len(clips), 3), dtype=np.int64)
    for b, (clip, spec) in enumerate(zip(clips, specs)):
        rng = np.random.default_rng([int(seed), spec.index, tag])
        out[b] = model.annotate(clip.truth, clip.fps, rng, n_frames=len(clip))
    return out


def stat_rows(
    condition: dict[str, Any],
    predicted: np.ndarray,
    truth: np.ndarray,
    fps: np.ndarray,
    keyframes: Iterable[str] = KEYFRAMES,
    annotated: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Rows of :data:`COLUMNS`: ``condition`` plus :func:`error_stats` per keyframe, over all
    clips (``fps = "all"``) and per frame rate. ``predicted``, ``truth``, ``annotated``: int
    ``[B, 3]`` frame indices (``annotated``, for ``moved_rate``, may be None); ``fps``: ``[B]``."""
    rows = []
    groups = [("all", np.ones(len(fps), dtype=bool))]
    groups += [(f"{rate:g}", fps == rate) for rate in sorted(set(fps.tolist()))]
    for keyframe in keyframes:
        k = KEYFRAMES.index(keyframe)
        for name, sel in groups:
            stats = error_stats(
                predicted[sel, k], truth[sel, k], fps[sel], annotated=None if annotated is None else annotated[sel, k]
            )
            rows.append({**condition, "keyframe": keyframe, "fps": name, **stats})
    return rows


def _condition(
    bias: str, confounder: str, method: str, window: str = "", distance: str = "", lam: float | str = ""
) -> dict[str, Any]:
    return {
        "bias": bias,
        "confounder": confounder,
        "method": method,
        "window": window,
        "distance": distance,
        "lam": lam,
    }


def _stack(out) -> np.ndarray:
    """int64 ``[B, 3]`` (onset, apex, offset) of a :func:`gamdss.reselect` result."""
    return torch.stack([out.onset, out.apex, out.offset], dim=1).cpu().numpy().astype(np.int64)


def run_preset(name: str, frames, ann: np.ndarray, fps: np.ndarray, eyes=None) -> np.ndarray:
    """int64 ``[B, 3]`` keyframes of reselection preset ``name`` from the annotation ``ann``
    (int ``[B, 3]``) of clips ``frames`` (uint8 ``[T, H, W, 3]`` tensors) at frame rates ``fps``
    ``[B]`` (:func:`gamdss.reselection.clips.reselect_clips`). ``eyes``: per clip ``[2, 2]`` eye
    centres or None, for ``noise_aware`` presets (None: :func:`~gamdss.reselection.noise_aware.correct_keyframes`
    finds them)."""
    out = reselect_clips(
        frames, ann[:, 0].tolist(), ann[:, 1].tolist(), ann[:, 2].tolist(), fps, preset(name), eyes=eyes
    )
    return out.keyframes.numpy().astype(np.int64)


def _preset_condition(bias: str, confounder: str, name: str) -> dict[str, Any]:

    s = preset(name)
    if s.method == "noise_aware":
        return _condition(bias, confounder, PRESET_PREFIX + name)
    return _condition(
        bias, confounder, PRESET_PREFIX + name, s.window, s.distance, s.lam_rise if s.lam_rise == s.lam_fall else ""
    )


def _eyes_at_onset(frames, ann: np.ndarray) -> list:
    """Eye centres on each clip's frame at its annotated onset (what
    :func:`~gamdss.reselection.noise_aware.correct_keyframes` would detect), found once for all presets."""
    return detect_eyes([f[int(a[0])].numpy() for f, a in zip(frames, ann)])


def run_benchmark(config: KeyframeBenchConfig, *, progress: bool = True) -> list[dict[str, Any]]:
    """Run every condition; returns the result rows (dicts with the keys of :data:`COLUMNS`).

    Methods: ``annotation``, ``preset:<name>`` per preset, ``gamdss`` (with ``window``,
    ``distance``, ``lam``) and the spotters' names (apex rows only).
    """
    specs = clip_specs(config)
    n_reselect = len(config.windows) * len(config.distances) * len(config.lams)
    steps_per_bias = 1 + len(config.presets) + n_reselect + len(config.spotters)
    total = len(config.confounders) * (len(specs) + len(config.biases) * steps_per_bias)
    masks_eyes = any(preset(p).method == "noise_aware" and preset(p).mask_eyes for p in config.presets)
    rows: list[dict[str, Any]] = []
    with tqdm(total=total, desc="bench keyframes", unit="step", disable=not progress) as bar:
        for confounder in config.confounders:
            clips = []
            bar.set_postfix_str(f"{confounder}: generating clips")
            for spec in specs:
                clips.append(generated_clip(synthetic_config(config, spec.fps, confounder), spec.seed, spec.subject))
                bar.update()
            frames = [c.frames for c in clips]  # uint8 [T, H, W, 3]
            truth = np.array([c.truth for c in clips], dtype=np.int64)
            fps = np.array([c.fps for c in clips], dtype=np.float64)
            # The frequency score of a frame does not depend on the annotation: one curve per clip.
            freq_curves = (
                [frequency.score_curve(f.numpy(), fps=c.fps) for f, c in zip(frames, clips)]
                if "frequency" in config.spotters
                else None
            )
            for bias in config.biases:
                bar.set_postfix_str(f"{confounder}, bias {bias}")
                ann = annotate(clips, specs, bias, config.seed)
                rows += stat_rows(_condition(bias, confounder, "annotation"), ann, truth, fps, annotated=ann)
                bar.update()
                eyes = _eyes_at_onset(frames, ann) if masks_eyes else None
                for name in config.presets:
                    pred = run_preset(name, frames, ann, fps, eyes=eyes if preset(name).mask_eyes else None)
                    rows += stat_rows(_preset_condition(bias, confounder, name), pred, truth, fps, annotated=ann)
                    bar.update()
                on, ap, off = (torch.from_numpy(ann[:, k].copy()) for k in range(3))
                for window in config.windows:
                    for distance in config.distances:
                        for lam in config.lams:
                            out = gamdss.reselect(
                                frames, on, ap, off, lam_rise=lam, lam_fall=lam, window=window, distance=distance
                            )
                            rows += stat_rows(
                                _condition(bias, confounder, "gamdss", window, distance, lam),
                                _stack(out),
                                truth,
                                fps,
                                annotated=ann,
                            )
                            bar.update()
                for method in config.spotters:
                    pred = ann.copy()
                    for b, (f, c) in enumerate(zip(frames, clips)):
                        o, off_b = int(ann[b, 0]), int(ann[b, 2])
                        if method == "frequency":
                            pred[b, 1] = spotting.apex_from_curve(freq_curves[b], o, off_b)
                        else:
                            pred[b, 1] = spotting.spot_apex(method, f.numpy(), o, off_b, fps=c.fps)
                    rows += stat_rows(
                        _condition(bias, confounder, method), pred, truth, fps, keyframes=("apex",), annotated=ann
                    )
                    bar.update()
    return rows


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` (long format, columns :data:`COLUMNS`, floats to 6 significant digits)
    atomically as CSV (:func:`gamdss.util.csv_rows.write_csv`)."""
    return write_rows(path, rows, COLUMNS, float_format=lambda v: f"{v:.6g}")


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV written by :func:`write_csv` (numbers parsed back, empty cells as "")."""
    numeric = set(METRICS) | {"lam"}
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


def run_keyframe_bench(
    config: KeyframeBenchConfig, out: str | Path, *, overwrite: bool = False, progress: bool = True
) -> BenchOutputs:
    """Run the benchmark and write ``keyframes.csv``, ``config.yaml``, ``table.txt`` (the
    summary table, then the full tables) and one ``error_vs_lambda_<keyframe>.png`` per
    keyframe into ``out``. ``table_text`` of the result is what ``table.txt`` holds.

    Raises FileExistsError (before any work) if one of these files exists and not ``overwrite``.
    """
    paths = output_paths(out)
    atomic.refuse_any_existing(paths.values(), overwrite)
    rows = run_benchmark(config, progress=progress)
    Path(out).mkdir(parents=True, exist_ok=True)
    config.save(paths["config"], overwrite=True)
    write_csv(rows, paths["csv"])
    table = format_summary(rows, config) + "\n\n" + format_table(rows, config)
    atomic.write_text(paths["table"], table + "\n")
    plots = tuple(plot_error_vs_lambda(rows, config, paths[f"plot_{k}"], k) for k in KEYFRAMES)
    return BenchOutputs(paths["csv"], paths["config"], paths["table"], plots, table)
