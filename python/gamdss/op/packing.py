"""Turning user input into the packed layout of the ops, with validation that names the
culprit clip. Frames of a batch are packed along dim 0: clip ``b`` owns frames
``starts[b] .. starts[b] + lengths[b] - 1``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gamdss.settings.reselection import DISTANCES

SUPPORTED_DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class PackedClips:
    """frames ``[N, *frame_shape]`` (any supported dtype, any device); starts and lengths
    int64 ``[B]`` on the CPU."""

    frames: torch.Tensor
    starts: torch.Tensor
    lengths: torch.Tensor

    @property
    def batch_size(self) -> int:
        """B, the number of clips."""
        return int(self.starts.shape[0])


def clip_name(b: int, clip_ids: Sequence[str] | None) -> str:
    """How error messages name clip ``b`` of a batch: ``clip 3 ('sub01/EP02_01f')``, or ``clip 3``
    without ``clip_ids``."""
    return f"clip {b} ({clip_ids[b]!r})" if clip_ids is not None else f"clip {b}"


def pack_clips(clips, lengths=None) -> PackedClips:
    """Pack a list of ``[T_i, ...]`` tensors, or a ``[B, T, ...]`` tensor with optional
    ``lengths`` (``[B]``, each ``<= T``), into :class:`PackedClips`.

    A ``[B, T, ...]`` tensor is viewed without copying; a list is concatenated (a copy).
    """
    if isinstance(clips, torch.Tensor):
        if clips.dim() < 3:
            raise ValueError(
                f"clips tensor must be [B, T, ...] with at least one frame dimension, got shape {tuple(clips.shape)}"
            )
        _check_layout(clips, "the clips tensor")
        b, t = clips.shape[0], clips.shape[1]
        frames = clips.reshape(b * t, *clips.shape[2:]) if b * t > 0 else clips.new_empty((0, *clips.shape[2:]))
        starts = torch.arange(b, dtype=torch.int64) * t
        if lengths is None:
            lens = torch.full((b,), t, dtype=torch.int64)
        else:
            lens = _int_vector(lengths, "lengths", b)
            for i, n in enumerate(lens.tolist()):
                if not 1 <= n <= t:
                    raise ValueError(f"lengths[{i}] = {n} is outside [1, {t}] (the clips tensor has T={t})")
        _check_dtype(frames)
        return PackedClips(frames, starts, lens)
    clips = check_clip_list(clips, lengths)
    lens = torch.tensor([c.shape[0] for c in clips], dtype=torch.int64)
    return pack_spans(clips, torch.zeros_like(lens), lens - 1)


def check_clip_list(clips, lengths=None) -> list[torch.Tensor]:
    """Validate a list of ``[T_i, ...]`` clips: same frame shape, dtype and device, T_i >= 1."""
    if lengths is not None:
        raise ValueError("lengths is only for a padded [B, T, ...] tensor; a list of clips carries its own lengths")
    clips = list(clips)
    if not clips:
        raise ValueError("an empty list of clips has no frame shape; pass an empty [0, T, ...] tensor instead")
    first = clips[0]
    for i, c in enumerate(clips):
        if not isinstance(c, torch.Tensor):
            raise TypeError(f"clips[{i}] is a {type(c).__name__}, not a torch.Tensor")
        _check_layout(c, f"clips[{i}]")
        if c.dim() < 2 or c.shape[0] < 1:
            raise ValueError(f"clips[{i}] must be [T, ...] with T >= 1, got shape {tuple(c.shape)}")
        if c.shape[1:] != first.shape[1:] or c.dtype != first.dtype or c.device != first.device:
            raise ValueError(
                f"clips[{i}] has frames {tuple(c.shape[1:])} {c.dtype} on {c.device}, but clips[0] "
                f"has {tuple(first.shape[1:])} {first.dtype} on {first.device}"
            )
    _check_dtype(first)
    return clips


def pack_spans(clips: list[torch.Tensor], first: torch.Tensor, last: torch.Tensor) -> PackedClips:
    """Concatenate frames ``first[b] .. last[b]`` (inclusive, int64 ``[B]``) of each clip of a
    validated list: a copy of just those frames."""
    spans = [c[int(lo) : int(hi) + 1] for c, lo, hi in zip(clips, first.tolist(), last.tolist())]
    lens = last - first + 1
    starts = torch.cumsum(lens, 0) - lens
    return PackedClips(torch.cat(spans, 0), starts, lens)


def check_frame_values(
    packed: PackedClips,
    clip_ids: Sequence[str] | None = None,
    first: torch.Tensor | None = None,
    last: torch.Tensor | None = None,
    packed_from: torch.Tensor | None = None,
) -> None:
    """Floating frames must be finite and small enough that a distance cannot overflow its
    accumulator: ``max |x| <= sqrt(finfo(float32).max / D) / 2`` for 16- and 32-bit input
    (float32 sums of squares; the sum of differences is float64), ``max |x| <=
    sqrt(finfo(float64).max) / (2 D)`` for float64 input (where the centered distance squares
    the sum of differences), with ``D`` elements per frame. Otherwise ``ValueError``
    naming the clip and its clip-relative frame. Checked: frames ``first[b] .. last[b]``
    (int64 ``[B]``, clip-relative, inclusive; default every packed frame) of each clip, whose
    packed frames start at clip frame ``packed_from[b]`` (default 0). Integer frames are exact."""
    frames = packed.frames
    if not frames.is_floating_point() or frames.shape[0] == 0 or frames.is_meta:
        return
    d = max(1, frames[0].numel())
    acc = torch.float64 if frames.dtype == torch.float64 else torch.float32
    bound = (torch.finfo(acc).max / d) ** 0.5 / 2 if acc == torch.float32 else torch.finfo(acc).max ** 0.5 / (2 * d)
    origin = torch.zeros_like(packed.starts) if packed_from is None else packed_from.to("cpu", torch.int64)
    lo = origin if first is None else first.to("cpu", torch.int64)
    hi = origin + packed.lengths - 1 if last is None else last.to("cpu", torch.int64)
    for b, (start, o, a, z) in enumerate(zip(packed.starts.tolist(), origin.tolist(), lo.tolist(), hi.tolist())):
        view = frames[start + a - o : start + z - o + 1].detach()
        if view.shape[0] == 0:
            continue
        per_frame = view.reshape(view.shape[0], -1).abs().amax(dim=1)
        bad = ~(per_frame <= bound)  # NaN compares false: caught too
        if not bool(bad.any()):
            continue
        i = int(torch.nonzero(bad)[0])
        if bool(torch.isfinite(view[i]).all()):
            why = (
                f"values up to {float(per_frame[i]):.3g}, beyond {bound:.3g}, the largest a {d}-element frame "
                f"may hold without overflowing {str(acc).replace('torch.', '')} distances; scale the frames or "
                f"pass float64"
            )
        else:
            why = "non-finite values (NaN or inf)"
        raise ValueError(f"{clip_name(b, clip_ids)}: frame {a + i} has {why}")


def _check_layout(frames: torch.Tensor, what: str) -> None:
    if frames.layout != torch.strided:
        raise ValueError(
            f"{what} is a {str(frames.layout).replace('torch.', '')} tensor; pass dense frames (e.g. .to_dense())"
        )


def _check_dtype(frames: torch.Tensor) -> None:
    if frames.dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"frames dtype {frames.dtype} is not supported; use one of {', '.join(str(d) for d in SUPPORTED_DTYPES)}"
        )


def int64_on_cpu(values: torch.Tensor, name: str) -> torch.Tensor:
    """An integer tensor as int64 on the CPU, its shape kept; ``TypeError`` naming ``name`` for
    floating, complex or boolean values (never truncated onto other frames)."""
    if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers, got a {values.dtype} tensor")
    return values.detach().to("cpu", torch.int64)


def _int_vector(values, name: str, batch: int) -> torch.Tensor:
    """Integer sequence or tensor -> int64 CPU ``[batch]``; rejects non-integers."""
    if isinstance(values, torch.Tensor):
        t = int64_on_cpu(values, name).reshape(-1)
    else:
        vals = list(values)
        for i, v in enumerate(vals):
            if isinstance(v, bool) or not hasattr(v, "__index__"):
                raise TypeError(f"{name}[{i}] = {v!r} is not an integer frame index")
        t = torch.tensor([int(v) for v in vals], dtype=torch.int64)
    if t.numel() != batch:
        raise ValueError(f"{name} has {t.numel()} values for a batch of {batch} clips")
    return t


def keyframes(onset, apex, offset, lengths: torch.Tensor, clip_ids: Sequence[str] | None = None) -> torch.Tensor:
    """Validated annotations: int64 CPU ``[B, 3]`` (onset, apex, offset).

    Raises ``ValueError`` naming the clip and values unless
    ``0 <= onset <= apex <= offset <= T-1``.
    """
    b = int(lengths.shape[0])
    if clip_ids is not None and len(clip_ids) != b:
        raise ValueError(f"clip_ids has {len(clip_ids)} entries for a batch of {b} clips")
    o = _int_vector(onset, "onset", b)
    a = _int_vector(apex, "apex", b)
    f = _int_vector(offset, "offset", b)
    bad = ~((0 <= o) & (o <= a) & (a <= f) & (f <= lengths - 1))
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{clip_name(i, clip_ids)}: onset={int(o[i])}, apex={int(a[i])}, offset={int(f[i])} "
            f"violates 0 <= onset <= apex <= offset <= T-1 with T={int(lengths[i])}"
            + (f" ({int(bad.sum())} clips are invalid)" if int(bad.sum()) > 1 else "")
        )
    return torch.stack([o, a, f], dim=1)


def frame_index(values, name: str, lengths: torch.Tensor, clip_ids: Sequence[str] | None = None) -> torch.Tensor:
    """Validated clip-relative frame indices: int64 CPU ``[B]`` inside ``[0, T-1]``."""
    t = _int_vector(values, name, int(lengths.shape[0]))
    bad = (t < 0) | (t > lengths - 1)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(f"{clip_name(i, clip_ids)}: {name}={int(t[i])} is outside [0, T-1] with T={int(lengths[i])}")
    return t


def check_scale(value: float, name: str) -> float:
    """``value`` as a float; ``TypeError`` unless it is an int or float (not a bool),
    ``ValueError`` unless it is finite and ``>= 0`` (both naming ``name``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_distance(distance: str, dtype: torch.dtype) -> None:
    """``ValueError`` unless ``distance`` is one of :data:`~gamdss.settings.reselection.DISTANCES`
    and, for ``released_uint8``, the frames' ``dtype`` is uint8."""
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; expected one of {DISTANCES}")
    if distance == "released_uint8" and dtype != torch.uint8:
        raise ValueError(
            f"distance 'released_uint8' reproduces the released code's uint8 wrap-around "
            f"and needs uint8 frames, got {dtype}"
        )
