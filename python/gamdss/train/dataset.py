"""Training samples from frame caches, and the torch Dataset that feeds the keyframes.

Data flow: frame caches -> :func:`build_samples` (protocol labels and subject keys, the
keyframes to use per clip from a reselection table computed once beforehand) ->
:class:`KeyframeDataset` (reads three frames per clip from the memory-mapped cache, resizes,
normalises, augments). Nothing is reselected inside ``__getitem__``.

Augmentation (train only) follows the released code: RandomHorizontalFlip(0.5),
RandomRotation(+-3 deg, nearest, fill 0), RandomCrop(size, padding=15, zero fill) at 224x224
(the padding scales with the image size, ``round(15 * size / 224)``, so that a 64x64 run shifts
as far relative to the face as the released code does), applied with
**one** random draw to all three keyframes so they keep the same geometry. For difference
input it acts on the normalised frames (fill 0 = the ImageNet mean colour, as in the released
code); for flow input on the uint8 frames before the flow is computed. The draws come from a
generator seeded by (fold seed, epoch, sample index): the same sample in the same epoch gets
the same augmentation whatever the loading order or worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gamdss.data.cache import FrameCache
from gamdss.train.seeds import derive_seed

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_PADDING = 15  # pixels at REFERENCE_SIZE
REFERENCE_SIZE = 224
MAX_ROTATION_DEG = 3.0

Keyframes = tuple[int, int, int]


@dataclass(frozen=True)
class Sample:
    """One labelled clip of a LOSO run.

    ``key``: ``<dataset>:<clip_id>``, unique across the run's caches. ``cache_index``: position of
    its cache in ``data.caches``. ``subject``: the protocol's subject key (the LOSO group).
    ``label``: protocol class id. ``annotated``/``reselected``: clip-relative (onset, apex,
    offset) indices; ``reselected`` is None when reselection is off. ``sha256``: the cache
    entry's digest of the clip's pixels (part of the run's data fingerprint).
    """

    key: str
    cache_index: int
    clip_id: str
    dataset: str
    subject: str
    emotion: str
    label: int
    annotated: Keyframes
    reselected: Keyframes | None = None
    sha256: str = ""

    def keyframes(self, use_reselected: bool) -> Keyframes:
        return self.reselected if (use_reselected and self.reselected is not None) else self.annotated


def build_samples(
    caches: Sequence[FrameCache], protocol: Any, reselected: Mapping[tuple[int, str], Keyframes] | None = None
) -> tuple[list[Sample], list[dict[str, str]]]:
    """Labelled samples of all ``caches`` under ``protocol`` (a ``gamdss.data.protocols.Protocol``).

    ``reselected`` maps (cache index, clip id) to reselected keyframes. Returns (samples,
    dropped) where ``dropped`` lists the clips the protocol leaves out (``key``, ``emotion``,
    ``reason``). Raises ``ValueError`` naming the cache when its dataset is not one of the
    protocol's datasets, or when two caches hold the same clip key.
    """
    samples: list[Sample] = []
    dropped: list[dict[str, str]] = []
    seen: set[str] = set()
    allowed = set(getattr(protocol, "datasets", ()) or ())
    for ci, cache in enumerate(caches):
        for e in cache.entries:
            if allowed and e.dataset not in allowed:
                raise ValueError(
                    f"cache {cache.root}: clip {e.clip_id} is from dataset {e.dataset!r}, "
                    f"not one of protocol {getattr(protocol, 'name', protocol)!r}'s datasets "
                    f"{sorted(allowed)}"
                )
            key = f"{e.dataset}:{e.clip_id}"
            if key in seen:
                raise ValueError(f"cache {cache.root}: clip {key} is also in an earlier cache")
            seen.add(key)
            label = protocol.sample_label(e.dataset, e.clip_id, e.emotion, e.meta)
            if label is None:
                dropped.append({"key": key, "emotion": e.emotion, "reason": "not in the protocol's classes"})
                continue
            samples.append(
                Sample(
                    key=key,
                    cache_index=ci,
                    clip_id=e.clip_id,
                    dataset=e.dataset,
                    subject=protocol.subject_key(e.dataset, e.subject),
                    emotion=e.emotion,
                    label=int(label),
                    annotated=(e.onset_index, e.apex_index, e.offset_index),
                    reselected=None if reselected is None else tuple(reselected[(ci, e.clip_id)]),
                    sha256=e.sha256,
                )
            )
    return samples, dropped


def _resize(frames: torch.Tensor, size: int) -> torch.Tensor:
    """float [K, 3, H, W] -> [K, 3, size, size] (bilinear with antialiasing, like PIL's)."""
    if frames.shape[-2:] == (size, size):
        return frames
    return torch.nn.functional.interpolate(
        frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )


def crop_padding(size: int) -> int:
    """Zero padding of the random crop for ``size``-pixel frames: 15 at 224, scaled."""
    return int(round(CROP_PADDING * size / REFERENCE_SIZE))


def augment(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The released code's geometric augmentation, one draw for all frames.

    ``frames``: [K, C, H, W] (float or uint8). Returns the same shape and dtype.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    h, w = frames.shape[-2:]
    if torch.rand((), generator=generator) < 0.5:
        frames = torch.flip(frames, dims=[-1])
    angle = float((torch.rand((), generator=generator) * 2 - 1) * MAX_ROTATION_DEG)
    frames = TF.rotate(frames, angle, interpolation=InterpolationMode.NEAREST, fill=0)
    p = crop_padding(w)
    padded = torch.nn.functional.pad(frames, (p, p, p, p), value=0)
    top = int(torch.randint(0, 2 * p + 1, (), generator=generator))
    left = int(torch.randint(0, 2 * p + 1, (), generator=generator))
    return padded[..., top : top + h, left : left + w].contiguous()


class KeyframeDataset(torch.utils.data.Dataset):
    """Onset, apex and offset frames of each sample.

    Item ``i`` is ``(frames, label, i)``:

    - ``input_kind="difference"``: float32 ``[3, 3, S, S]`` (onset, apex, offset; RGB; ImageNet
      normalised), S = ``image_size``;
    - ``input_kind="flow"``: uint8 ``[3, S, S, 3]`` (onset, apex, offset; HWC RGB), for
      ``gamdss.models.inputs.motion_inputs(..., kind="flow")``.

    ``use_reselected`` chooses each sample's reselected keyframes (training subjects) or the
    annotated ones. Caches are opened lazily from ``cache_roots`` so the dataset pickles
    cheaply into worker processes. Call :meth:`set_epoch` before each epoch when augmenting.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        cache_roots: Sequence[str | Path],
        *,
        image_size: int,
        input_kind: str = "difference",
        use_reselected: bool = False,
        augment: bool = False,
        seed: int = 0,
    ):
        if input_kind not in ("difference", "flow"):
            raise ValueError(f"input_kind must be 'difference' or 'flow', got {input_kind!r}")
        self.samples = list(samples)
        self.cache_roots = [str(r) for r in cache_roots]
        self.image_size = int(image_size)
        self.input_kind = input_kind
        self.use_reselected = bool(use_reselected)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.epoch = 0
        self._caches: list[FrameCache] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def keyframes(self, i: int) -> Keyframes:
        """The clip-relative (onset, apex, offset) that item ``i`` reads."""
        return self.samples[i].keyframes(self.use_reselected)

    def _cache(self, index: int) -> FrameCache:
        if self._caches is None:
            self._caches = [FrameCache(r) for r in self.cache_roots]
        return self._caches[index]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        s = self.samples[i]
        clip = self._cache(s.cache_index).frames(s.clip_id)
        idx = list(self.keyframes(i))
        raw = torch.from_numpy(np.ascontiguousarray(clip[idx]))  # uint8 [3, H, W, 3]
        frames = raw.permute(0, 3, 1, 2).float().div_(255.0)
        frames = _resize(frames, self.image_size)
        gen = None
        if self.augment:
            gen = torch.Generator().manual_seed(derive_seed("augment", self.seed, self.epoch, s.key))
        if self.input_kind == "difference":
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            frames = (frames - mean) / std
            if gen is not None:
                frames = augment(frames, gen)
            return frames.contiguous(), s.label, i
        pixels = frames.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
        if gen is not None:
            pixels = augment(pixels, gen)
        return pixels.permute(0, 2, 3, 1).contiguous(), s.label, i


def collate(batch: list[tuple[torch.Tensor, int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack items: frames [N, 3, ...], labels int64 [N], dataset indices int64 [N]."""
    frames = torch.stack([b[0] for b in batch])
    labels = torch.tensor([b[1] for b in batch], dtype=torch.int64)
    index = torch.tensor([b[2] for b in batch], dtype=torch.int64)
    return frames, labels, index
