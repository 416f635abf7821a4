"""The batched device-side transform: resize, normalise and augment keyframes (and flow fields).

The released code's augmentation (train only): RandomHorizontalFlip(0.5), RandomRotation(+-3
deg, nearest, fill 0), RandomCrop(size, padding=15, zero fill) at 224x224 (the padding scales
with the image size, ``round(15 * size / 224)``), one draw for the three keyframes so they
keep the same geometry. :func:`draw_augment` makes those draws on the CPU, in the released
order, from a seeded generator; :func:`augment_one` is the per-sample reference (torchvision
``rotate``, then pad and crop); :class:`KeyframeTransform` applies the same draws to a whole
batch on the training device.

How the batch is augmented: flip, rotation and crop are all nearest-neighbour, so together
they only *select* a source pixel (or the fill) for every output pixel. The transform runs the
reference geometry once per sample on a plane holding each pixel's own index (flip,
``grid_sample`` with the grid torchvision builds, pad and crop), and then gathers every
channel of the three keyframes through that index map. The selection is the one the reference
makes on the pixels themselves, so the batched output equals the per-sample one (tests check
it against :func:`augment_one`).

Order, as in the per-sample path before it: uint8 -> float / 255 -> resize to S (bilinear,
antialiased; skipped when the cache is already S x S) -> difference input: normalise with
the ImageNet mean/std, then augment (fill 0 = the mean colour); flow input: round back to
uint8 values, augment (fill 0 = black), then normalise for the still frames.

Flow fields (float ``[2, S, S]``: dx, dy in pixels) go through the same index map (fill 0:
no motion), and their vectors through the linear part of the geometry: a flip negates dx,
a rotation by ``a`` degrees anticlockwise maps ``(dx, dy)`` to ``(cos a·dx + sin a·dy,
−sin a·dx + cos a·dy)`` (y points down), a zoom ``s`` multiplies them by ``s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from gamdss.data.batch import AugmentParams, KeyframeBatch
from gamdss.data.normalisation import IMAGENET_MEAN, IMAGENET_STD
from gamdss.data.resize import resize_frames, resize_uint8

__all__ = [
    "CROP_PADDING",
    "REFERENCE_SIZE",
    "MAX_ROTATION_DEG",
    "crop_padding",
    "draw_augment",
    "augment_one",
    "resize_frames",
    "resize_uint8",
    "sampling_index",
    "flow_vector_map",
    "KeyframeInputs",
    "KeyframeTransform",
]

CROP_PADDING = 15  # pixels at REFERENCE_SIZE
REFERENCE_SIZE = 224
MAX_ROTATION_DEG = 3.0


def crop_padding(size: int) -> int:
    """Zero padding of the random crop for ``size``-pixel frames: 15 at 224, scaled."""
    return int(round(CROP_PADDING * size / REFERENCE_SIZE))


def draw_augment(generator: torch.Generator, size: int) -> AugmentParams:
    """One sample's draws (0-d CPU tensors), in the released code's order: flip (p 0.5),
    angle in [-3, 3) degrees, crop top and left in [0, 2·pad] for ``size``-pixel frames."""
    flip = torch.rand((), generator=generator) < 0.5
    angle = (torch.rand((), generator=generator) * 2 - 1) * MAX_ROTATION_DEG
    p = crop_padding(size)
    top = torch.randint(0, 2 * p + 1, (), generator=generator)
    left = torch.randint(0, 2 * p + 1, (), generator=generator)
    return AugmentParams(flip=flip, angle=angle, top=top, left=left, scale=torch.tensor(1.0))


def augment_one(frames: Tensor, params: AugmentParams) -> Tensor:
    """The per-sample reference: ``frames`` [K, C, S, S] (float or uint8), one sample's draws
    (0-d tensors; ``scale`` must be 1). Returns the same shape and dtype."""
    if float(params.scale) != 1.0:
        raise ValueError("augment_one: the reference has no zoom (scale must be 1)")
    h, w = frames.shape[-2:]
    if bool(params.flip):
        frames = torch.flip(frames, dims=[-1])
    frames = TF.rotate(frames, float(params.angle), interpolation=InterpolationMode.NEAREST, fill=0)
    p = crop_padding(w)
    padded = F.pad(frames, (p, p, p, p), value=0)
    top, left = int(params.top), int(params.left)
    return padded[..., top : top + h, left : left + w].contiguous()


def _rotation_theta(params: AugmentParams) -> Tensor:
    """float32 [N, 2, 3]: the inverse affine matrices torchvision's ``rotate`` builds (its
    ``-angle`` convention, centre of the image, no shear), divided by the zoom."""
    rows = []
    for angle, scale in zip(params.angle.tolist(), params.scale.tolist()):
        rot = math.radians(-angle)
        c, s = math.cos(rot), math.sin(rot)
        rows.append([c / scale, s / scale, 0.0, -s / scale, c / scale, 0.0])
    return torch.tensor(rows, dtype=torch.float32).view(-1, 2, 3)


_FAR = 1.0e4  # a base-grid coordinate (pixels) that lands far outside the image for |angle| < 89 deg


def _window_grid(params: AugmentParams, size: int, device) -> Tensor:
    """float32 [N, S, S, 2]: torchvision ``rotate``'s sampling grid (pixel-centre base grid
    times the inverse matrix, normalised to [-1, 1]) at the pixels of each sample's crop
    window. Window rows and columns that fall in the crop's zero padding get a base
    coordinate of :data:`_FAR` pixels, so they sample outside the image (the fill).

    The products are written out elementwise, ``(bx·r00 + by·r10) + r20`` in float32 without a
    fused multiply-add: on the CPU this is bit for bit what torchvision's ``bmm`` gives (a
    test checks it), and it costs no matrix product per sample.
    """
    n = len(params)
    if n and float(params.angle.abs().max()) > 45.0:
        raise ValueError(f"augmentation angles must be within +-45 degrees, got {float(params.angle.abs().max())}")
    theta = _rotation_theta(params)  # CPU float32 [N, 2, 3]
    r = (theta.transpose(1, 2) / torch.tensor([0.5 * size, 0.5 * size], dtype=torch.float32)).to(device)
    p = crop_padding(size)
    offs = torch.arange(size, device=device)

    def base(start: Tensor) -> Tensor:  # [N, S] pixel-centre coordinates of the window's rows/columns
        pos = offs.view(1, size) + (start.to(device).view(n, 1) - p)
        centre = pos.float() - (size * 0.5 - 0.5)
        return centre.masked_fill_((pos < 0) | (pos >= size), _FAR)

    bx = base(params.left).view(n, 1, size)
    by = base(params.top).view(n, size, 1)
    grid = torch.empty(n, size, size, 2, device=device)
    for j in (0, 1):
        out = grid[..., j]
        torch.add(bx * r[:, 0, j].view(n, 1, 1), by * r[:, 1, j].view(n, 1, 1), out=out)
        out.add_(r[:, 2, j].view(n, 1, 1))
    return grid


def sampling_index(params: AugmentParams, size: int, device: torch.device | str = "cpu") -> Tensor:
    """int64 ``[N, S*S]``: for each output pixel of each sample, the flat index ``y*S + x`` of
    the source pixel the augmentation takes, or -1 where it fills. Computed on ``device``.

    ``grid_sample`` (nearest, zero padding) of a plane holding ``index + 1`` (mirrored
    left-right for flipped samples, as the reference flips first) does the rounding, so the
    choice is the one the reference's ``grid_sample`` makes on the pixels.
    """
    n = len(params)
    plane = torch.arange(1, size * size + 1, dtype=torch.float32, device=device).view(1, 1, size, size)
    chosen = torch.where(params.flip.to(device).view(n, 1, 1, 1), plane.flip(-1), plane)  # [N, 1, S, S]
    picked = F.grid_sample(chosen, _window_grid(params, size, device), mode="nearest", align_corners=False)
    return picked.view(n, size * size).long().sub_(1)


def flow_vector_map(params: AugmentParams, device: torch.device | str = "cpu") -> Tensor:
    """float32 ``[N, 2, 2]``: the matrix that maps a flow vector (dx, dy) of the source to
    the augmented sample's (flip first, then rotation and zoom; module doc)."""
    rad = params.angle.double() * (math.pi / 180.0)
    c, s = torch.cos(rad), torch.sin(rad)
    flip = torch.where(params.flip, -1.0, 1.0).double()
    scale = params.scale.double()
    a = torch.stack([torch.stack([c * flip, s], -1), torch.stack([-s * flip, c], -1)], -2)
    return (a * scale.view(-1, 1, 1)).float().to(device)


