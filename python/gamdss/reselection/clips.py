"""Run a :class:`~gamdss.settings.reselection.ReselectionSettings` on clips in memory: the
one place that chooses between the paper's max-distance op, the same with the released code's
tie order (:mod:`gamdss.op.released_ties`; the op breaks ties toward the annotation) and the noise-aware
method (used by :func:`gamdss.reselection.run.reselect_cache` and ``gamdss bench keyframes``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from gamdss.op import released_ties
from gamdss.op.api import reselect
from gamdss.op.result import Reselection
from gamdss.reselection.noise_aware import correct_keyframes
from gamdss.settings.reselection import ReselectionSettings


class ClipsResult(NamedTuple):
    """Keyframes of ``B`` clips under one settings object (CPU tensors).

    keyframes: int64 ``[B, 3]`` clip-relative (onset, apex, offset).
    confidence: float64 ``[B, 3]``, evidence for each move in noise-floor sds (``noise_aware``);
        NaN where not assessed and for ``max_distance``.
    rise_distance, fall_distance: float64 ``[B]``, d(onset, apex) and d(apex, offset) of the
        chosen frames (``max_distance``); NaN for ``noise_aware``.
    """

    keyframes: torch.Tensor
    confidence: torch.Tensor
    rise_distance: torch.Tensor
    fall_distance: torch.Tensor


def reselect_clips(
    clips: Sequence[torch.Tensor] | torch.Tensor,
    onset,
    apex,
    offset,
    fps,
    settings: ReselectionSettings,
    *,
    lengths: Sequence[int] | None = None,
    clip_ids: Sequence[str] | None = None,
    eyes: Sequence[np.ndarray | None] | None = None,
    device: str = "cpu",
) -> ClipsResult:
    """Reselect the keyframes of ``clips`` (uint8 ``[T_i, H, W, 3]`` tensors, or one padded
    ``[B, T, H, W, 3]`` tensor with each clip's real length in ``lengths``, read without a
    copy by the max-distance op) from their annotated ``onset``, ``apex``, ``offset`` (``B``
    clip-relative indices) with ``settings``.

    ``fps`` (one number or ``B``) is used by ``noise_aware`` (its windows are in ms), ``eyes``
    too (see :func:`gamdss.reselection.noise_aware.correct_keyframes`); ``device`` by ``max_distance``
    (the op runs there; ``noise_aware`` runs on the CPU); ``ties="first_inserted"`` runs
    :func:`gamdss.op.released_ties.reselect` (the op, then the clips with ties again in exact
    arithmetic by the reference) there too.
    """
    nan = torch.full((len(clips),), float("nan"), dtype=torch.float64)
    if settings.method == "noise_aware":
        if isinstance(clips, torch.Tensor):  # the method works clip by clip: views of the padded clips
            real = lengths if lengths is not None else [clips.shape[1]] * len(clips)
            clips = [clip[:n] for clip, n in zip(clips, real)]
        out = correct_keyframes(clips, onset, apex, offset, fps, settings=settings, eyes=eyes, clip_ids=clip_ids)
        return ClipsResult(torch.stack([out.onset, out.apex, out.offset], dim=1), out.confidence, nan, nan.clone())
    run: Callable[..., Reselection] = reselect
    if settings.ties == "first_inserted":
        run = released_ties.reselect
    sel = run(
        clips.to(device) if isinstance(clips, torch.Tensor) else [c.to(device) for c in clips],
        onset,
        apex,
        offset,
        lengths=lengths,
        lam_rise=settings.lam_rise,
        lam_fall=settings.lam_fall,
        window=settings.window,
        distance=settings.distance,
        clip_ids=clip_ids,
    )
    keyframes = torch.stack([sel.onset, sel.apex, sel.offset], dim=1).cpu()
    confidence = torch.full((len(clips), 3), float("nan"), dtype=torch.float64)
    return ClipsResult(keyframes, confidence, sel.rise_distance.cpu(), sel.fall_distance.cpu())
