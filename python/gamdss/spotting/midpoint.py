"""Midpoint apex: ``floor((onset + offset) / 2)``, the standard of SMIC and CAS(ME)^3 loaders.

A lower bound for the other spotters: it looks at no frame.
"""

from __future__ import annotations

import numpy as np

from ._frames import apex_from_curve, check_range, empty_curve


def midpoint_curve(n_frames: int, onset: int, offset: int) -> np.ndarray:
    """float64 ``[n_frames]``: ``-|t - (onset + offset) / 2|`` in ``[onset, offset]``, NaN
    outside. Its first maximum is the midpoint ``floor((onset + offset) / 2)``."""
    onset, offset = check_range(onset, offset, n_frames)
    curve = empty_curve(n_frames)
    t = np.arange(onset, offset + 1, dtype=np.float64)
    curve[onset : offset + 1] = -np.abs(t - (onset + offset) / 2)
    return curve


def spot_apex(frames, onset: int, offset: int) -> int:
    """``floor((onset + offset) / 2)``; ``frames`` (``[T, ...]``) only give the clip length."""
    n_frames = len(frames)
    onset, offset = check_range(onset, offset, n_frames)
    return (onset + offset) // 2


def score_curve(frames, onset: int, offset: int) -> np.ndarray:
    """:func:`midpoint_curve` of the clip; float64 ``[T]``."""
    return midpoint_curve(len(frames), onset, offset)


__all__ = ["spot_apex", "score_curve", "midpoint_curve", "apex_from_curve"]