def _gather(planes: Tensor, index: Tensor, fill: float) -> Tensor:
    """``planes`` [N, P, S, S] (any dtype) through ``index`` [N, S*S] (-1: ``fill``)."""
    n, p, h, w = planes.shape
    idx = index.clamp(min=0).view(n, 1, h * w).expand(n, p, h * w)
    out = planes.reshape(n, p, h * w).gather(2, idx)
    return out.masked_fill_((index < 0).view(n, 1, h * w), fill).view(n, p, h, w)


@dataclass
class KeyframeInputs:
    """The model's inputs for a batch, on the training device.

    ``onset``/``apex``/``offset``: float32 ``[N, 3, S, S]``, RGB normalised with the ImageNet
    mean/std. ``rise_flow``/``fall_flow``: float32 ``[N, 2, S, S]`` (onset -> apex and offset
    -> apex; dx, dy in pixels at S x S) for flow input, else None.
    """

    onset: Tensor
    apex: Tensor
    offset: Tensor
    rise_flow: Tensor | None = None
    fall_flow: Tensor | None = None

    def motion(self) -> tuple[Tensor, Tensor]:
        """``(rise, fall)`` motion input: the flows, or apex − onset and apex − offset."""
        if self.rise_flow is not None and self.fall_flow is not None:
            return self.rise_flow, self.fall_flow
        return self.apex - self.onset, self.apex - self.offset


