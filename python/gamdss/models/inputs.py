"""Model inputs from the three keyframes: motion (difference frames or optical flow) and stills.

- :func:`motion_inputs` ``kind="difference"``: ``F_rise = apex − onset`` (Eq. 9) and
  ``F_fall = apex − offset`` (Eq. 10) of frames already normalised with the ImageNet mean/std,
  float32 ``[N, 3, H, W]`` (each value is the RGB difference in [0, 1] units divided by that
  channel's std). Computed in float, so there is no uint8 wrap-around.
- ``kind="flow"``: dense OpenCV flow (Farneback by default, or TV-L1: ``flow_method``;
  :mod:`gamdss.data.flow`) onset -> apex (rise) and offset -> apex (fall), float32 ``[N, 2, H, W]``: channel 0 the horizontal displacement (+ = right),
  channel 1 the vertical one (+ = down), in **pixels of the given frames divided by**
  ``flow_scale`` (default 1: plain pixels; micro-expression flow at 224x224 is mostly below
  a few pixels, so the values are O(1) like the difference frames). The flow ``d`` from A to B
  satisfies ``A(p) ≈ B(p + d)``: where content moved to from the resting frame to the apex.
  Frames are uint8 RGB ``[N, H, W, 3]`` (or ``[N, 3, H, W]``), or normalised float
  ``[N, 3, H, W]`` (un-normalised with ``mean``/``std`` and rounded to uint8 first); they
  are converted to grey with the ITU-R BT.601 weights OpenCV uses, vectorised; the flow
  itself is computed per sample on the CPU, at every call. Training computes it once per clip
  and keyframe pair instead (:mod:`gamdss.data.flow_cache`) and augments the cached fields
  (:mod:`gamdss.data.batch_transform`).
- :func:`still_inputs`: the resting frames of the spatial branch: onset for rise; offset
  (the paper) or apex (the released code) for fall.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gamdss.data.flow import FARNEBACK_DEFAULTS, compute_flow, farneback_flow, flow_params, rgb_to_grey
from gamdss.data.normalisation import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FARNEBACK_DEFAULTS",
    "motion_inputs",
    "still_inputs",
    "farneback_flow",
    "to_grey_uint8",
]


def _as_tensor(frames, name: str) -> Tensor:
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if not isinstance(frames, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(frames).__name__}")
    if frames.ndim != 4:
        raise ValueError(
            f"{name} must be a batch of frames [N, 3, H, W] or [N, H, W, 3], got shape {tuple(frames.shape)}"
        )
    return frames


def to_grey_uint8(frames, *, mean=IMAGENET_MEAN, std=IMAGENET_STD, name: str = "frames") -> Tensor:
    """Grey uint8 ``[N, H, W]`` (CPU) from RGB frames.

    uint8 frames may be ``[N, H, W, 3]`` (checked first) or ``[N, 3, H, W]``; float frames
    must be normalised ``[N, 3, H, W]`` (``x·std + mean`` gives [0, 1] RGB).
    Grey = 0.299 R + 0.587 G + 0.114 B, rounded.
    """
    frames = _as_tensor(frames, name).detach().cpu()
    if frames.dtype == torch.uint8:
        rgb = frames.float() if frames.shape[-1] == 3 else frames.permute(0, 2, 3, 1).float()
        if rgb.shape[-1] != 3:
            raise ValueError(f"{name}: uint8 frames must be [N, H, W, 3] or [N, 3, H, W], got {tuple(frames.shape)}")
    elif frames.is_floating_point():
        if frames.shape[1] != 3:
            raise ValueError(f"{name}: float frames must be normalised [N, 3, H, W], got {tuple(frames.shape)}")
        m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        rgb = ((frames.float() * s + m) * 255.0).round().clamp(0, 255).permute(0, 2, 3, 1)
    else:
        raise TypeError(f"{name}: frames must be uint8 or floating point, got {frames.dtype}")
    return rgb_to_grey(rgb)


def motion_inputs(
    onset,
    apex,
    offset,
    kind: str = "difference",
    *,
    flow_scale: float = 1.0,
    farneback: dict | None = None,
    flow_method: str = "farneback",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> tuple[Tensor, Tensor]:
    """``(rise_motion, fall_motion)`` from the onset, apex and offset frames of a batch.

    ``kind="difference"``: normalised float ``[N, 3, H, W]`` frames -> float32
    ``(apex − onset, apex − offset)`` on the frames' device. ``kind="flow"``: float32
    ``[N, 2, H, W]`` flows onset -> apex and offset -> apex (pixels / ``flow_scale``), on the
    device of ``apex`` when it is a tensor; ``flow_method``: ``farneback`` or ``tvl1``;
    ``farneback`` overrides that method's parameters (:data:`FARNEBACK_DEFAULTS`,
    :data:`gamdss.data.flow.TVL1_DEFAULTS`).
    """
    if kind == "difference":
        onset, apex, offset = (_as_tensor(t, n) for t, n in ((onset, "onset"), (apex, "apex"), (offset, "offset")))
        for t, n in ((onset, "onset"), (apex, "apex"), (offset, "offset")):
            if not t.is_floating_point():
                raise TypeError(
                    f"{n}: difference frames need normalised float frames "
                    f"(got {t.dtype}); normalise with the ImageNet mean/std first"
                )
            if t.shape != apex.shape:
                raise ValueError(f"{n} has shape {tuple(t.shape)}, apex {tuple(apex.shape)}")
        apex = apex.float()
        return apex - onset.float(), apex - offset.float()
    if kind == "flow":
        greys = [
            to_grey_uint8(t, mean=mean, std=std, name=n)
            for t, n in ((onset, "onset"), (apex, "apex"), (offset, "offset"))
        ]
        params = flow_params(flow_method, farneback)
        rise = compute_flow(greys[0], greys[1], flow_method, params) / float(flow_scale)
        fall = compute_flow(greys[2], greys[1], flow_method, params) / float(flow_scale)
        device = apex.device if isinstance(apex, Tensor) else torch.device("cpu")
        return rise.to(device), fall.to(device)
    raise ValueError(f"motion input kind must be 'difference' or 'flow', got {kind!r}")


def still_inputs(onset: Tensor, apex: Tensor, offset: Tensor, fall_still: str = "offset") -> tuple[Tensor, Tensor]:
    """Resting frames for the spatial branch: ``(onset, offset)`` (``fall_still="offset"``,
    the paper) or ``(onset, apex)`` (``"apex"``, the released code). Same tensors, no copy."""
    if fall_still == "offset":
        return onset, offset
    if fall_still == "apex":
        return onset, apex
    raise ValueError(f"fall_still must be 'offset' or 'apex', got {fall_still!r}")
