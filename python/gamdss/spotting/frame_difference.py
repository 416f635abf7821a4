"""Frame-difference apex: the frame that differs most from the onset frame.

Two scores per frame ``t`` in ``[onset, offset]``, on grey levels over the face (the whole
frame, or the pixels of ``mask``):

- ``"absolute"`` (the default): ``mean |I_t - I_onset|``. The change from onset, in grey
  levels.
- ``"normalised"`` (the CapsuleNet SMIC script's score):
  ``mean((|I_t - I_onset| + 1) / (|I_t - I_{t-1}| + 1))``, the change from onset divided by
  the frame-to-frame change, which favours frames where the motion has stopped (the apex)
  and damps frames that differ from their neighbour by noise. The original averages it over
  10 landmark cells; we average over the face. ``I_{-1}`` is taken as ``I_0``.

The absolute score is the default because it depends on one difference per pixel: with
sensor noise the ratio's denominator is noise too, which makes the normalised curve jagged.
"""

from __future__ import annotations

import numpy as np

from ._frames import apex_from_curve, as_frames, check_mask, check_range, empty_curve, grey_float

VARIANTS = ("absolute", "normalised")


def score_curve(frames, onset: int, offset: int, *, variant: str = "absolute", mask=None) -> np.ndarray:
    """float64 ``[T]``: the score of every frame in ``[onset, offset]`` (grey levels for
    ``absolute``, a dimensionless ratio for ``normalised``), NaN outside.

    frames: uint8 ``[T, H, W, 3]`` RGB or ``[T, H, W]`` grey. mask: optional bool ``[H, W]``
    face pixels.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    frames = as_frames(frames)
    onset, offset = check_range(onset, offset, frames.shape[0])
    mask = check_mask(mask, frames.shape[1:3])
    first = max(onset - 1, 0) if variant == "normalised" else onset
    grey = grey_float(frames[first : offset + 1])
    if mask is not None:
        grey = grey[:, mask]  # [n, P]
    grey = grey.reshape(grey.shape[0], -1)
    ref = grey[onset - first]
    scored = grey[onset - first :]
    change = np.abs(scored - ref)
    if variant == "normalised":
        previous = grey[onset - first - 1 : -1] if onset > 0 else np.concatenate([grey[:1], grey[:-1]])
        change = (change + 1.0) / (np.abs(scored - previous) + 1.0)
    curve = empty_curve(frames.shape[0])
    curve[onset : offset + 1] = change.mean(axis=1, dtype=np.float64)
    return curve


def spot_apex(frames, onset: int, offset: int, *, variant: str = "absolute", mask=None) -> int:
    """Clip-relative apex in ``[onset, offset]``: the first argmax of :func:`score_curve`."""
    return apex_from_curve(score_curve(frames, onset, offset, variant=variant, mask=mask), onset, offset)
