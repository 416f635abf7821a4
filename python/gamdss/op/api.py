"""``gamdss.reselect``: the GAMDSS keyframe reselection of a batch of clips."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from . import ops
from .ops import check_table_size
from .packing import (
    check_clip_list,
    check_distance,
    check_frame_values,
    check_scale,
    frame_index,
    keyframes,
    pack_clips,
    pack_spans,
)
from .result import Reselection
from .windows import PRESETS, preset_windows

WindowsFn = Callable[..., Reselection]


def reselect_with(
    backend: WindowsFn,
    clips,
    onset,
    apex,
    offset,
    *,
    lengths=None,
    lam_rise: float = 0.1,
    lam_fall: float = 0.1,
    window: str = "paper",
    distance: str = "l2",
    return_table: bool = False,
    clip_ids: Sequence[str] | None = None,
) -> Reselection:
    """Validate, pack and compute the preset windows, then call ``backend`` (the op's
    :func:`gamdss.op.ops.reselect_windows` or the reference's).

    A list of clips is packed as just the span of frames its windows cover (the op reads
    nothing else), so only those frames are copied; indices are shifted back afterwards.
    """
    lam_rise = check_scale(lam_rise, "lam_rise")
    lam_fall = check_scale(lam_fall, "lam_fall")
    if window not in PRESETS:
        raise ValueError(f"unknown window preset {window!r}; expected one of {PRESETS}")
    if isinstance(clips, torch.Tensor):
        packed, clip_list = pack_clips(clips, lengths), None
        clip_lengths = packed.lengths
    else:
        clip_list = check_clip_list(clips, lengths)
        clip_lengths = torch.tensor([c.shape[0] for c in clip_list], dtype=torch.int64)
    check_distance(distance, (clips if clip_list is None else clip_list[0]).dtype)
    ann = keyframes(onset, apex, offset, clip_lengths, clip_ids)
    windows = preset_windows(window, ann[:, 0], ann[:, 1], ann[:, 2], clip_lengths, lam_rise, lam_fall)
    if return_table:
        check_table_size(windows)
    first = windows[:, 0::2].amin(dim=1)
    last = windows[:, 1::2].amax(dim=1)
    if clip_list is None:
        check_frame_values(packed, clip_ids, first, last)  # only the frames the windows reach
        return backend(packed, ann, windows, distance=distance, return_table=return_table)
    packed = pack_spans(clip_list, first, last)
    check_frame_values(packed, clip_ids, packed_from=first)
    out = backend(packed, ann - first[:, None], windows - first[:, None], distance=distance, return_table=return_table)
    shift = first.to(out.onset.device)
    return out._replace(onset=out.onset + shift, apex=out.apex + shift, offset=out.offset + shift, windows=windows)


def reselect(
    clips,
    onset,
    apex,
    offset,
    *,
    lengths=None,
    lam_rise: float = 0.1,
    lam_fall: float = 0.1,
    window: str = "paper",
    distance: str = "l2",
    return_table: bool = False,
    clip_ids: Sequence[str] | None = None,
) -> Reselection:
    """Re-select the onset, apex and offset of each clip near its annotation.

    clips: a list of ``[T_i, ...]`` tensors or a ``[B, T, ...]`` tensor (then ``lengths``
        ``[B]`` may give each clip's real length); frames uint8, float16, bfloat16, float32
        or float64, any trailing shape (``3x224x224``, ``224x224x3``, channels-last...).
    onset, apex, offset: ``B`` clip-relative 0-based frame indices (sequences or int tensors).
    lam_rise, lam_fall: search scales (>= 0); ``R = int(lam * span)``.
    window: ``"paper"`` (default), ``"released"`` or ``"symmetric"`` (see
        :mod:`gamdss.op.windows`).
    distance: ``"l2"`` (default), ``"centered"`` (ignores a global brightness change between
        the two frames) or ``"released_uint8"`` (the released code's wrapped uint8
        difference, for reproduction only).
    return_table: also return every candidate pair's distance (refused with the size when the
        padded tables would exceed :data:`gamdss.op.ops.MAX_TABLE_BYTES`).
    clip_ids: optional names used in error messages.

    Floating frames with NaN or inf, or values so large that a distance would overflow its
    accumulator, are a ``ValueError`` naming the clip and frame (checked on the frames the
    op reads).

    Returns a :class:`gamdss.op.result.Reselection`: the rise pair maximises d(onset, apex)
    over the onset and apex windows, then the offset maximises d(apex, offset); exact ties
    go to the candidate closest to the annotation.

    Example::

        >>> out = gamdss.reselect(frames, onset=[10], apex=[40], offset=[70])
        >>> out.onset, out.apex, out.offset
    """
    return reselect_with(
        ops.reselect_windows,
        clips,
        onset,
        apex,
        offset,
        lengths=lengths,
        lam_rise=lam_rise,
        lam_fall=lam_fall,
        window=window,
        distance=distance,
        return_table=return_table,
        clip_ids=clip_ids,
    )


def frame_distance_curves(clips, reference, *, lengths=None, distance: str = "l2") -> torch.Tensor:
    """The frame-difference curves of the paper's Fig. 2: float64 ``[B, max T]``, the
    distance of every frame to each clip's ``reference`` frame (e.g. its onset), NaN past
    each clip's length."""
    packed = pack_clips(clips, lengths)
    check_distance(distance, packed.frames.dtype)
    check_frame_values(packed)
    ref = frame_index(reference, "reference", packed.lengths)
    return ops.frame_distances(packed, ref, distance=distance)
