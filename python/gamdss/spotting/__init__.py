"""Apex-spotting baselines: find the apex of a clip from its annotated onset and offset.

Each method is a module with ``spot_apex(frames, onset, offset, ...) -> int`` (clip-relative
apex in ``[onset, offset]``) and ``score_curve(frames, onset, offset, ...) -> float64 [T]``
(NaN outside ``[onset, offset]``; the apex is its first maximum). Frames are uint8
``[T, H, W, 3]`` RGB or ``[T, H, W]`` grey face crops (numpy arrays or torch tensors).

- ``midpoint``: ``floor((onset + offset) / 2)``.
- ``frame_difference``: largest mean absolute grey difference from the onset frame.
- ``frequency``: Li, Huang & Zhao's high-pass 3-D FFT energy of LBP images.
- ``optical_flow``: largest Farneback flow magnitude from the onset frame.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from . import frame_difference, frequency, midpoint, optical_flow
from ._frames import apex_from_curve

SPOTTERS: dict[str, ModuleType] = {
    "midpoint": midpoint,
    "frame_difference": frame_difference,
    "frequency": frequency,
    "optical_flow": optical_flow,
}


def _method(method: str) -> ModuleType:
    try:
        return SPOTTERS[method]
    except KeyError:
        raise ValueError(f"unknown spotting method {method!r}; expected one of {sorted(SPOTTERS)}") from None


# Methods whose window depends on the frame rate.
USES_FPS = frozenset({"frequency"})


def _options(method: str, fps: float, options: dict) -> dict:
    return {**options, "fps": fps} if method in USES_FPS else dict(options)


def spot_apex(method: str, frames, onset: int, offset: int, *, fps: float = 200.0, **options) -> int:
    """The apex (clip-relative, in ``[onset, offset]``) found by ``method`` (a key of
    :data:`SPOTTERS`). ``fps`` goes to the methods that need it (``frequency``); ``options``
    to the method (e.g. ``variant="normalised"``, ``mask=``; an unknown one is a TypeError)."""
    return _method(method).spot_apex(frames, onset, offset, **_options(method, fps, options))


def score_curve(method: str, frames, onset: int, offset: int, *, fps: float = 200.0, **options) -> np.ndarray:
    """float64 ``[T]``: ``method``'s per-frame score, NaN outside ``[onset, offset]``."""
    return _method(method).score_curve(frames, onset, offset, **_options(method, fps, options))


__all__ = ["SPOTTERS", "spot_apex", "score_curve", "apex_from_curve"]
