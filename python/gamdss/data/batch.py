"""What the DataLoader hands to the training device: raw keyframes plus the augmentation draws.

A :class:`KeyframeBatch` holds only what must be read per sample (the three uint8 keyframes
from the frame cache, and their cached flow fields when the input is flow) and the small
per-sample augmentation parameters drawn on the CPU (:class:`AugmentParams`). Resizing,
normalising and the geometric augmentation happen later, batched, on the training device
(:class:`gamdss.data.batch_transform.KeyframeTransform`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass
class AugmentParams:
    """Per-sample geometric augmentation, applied to the three keyframes alike (batched: each
    field is a CPU tensor with one value per sample).

    ``flip``: bool, mirror left-right first. ``angle``: float32 degrees, anticlockwise on
    screen, about the image centre (torchvision's ``rotate`` convention). ``top``/``left``:
    int64 pixels, the corner of the crop window in the zero-padded image (padding
    :func:`gamdss.data.batch_transform.crop_padding`). ``scale``: float32 zoom about the centre
    (1: none; the released code's augmentation draws no zoom, so it is always 1 there).
    """

    flip: Tensor
    angle: Tensor
    top: Tensor
    left: Tensor
    scale: Tensor

    def __len__(self) -> int:
        return int(self.flip.shape[0])

    @classmethod
    def stack(cls, items: list[AugmentParams]) -> AugmentParams:
        """One batched :class:`AugmentParams` from per-sample ones (0-d tensors)."""
        return cls(**{f.name: torch.stack([getattr(p, f.name) for p in items]) for f in fields(cls)})

    def pin_memory(self) -> AugmentParams:
        """A copy with every field in pinned memory (called by :meth:`KeyframeBatch.pin_memory`)."""
        return AugmentParams(**{f.name: getattr(self, f.name).pin_memory() for f in fields(self)})


@dataclass
class KeyframeBatch:
    """A batch of N samples as read from the caches (CPU, ready for ``pin_memory``).

    ``frames``: uint8 ``[N, 3, H, W, 3]`` (onset, apex, offset; HWC RGB; the cache's frame
    size), or a list of N uint8 ``[3, H_i, W_i, 3]`` when the batch mixes caches of different
    frame sizes. ``augment``: the draws, or None (no augmentation). ``flow``: float16
    ``[N, 2, 2, S, S]`` cached flow fields (rise = onset -> apex, fall = offset -> apex; dx, dy
    in pixels at S x S), or None for difference input.
    """

    frames: Tensor | list[Tensor]
    augment: AugmentParams | None = None
    flow: Tensor | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def pin_memory(self) -> KeyframeBatch:
        """A copy in pinned memory (the DataLoader calls this with ``pin_memory=True``)."""
        frames = [f.pin_memory() for f in self.frames] if isinstance(self.frames, list) else self.frames.pin_memory()
        return KeyframeBatch(
            frames=frames,
            augment=None if self.augment is None else self.augment.pin_memory(),
            flow=None if self.flow is None else self.flow.pin_memory(),
        )
