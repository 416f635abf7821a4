"""Eye blinks: the upper eyelids close and reopen over 100-150 ms, anywhere in a clip.

A blink is the strongest non-expression change in a face video: the lid covers the dark iris
and the white sclera with skin, a change of tens of grey levels over both eyes within a few
frames, where a micro-expression moves skin by a pixel or two. A keyframe search that
maximises frame differences will pick a blink inside its windows unless it guards against
it, which is why the benchmark has them.

Model: each eye is an ellipse around its landmark (width 0.55, height 0.3 inter-ocular
distances). The lid closure ``c(t)`` in ``[0, 1]`` rises as a half-cosine over the first 40%
of the blink and falls over the remaining 60% (closing is faster than opening); the lid is
the skin colour measured just below the eye, drawn over the top ``c`` fraction of the
ellipse with a one-pixel soft edge.
"""

from __future__ import annotations

import numpy as np

#: eye ellipse size in inter-ocular distances (full width, full height)
EYE_WIDTH = 0.55
EYE_HEIGHT = 0.3
CLOSING_SHARE = 0.4


def blink_closure(n_frames: int, fps: float, start_s: float, duration_s: float) -> np.ndarray:
    """Lid closure per frame, float64 ``[T]`` in ``[0, 1]`` (1: fully closed), for one blink
    starting at ``start_s`` seconds (frame ``t`` is at ``t / fps``) and lasting ``duration_s``."""
    t = np.arange(n_frames, dtype=np.float64) / float(fps)
    u = (t - start_s) / duration_s  # 0..1 inside the blink
    closing = np.clip(u / CLOSING_SHARE, 0.0, 1.0)
    opening = np.clip((1.0 - u) / (1.0 - CLOSING_SHARE), 0.0, 1.0)
    c = np.where(u < CLOSING_SHARE, 0.5 - 0.5 * np.cos(np.pi * closing), 0.5 - 0.5 * np.cos(np.pi * opening))
    c[(u <= 0.0) | (u >= 1.0)] = 0.0
    return c


def draw_blink(
    frames: np.ndarray, closure: np.ndarray, eyes_px: np.ndarray, interocular_px: float, lid_rgb: np.ndarray
) -> np.ndarray:
    """Draw closed lids into ``frames`` (float32 ``[T, H, W, 3]``, grey levels), in place.

    closure: ``[T]`` in ``[0, 1]``; eyes_px: float ``[T, 2, 2]`` (frame, eye, (x, y)) eye
    centres in pixel coordinates (the image spans ``[0, W] x [0, H]``); lid_rgb: ``[2, 3]``
    skin colour per eye. Frames whose closure is 0 are untouched.
    """
    _, h, w, _ = frames.shape
    ys = np.arange(h, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float64)[None, :] + 0.5
    half_w = 0.5 * EYE_WIDTH * interocular_px
    half_h = 0.5 * EYE_HEIGHT * interocular_px
    for t in np.flatnonzero(closure > 0):
        for e in range(2):
            cx, cy = eyes_px[t, e]
            inside = 1.0 - np.sqrt(((xs - cx) / half_w) ** 2 + ((ys - cy) / half_h) ** 2)
            ellipse = np.clip(inside * min(half_w, half_h), 0.0, 1.0)  # soft 1 px rim
            lid_edge = (cy - half_h) + closure[t] * 2.0 * half_h
            covered = np.clip(lid_edge - ys + 0.5, 0.0, 1.0)
            alpha = (ellipse * covered).astype(np.float32)[..., None]
            if not alpha.any():
                continue
            frames[t] += alpha * (lid_rgb[e].astype(np.float32) - frames[t])
    return frames


def lid_colours(face: np.ndarray, eyes_px: np.ndarray, interocular_px: float) -> np.ndarray:
    """Skin colour below each eye: mean RGB of a patch 0.3 inter-ocular distances under the
    eye centre, float64 ``[2, 3]``. ``face``: uint8 ``[H, W, 3]``; eyes_px ``[2, 2]`` (x, y)."""
    h, w = face.shape[:2]
    r = max(1, int(round(0.06 * interocular_px)))
    out = np.empty((2, 3))
    for e, (x, y) in enumerate(eyes_px):
        cx = int(np.clip(round(x), 0, w - 1))
        cy = int(np.clip(round(y + 0.3 * interocular_px), 0, h - 1))
        patch = face[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1].reshape(-1, 3)
        out[e] = patch.mean(axis=0)
    return out
