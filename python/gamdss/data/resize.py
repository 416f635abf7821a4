"""Resizing keyframes to the training size, as the input pipeline and the flow cache do it.

Bilinear with antialiasing (like PIL's), on float frames in 0-1 units; the flow path rounds
the result back to uint8 values (flow is computed on those).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_frames(frames: Tensor, size: int) -> Tensor:
    """float ``[..., C, H, W]`` -> ``[..., C, size, size]`` (bilinear with antialiasing, like
    PIL's); returned as is when already that size."""
    if frames.shape[-2:] == (size, size):
        return frames
    lead = frames.shape[:-3]
    out = F.interpolate(
        frames.reshape(-1, *frames.shape[-3:]),
        size=(size, size),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    return out.reshape(*lead, *out.shape[-3:])


def resize_uint8(frames: Tensor, size: int) -> Tensor:
    """uint8 HWC ``[..., H, W, 3]`` -> uint8 ``[..., size, size, 3]``: /255, :func:`resize_frames`,
    x255, rounded (the frames the flow path uses; the flow cache computes flow on these)."""
    if frames.shape[-3:-1] == (size, size):
        return frames
    x = frames.movedim(-1, -3).float().div_(255.0)
    x = resize_frames(x, size).mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return x.movedim(-3, -1).contiguous()
