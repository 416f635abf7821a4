"""Error statistics of keyframe estimates against the true keyframes.

Keyframes are integer frame indices; errors are ``predicted - truth`` in frames and in
milliseconds (``frames * 1000 / fps``).
"""

from __future__ import annotations

import numpy as np

METRICS = (
    "n",
    "mean_abs_frames",
    "median_abs_frames",
    "p90_abs_frames",
    "mean_abs_ms",
    "median_abs_ms",
    "p90_abs_ms",
    "mean_signed_frames",
    "mean_signed_ms",
    "exact_rate",
    "moved_rate",
)


def error_stats(predicted, truth, fps, annotated=None) -> dict[str, float]:
    """Statistics of ``predicted - truth`` over clips.

    predicted, truth: int ``[N]`` frame indices; fps: ``[N]`` frame rates (or a scalar);
    annotated: optional int ``[N]``, the annotation the method started from.
    Errors in milliseconds are ``(predicted - truth) * 1000 / fps``. Percentiles use linear
    interpolation between order statistics (numpy's default). Returns a dict with the keys
    of :data:`METRICS` (``n`` the clip count, ``exact_rate`` the share of zero errors,
    ``moved_rate`` the share of ``predicted != annotated``, NaN without ``annotated``); all
    NaN but ``n = 0`` for no clips.
    """
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    truth = np.asarray(truth, dtype=np.float64).ravel()
    fps = np.broadcast_to(np.asarray(fps, dtype=np.float64), truth.shape)
    if predicted.shape != truth.shape:
        raise ValueError(f"error_stats: predicted has {predicted.size} values, truth {truth.size}")
    if annotated is not None:
        annotated = np.asarray(annotated, dtype=np.float64).ravel()
        if annotated.shape != truth.shape:
            raise ValueError(f"error_stats: annotated has {annotated.size} values, truth {truth.size}")
    if predicted.size == 0:
        return {key: (0 if key == "n" else float("nan")) for key in METRICS}
    frames = predicted - truth
    ms = frames * 1000.0 / fps
    abs_frames, abs_ms = np.abs(frames), np.abs(ms)
    return {
        "n": int(predicted.size),
        "mean_abs_frames": float(abs_frames.mean()),
        "median_abs_frames": float(np.median(abs_frames)),
        "p90_abs_frames": float(np.percentile(abs_frames, 90)),
        "mean_abs_ms": float(abs_ms.mean()),
        "median_abs_ms": float(np.median(abs_ms)),
        "p90_abs_ms": float(np.percentile(abs_ms, 90)),
        "mean_signed_frames": float(frames.mean()),
        "mean_signed_ms": float(ms.mean()),
        "exact_rate": float((frames == 0).mean()),
        "moved_rate": float("nan") if annotated is None else float((predicted != annotated).mean()),
    }
