"""The result type of keyframe reselection."""

from __future__ import annotations

from typing import NamedTuple

import torch


class Reselection(NamedTuple):
    """Reselected keyframes of a batch of ``B`` clips, on the frames' device.

    onset, apex, offset: int64 ``[B]``, clip-relative frame indices.
    rise_distance: float64 ``[B]``, d(onset, apex) of the chosen pair.
    fall_distance: float64 ``[B]``, d(apex, offset) of the chosen pair.
    windows: int64 ``[B, 6]`` candidate windows (onset lo/hi, apex lo/hi, offset lo/hi), CPU.
    rise_table: float64 ``[B, max |O|, max |A|]`` or None; ``[b, i, j]`` is d(onset_lo + i,
        apex_lo + j), NaN where that pair is not a candidate (outside the windows or onset > apex).
    fall_table: float64 ``[B, max |F|]`` or None; ``[b, k]`` is d(apex, max(offset_lo + k, apex))
        (offset candidates before the chosen apex are replaced by it), NaN past the window.
    Distances are in the units of the frames (e.g. grey levels for uint8).
    """

    onset: torch.Tensor
    apex: torch.Tensor
    offset: torch.Tensor
    rise_distance: torch.Tensor
    fall_distance: torch.Tensor
    windows: torch.Tensor
    rise_table: torch.Tensor | None = None
    fall_table: torch.Tensor | None = None
