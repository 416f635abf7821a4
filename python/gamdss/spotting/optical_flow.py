"""Optical-flow apex: the frame whose dense flow from the onset frame is largest.

For every frame ``t`` in ``[onset, offset]``: OpenCV's Farneback flow from the onset frame
to frame ``t`` on grey levels; the flow's median over the face (per component) is subtracted
to cancel global head motion; the score is the mean flow magnitude over the face (pixels).

The original (MEA-LAB-421 ``ApexSpotting_v2.py``) subtracts the mean flow of a patch on the
nose bridge (landmark 28), which moves with the head but not with the expression. Without
landmarks, the median over the face plays that role: a micro-expression moves a small part
of the face, so the median is the motion the whole face shares. It is also robust to the
large flow at the moving regions, which a mean would not be.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ._frames import apex_from_curve, as_frames, check_mask, check_range, empty_curve, grey_uint8


@dataclass(frozen=True)
class FarnebackParams:
    """``cv2.calcOpticalFlowFarneback`` parameters (OpenCV's documented defaults except a
    window suited to small face crops)."""

    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 9
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.1


def flows_from(reference: np.ndarray, targets: np.ndarray, params: FarnebackParams) -> np.ndarray:
    """float32 ``[N, H, W, 2]`` Farneback flow (dx, dy in pixels) from the uint8 grey
    ``reference [H, W]`` to each of ``targets [N, H, W]``."""
    out = np.empty(targets.shape + (2,), dtype=np.float32)
    for i, target in enumerate(targets):
        out[i] = cv2.calcOpticalFlowFarneback(
            reference,
            target,
            None,
            params.pyr_scale,
            params.levels,
            params.winsize,
            params.iterations,
            params.poly_n,
            params.poly_sigma,
            0,
        )
    return out


def score_curve(
    frames,
    onset: int,
    offset: int,
    *,
    mask=None,
    params: FarnebackParams | None = None,
    cancel_head_motion: bool = True,
) -> np.ndarray:
    """float64 ``[T]``: mean flow magnitude (pixels) from the onset frame over the face, after
    subtracting the median flow, for every frame in ``[onset, offset]``; NaN outside.

    frames: uint8 ``[T, H, W, 3]`` RGB or ``[T, H, W]`` grey. mask: optional bool ``[H, W]``
    face pixels (default: the whole frame).
    """
    frames = as_frames(frames)
    onset, offset = check_range(onset, offset, frames.shape[0])
    mask = check_mask(mask, frames.shape[1:3])
    params = params or FarnebackParams()
    grey = grey_uint8(frames[onset : offset + 1])
    flow = flows_from(np.ascontiguousarray(grey[0]), grey, params)  # [N, H, W, 2]
    flow = flow.reshape(flow.shape[0], -1, 2) if mask is None else flow[:, mask]
    if cancel_head_motion:
        flow = flow - np.median(flow, axis=1, keepdims=True)
    curve = empty_curve(frames.shape[0])
    curve[onset : offset + 1] = np.linalg.norm(flow, axis=2).mean(axis=1, dtype=np.float64)
    return curve


def spot_apex(
    frames,
    onset: int,
    offset: int,
    *,
    mask=None,
    params: FarnebackParams | None = None,
    cancel_head_motion: bool = True,
) -> int:
    """Clip-relative apex in ``[onset, offset]``: the first argmax of :func:`score_curve`."""
    curve = score_curve(frames, onset, offset, mask=mask, params=params, cancel_head_motion=cancel_head_motion)
    return apex_from_curve(curve, onset, offset)