class KeyframeTransform:
    """Turn a :class:`~gamdss.data.batch.KeyframeBatch` into :class:`KeyframeInputs` on a device.

    ``image_size``: S. ``input_kind``: ``difference`` (fill of the augmentation: the mean
    colour) or ``flow`` (frames rounded to uint8 values after resizing, fill black; the batch
    must carry cached flow). ``mean``/``std``: RGB, 0-1 units. Pure function of the batch: no
    randomness here (the draws come with the batch).

    Frames already S x S (the usual case: the cache was made at the training size) are
    selected while still uint8, straight from their HWC layout, and normalised in one pass as
    ``(x - 255·mean) · (1 / (255·std))``, with the fill folded into the factor; this equals
    the reference's ``(x / 255 - mean) / std`` to float rounding (relative 1e-6).
    """

    def __init__(self, image_size: int, input_kind: str = "difference", mean=IMAGENET_MEAN, std=IMAGENET_STD):
        if input_kind not in ("difference", "flow"):
            raise ValueError(f"input_kind must be 'difference' or 'flow', got {input_kind!r}")
        self.image_size = int(image_size)
        self.input_kind = input_kind
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def _constants(self, device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """mean, std (0-1 units) and 255·mean, 1/(255·std): float32 [3] on ``device``."""
        mean = torch.tensor(self.mean, dtype=torch.float32, device=device)
        std = torch.tensor(self.std, dtype=torch.float32, device=device)
        m255 = torch.tensor([255.0 * m for m in self.mean], dtype=torch.float32, device=device)
        k = torch.tensor([1.0 / (255.0 * s) for s in self.std], dtype=torch.float32, device=device)
        return mean, std, m255, k

    def _select_uint8(self, frames: Tensor, index: Tensor | None, device) -> tuple[Tensor, Tensor | None]:
        """uint8 [N, 3, S, S, 3] HWC -> uint8 [N, 3, 3, S*S] (frame, channel, pixel) of the
        pixels ``index`` [N, S*S] selects (None: all, a view); and bool [N, S*S], where the
        pixel is real (not fill; None without ``index``)."""
        n, size = frames.shape[0], self.image_size
        planar = frames.to(device, non_blocking=True).view(n, 3, size * size, 3).transpose(2, 3)
        if index is None:
            return planar, None
        planes = planar.reshape(n, 9, size * size)  # one uint8 copy to planes: the gather then reads rows
        picked = planes.gather(2, index.clamp(min=0).view(n, 1, size * size).expand(n, 9, size * size))
        return picked.view(n, 3, 3, size * size), index >= 0

    def _resized(self, frames: Tensor | list[Tensor], device) -> Tensor:
        """float [N, 3, 3, S, S] resized frames: 0-1 units (difference) or rounded 0-255 (flow)."""
        items = list(frames) if isinstance(frames, Tensor) else frames
        out = []
        for f in items:
            x = f.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
            x = resize_frames(x, self.image_size)
            if self.input_kind == "flow":
                x = x.mul_(255.0).round_().clamp_(0, 255)
            out.append(x)
        return torch.stack(out)

    def __call__(self, batch: KeyframeBatch, device: torch.device | str = "cpu") -> KeyframeInputs:
        size = self.image_size
        device = torch.device(device)
        index = None if batch.augment is None else sampling_index(batch.augment, size, device)
        mean, std, m255, k = self._constants(device)
        frames = batch.frames
        if isinstance(frames, Tensor) and tuple(frames.shape[-3:-1]) == (size, size):
            n = frames.shape[0]
            x, valid = self._select_uint8(frames, index, device)
            if valid is not None and self.input_kind == "flow":
                x = x.masked_fill(~valid.view(n, 1, 1, size * size), 0)  # fill black
            factor = k.view(1, 3, 1)
            if valid is not None and self.input_kind == "difference":
                factor = factor * valid.view(n, 1, size * size)  # fill 0 = the mean colour
            out = torch.empty(n, 3, 3, size * size, dtype=torch.float32, device=device)
            x = out.copy_(x).sub_(m255.view(1, 1, 3, 1)).mul_(factor.view(-1, 1, 3, factor.shape[-1]))
            x = x.view(n, 3, 3, size, size)
        else:  # resize first (float), then normalise and select (the reference's order)
            x = self._resized(frames, device)
            n = x.shape[0]
            if self.input_kind == "difference":
                x = (x - mean.view(1, 1, 3, 1, 1)) / std.view(1, 1, 3, 1, 1)
                if index is not None:
                    x = _gather(x.reshape(n, 9, size, size), index, 0.0).view(n, 3, 3, size, size)
            else:
                if index is not None:
                    x = _gather(x.reshape(n, 9, size, size), index, 0.0).view(n, 3, 3, size, size)
                x = (x / 255.0 - mean.view(1, 1, 3, 1, 1)) / std.view(1, 1, 3, 1, 1)
        if self.input_kind == "difference":
            return KeyframeInputs(x[:, 0], x[:, 1], x[:, 2])
        if batch.flow is None:
            raise ValueError("KeyframeTransform: flow input needs a batch with cached flow (KeyframeDataset(flow=...))")
        flow = batch.flow.to(device, non_blocking=True).float().reshape(n, 4, size, size)
        if index is not None and batch.augment is not None:  # fill: no motion
            flow = _gather(flow, index, 0.0)
            a = flow_vector_map(batch.augment, device)  # [N, 2, 2]
            flow = torch.einsum("nij,npjhw->npihw", a, flow.view(n, 2, 2, size, size)).reshape(n, 4, size, size)
        return KeyframeInputs(x[:, 0], x[:, 1], x[:, 2], flow[:, 0:2].contiguous(), flow[:, 2:4].contiguous())
