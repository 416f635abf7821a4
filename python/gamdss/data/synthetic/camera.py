"""Camera and recording effects: head motion (translation, rotation, scale drift), illumination
flicker, sensor noise, JPEG.

All draws come from a numpy ``Generator`` passed in, so a clip is reproducible from its seed.
"""

from __future__ import annotations

import cv2
import numpy as np


def head_motion_path(n_frames: int, fps: float, wander_px_per_s: float, rng: np.random.Generator) -> np.ndarray:
    """Small rigid head motion: a 2-D random walk of the whole face, float64 ``[T, 2]`` (dx, dy) px.

    Frame 0 is at (0, 0); each step is Gaussian with sd ``wander_px_per_s / sqrt(fps)``, so the
    position after one second has sd ``wander_px_per_s`` px whatever the frame rate. Zero when
    ``wander_px_per_s`` is 0 (no draws are consumed then).
    """
    if wander_px_per_s < 0:
        raise ValueError(f"head motion must be >= 0 px, got {wander_px_per_s!r}")
    if wander_px_per_s == 0 or n_frames <= 1:
        return np.zeros((n_frames, 2))
    steps = rng.standard_normal((n_frames - 1, 2)) * (wander_px_per_s / np.sqrt(fps))
    return np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])


def pose_drift_path(
    n_frames: int, fps: float, rotation_deg_per_s: float, scale_per_s: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Slow head rotation (in the image plane) and scale drift (towards or away from the camera).

    Both are random walks like :func:`head_motion_path`: after one second the angle has sd
    ``rotation_deg_per_s`` degrees and the relative scale sd ``scale_per_s`` (0.01: 1%).
    Returns float64 ``[T]`` angles in degrees (frame 0: 0) and ``[T]`` scales (frame 0: 1).
    Draws are consumed only for the non-zero parts.
    """
    for name, value in (("rotation drift", rotation_deg_per_s), ("scale drift", scale_per_s)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    angle, scale = np.zeros(n_frames), np.ones(n_frames)
    if n_frames <= 1:
        return angle, scale
    if rotation_deg_per_s > 0:
        angle[1:] = np.cumsum(rng.standard_normal(n_frames - 1)) * (rotation_deg_per_s / np.sqrt(fps))
    if scale_per_s > 0:
        scale = np.exp(
            np.concatenate([[0.0], np.cumsum(rng.standard_normal(n_frames - 1))]) * (scale_per_s / np.sqrt(fps))
        )
    return angle, scale


def flicker_offsets(
    n_frames: int, fps: float, amplitude_gl: float, rng: np.random.Generator, *, light_hz: float = 100.0
) -> np.ndarray:
    """Global brightness offset per frame, float64 ``[T]`` in grey levels.

    Mains-powered lights pulse at ``light_hz`` (twice the mains frequency); a camera samples the
    pulse at its own frame rate (aliased, e.g. alternate frames at 200 fps), and exposure and
    auto-gain add frame-to-frame jitter. Model: ``A sin(2 pi light_hz t / fps + phi) + (A / 2) z_t``
    with a random phase and ``z_t`` standard normal. Zero when ``amplitude_gl`` is 0 (no draws).
    """
    if amplitude_gl < 0:
        raise ValueError(f"flicker amplitude must be >= 0 grey levels, got {amplitude_gl!r}")
    if amplitude_gl == 0:
        return np.zeros(n_frames)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    t = np.arange(n_frames, dtype=np.float64)
    return amplitude_gl * (np.sin(2.0 * np.pi * light_hz * t / fps + phase) + 0.5 * rng.standard_normal(n_frames))


def add_sensor_noise(frames: np.ndarray, sd_gl: float, rng: np.random.Generator) -> np.ndarray:
    """``frames`` (float32, grey levels) plus i.i.d. Gaussian noise of sd ``sd_gl``, in place."""
    if sd_gl < 0:
        raise ValueError(f"noise sd must be >= 0 grey levels, got {sd_gl!r}")
    if sd_gl > 0:
        frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(sd_gl)
    return frames


def jpeg_roundtrip(frames: np.ndarray, quality: int | None) -> np.ndarray:
    """Encode and decode every RGB frame of uint8 ``[T, H, W, 3]`` as JPEG at ``quality``
    (1-100); ``None`` returns ``frames`` unchanged."""
    if quality is None:
        return frames

    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100 or None, got {quality!r}")
    out = np.empty_like(frames)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    for i, frame in enumerate(frames):
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), params)
        if not ok:
            raise RuntimeError(f"JPEG encoding of frame {i} failed")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return out
