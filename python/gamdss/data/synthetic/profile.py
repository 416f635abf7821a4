"""Temporal intensity profiles of a synthetic micro-expression.

A profile maps frame index ``t`` (0-based, clip-relative) to an intensity in ``[0, 1]``:

- exactly 0 for ``t <= onset`` and ``t >= offset`` (the onset and offset frames are the last
  and first neutral frames: the motion starts right after the onset and has ended at the
  offset);
- rising strictly from onset to apex, exactly 1 at the apex frame, falling strictly from apex
  to offset, so the apex is the unique frame of maximal intensity.

Shapes, with ``r = (t - onset) / (apex - onset)`` on the rise and
``s = (offset - t) / (offset - apex)`` on the fall (both in ``[0, 1]``, 1 at the apex):

- ``linear``: ``r`` and ``s`` (a sharp peak);
- ``cosine``: ``(1 - cos(pi r)) / 2`` (smoothstep-like, flat at both ends);
- ``gamma``: ``(r e^(1 - r))`` — the gamma-density-like bump ``x e^(-x)`` rescaled to peak at
  the apex — fast start, flat top.

Each half is then raised to a power (``rise_power``, ``fall_power``; 1 keeps the shape), which
sets the asymmetry: a power above 1 makes that half start slowly and end steeply, below 1 the
reverse.
"""

from __future__ import annotations

import numpy as np

PROFILE_SHAPES = ("linear", "cosine", "gamma")


def _half(x: np.ndarray, shape: str) -> np.ndarray:
    if shape == "linear":
        return x
    if shape == "cosine":
        return 0.5 - 0.5 * np.cos(np.pi * x)
    if shape == "gamma":
        return x * np.exp(1.0 - x)
    raise ValueError(f"profile shape must be one of {PROFILE_SHAPES}, got {shape!r}")


def intensity_profile(
    n_frames: int,
    onset: int,
    apex: int,
    offset: int,
    *,
    shape: str = "cosine",
    rise_power: float = 1.0,
    fall_power: float = 1.0,
) -> np.ndarray:
    """Intensity per frame, float64 ``[n_frames]`` in ``[0, 1]``.

    Args:
        n_frames: clip length T.
        onset, apex, offset: clip-relative frame indices with
            ``0 <= onset < apex < offset <= T - 1``.
        shape: ``linear``, ``cosine`` or ``gamma`` (see the module docstring).
        rise_power, fall_power: exponents (> 0) applied to the rising and falling halves.

    Raises:
        ValueError: keyframes out of order or out of range, unknown shape, power <= 0.
    """
    if not (0 <= onset < apex < offset <= n_frames - 1):
        raise ValueError(
            f"intensity_profile: need 0 <= onset < apex < offset <= T-1, got onset={onset}, "
            f"apex={apex}, offset={offset}, T={n_frames}"
        )
    for name, p in (("rise_power", rise_power), ("fall_power", fall_power)):
        if not (np.isfinite(p) and p > 0):
            raise ValueError(f"intensity_profile: {name} must be a finite number > 0, got {p!r}")
    t = np.arange(n_frames, dtype=np.float64)
    r = np.clip((t - onset) / (apex - onset), 0.0, 1.0)
    s = np.clip((offset - t) / (offset - apex), 0.0, 1.0)
    out = np.where(t <= apex, _half(r, shape) ** rise_power, _half(s, shape) ** fall_power)
    # Pin the defining values exactly (no rounding at the ends or the apex).
    out[: onset + 1] = 0.0
    out[offset:] = 0.0
    out[apex] = 1.0
    return out
