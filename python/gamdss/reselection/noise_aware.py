"""Noise-aware keyframe correction: move an annotated apex only where the clip's evidence
exceeds its own noise, and say how confident each move is.

Why not the maximum distance alone: among candidates whose distances differ by less than
the noise the maximum is arbitrary, a blink or a slow head drift produces larger distances
than a micro-expression, and no distance maximum can localise an onset or offset (every
neutral frame is equally far from the apex). On generated clips with known keyframes
(``gamdss bench keyframes``) the paper's rule moved accurate annotations and made onsets
and offsets worse.

Per clip (frames uint8 ``[T, H, W, 3]`` RGB or ``[T, H, W]`` grey):

1. Grey levels, box-averaged to about 48 px (less sensor noise and JPEG blocking).
2. Neutral reference ``N``: the mean of the frames of the ``reference_ms`` before the
   annotated onset.
3. Each frame minus ``N``, less what a global similarity motion (shift, rotation, scale)
   and a global brightness gain and offset explain: the least-squares fit of
   ``x_t - N ~ J theta_t`` with ``J = [dN/dx, dN/dy, rotation, scale, 1, N]`` (a first-order
   image registration, one solve for all frames). Head drift and flicker go; a local
   skin movement stays.
4. Evidence ``E(t)``: the sum of the squared residuals outside the eye regions (ellipses
   around the eyes MTCNN finds on the annotated onset frame; the fit above is weighted the
   same way),
   so that a blink is neither evidence nor spoils the fit.
5. Noise floor ``sigma``: the robust sd of ``E``'s frame-to-frame noise, from its second
   differences (``1.4826 MAD / sqrt(6)``), from the clip itself. A frame identical to the one
   before it (a damaged frame repaired by repeating its neighbour, a frozen video's end, a
   frame rate raised by duplication) carries no noise of its own: the floor is measured on
   the curve without such repeats.
6. Apex: among candidates within ``apex_window_ms`` of the annotated apex (and inside the
   annotated onset..offset), the ones within ``tie_z sigma`` of the best are ties; the one
   nearest the annotation wins. It replaces the annotation only when its evidence exceeds
   the annotated apex's by more than ``move_z sigma``.

7. Offset (one-sided): with a neutral reference from the clip's last ``reference_ms`` (the
   clip must extend past the expression, as cached clips with a margin do), the same evidence
   ``E_end(t)``; its neutral level ``L`` is the median over the frames just before that
   reference. Both count distinct frames only (repeats left out, as for the floor): a
   reference and a level made of copies of one frame would have no noise, and every real
   frame would look far from neutral. An annotated offset whose evidence exceeds ``L`` by more than ``offset_z``
   sigma is still inside the expression: it moves later, to the first frame whose evidence
   is back within ``tie_z`` sigma of ``L``. An offset marked too late cannot be told from one
   marked right (the end of a gentle decay is below the noise), so it is never moved earlier.
   The end must be neutral: when the frames of the reference before the onset are further
   from the end reference (above ``L``) than half the apex is (the expression held to the
   clip's end, or another one there), the offset is kept and not assessed (confidence NaN).
8. Onset: kept as annotated. On the benchmark every onset rule tried (plateau edges of the
   evidence, in both directions) did worse than the annotation: a gentle rise stays below
   the noise for several frames after the true onset.

Confidence (per keyframe, in noise-floor sds): apex ``(E(best) - E(annotated)) / sigma``,
the evidence a move had (>= ``move_z`` for a move); offset ``(E_end(f) - L) / sigma`` (>=
``offset_z`` for a move); onset NaN (not assessed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from gamdss.data.preprocess import get_detector
from gamdss.op.packing import keyframes
from gamdss.settings.reselection import ReselectionSettings, preset

#: working resolution of the evidence, px (frames are box-averaged down to about this)
WORKING_SIZE = 48
#: Gaussian blur at the working size, px: a first-order registration follows sub-pixel head
#: motion only on image structure wider than a pixel
BLUR_SD = 1.0
#: fewest second differences of the evidence from which a noise floor is estimated; a clip with
#: fewer frames keeps its annotation (confidence NaN)
MIN_NOISE_SAMPLES = 8
#: half-axes of the eye ellipse left out of the evidence, in inter-ocular distances
EYE_HALF_WIDTH = 0.52
EYE_HALF_HEIGHT = 0.33


class Correction(NamedTuple):
    """Corrected keyframes of ``B`` clips (CPU tensors).

    onset, apex, offset: int64 ``[B]``, clip-relative frame indices.
    confidence: float64 ``[B, 3]`` (onset, apex, offset): evidence for the move in noise-floor
        sds; NaN where the keyframe was not assessed (onset; offset without neutral frames
        after it, or with ``move_offset`` off).
    noise_floor: float64 ``[B]``, sigma of each clip's evidence (squared grey levels).
    eyes_found: bool ``[B]``, whether the eye regions were found and left out.
    evidence: per clip a float64 ``[T]`` tensor of ``E(t)`` (NaN outside the frames used), or
        None unless requested.
    """

    onset: torch.Tensor
    apex: torch.Tensor
    offset: torch.Tensor
    confidence: torch.Tensor
    noise_floor: torch.Tensor
    eyes_found: torch.Tensor
    evidence: list[torch.Tensor] | None = None


def frames_needed(
    onset: int, apex: int, offset: int, fps: float, n_frames: int, settings: ReselectionSettings
) -> tuple[int, int]:
    """First and last frame (inclusive) that :func:`correct_keyframes` reads for one clip:
    from the neutral reference to the clip's end, whatever the settings (the noise floor is
    measured on all of them, so an offset-only setting cannot change the apex)."""
    return reference_span(onset, reference_frames(fps, settings))[0], n_frames - 1


def reference_span(onset: int, k: int) -> tuple[int, int]:
    """First and last frame (inclusive) of the neutral reference: the ``k`` frames just before
    the onset (frame 0 alone for an onset at 0). The onset itself is left out so that its
    evidence is a frame's like any other (a frame inside the reference is closer to it than
    an independent frame by the noise alone)."""
    if onset == 0:
        return 0, 0
    return max(0, onset - k), onset - 1


def reference_frames(fps: float, settings: ReselectionSettings) -> int:
    """Length of the neutral reference in frames: ``settings.reference_ms`` at ``fps``, rounded,
    at least 1."""
    return max(1, int(round(settings.reference_ms * fps / 1000.0)))


def apex_window_frames(fps: float, settings: ReselectionSettings) -> int:
    """Half-width of the apex search window in frames: ``settings.apex_window_ms`` at ``fps``,
    rounded; 0 (the apex stays where it was annotated) for a window under half a frame."""
    return int(round(settings.apex_window_ms * fps / 1000.0))


def grey_pooled(frames: torch.Tensor) -> tuple[torch.Tensor, int]:
    """float32 ``[T, h, w]`` grey levels box-averaged by an integer factor to about
    :data:`WORKING_SIZE` px and blurred (:data:`BLUR_SD`), and the factor. ``frames``:
    ``[T, H, W, 3]``, ``[T, H, W, 1]`` or ``[T, H, W]``, uint8 or floating."""
    x, factor = box_grey(frames)
    if BLUR_SD > 0:
        x = gaussian_blur(x, BLUR_SD)
    return x, factor


def box_grey(frames: torch.Tensor) -> tuple[torch.Tensor, int]:
    """float32 ``[T, H // f, W // f]``: the mean over each ``f x f`` pixel block and the
    channels (the last rows and columns that fill no block are left out), and ``f``, the
    integer factor that brings ``min(H, W)`` nearest :data:`WORKING_SIZE` (at least 1).

    With ``f > 1``, one frame at a time, converted to float32 and averaged by OpenCV's area
    resize (an integer factor makes it the exact block mean): on 224 px frames 5x faster than
    converting the whole clip and reducing it with torch (about 40 of a clip's 100 ms of
    correction saved), and one float32 frame in memory instead of the clip. With ``f == 1``
    only the channels are averaged, over the whole clip at once (faster there)."""
    clip = frames.detach().cpu()
    if clip.dtype not in _NUMPY_DTYPES:
        clip = clip.to(torch.float32)  # bfloat16, float8...: numpy has no such type
    if clip.dim() == 3:
        clip = clip[..., None]
    n, height, width = clip.shape[:3]
    factor = max(1, int(round(min(height, width) / WORKING_SIZE)))
    if factor == 1:
        return clip.to(torch.float32).mean(dim=-1), factor
    a = clip.numpy()
    h, w = height // factor, width // factor
    out = np.empty((n, h, w), dtype=np.float32)
    for i in range(n):
        block = a[i, : h * factor, : w * factor].astype(np.float32)
        out[i] = cv2.resize(block, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, -1).mean(axis=2)
    return torch.from_numpy(out), factor


_NUMPY_DTYPES = (
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
    torch.float16,
    torch.float32,
    torch.float64,
)


def gaussian_blur(x: torch.Tensor, sd: float) -> torch.Tensor:
    """``x`` float32 ``[T, h, w]`` blurred by a separable Gaussian of ``sd`` px (edges repeated)."""
    radius = max(1, int(math.ceil(3 * sd)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sd) ** 2)
    k = k / k.sum()
    y = F.pad(x[:, None], (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    return F.conv2d(y, k.view(1, 1, -1, 1))[:, 0]


def eye_weights(shape: tuple[int, int], eyes_px: np.ndarray | None, factor: int) -> torch.Tensor:
    """float32 ``[h, w]``: 0 inside the two eye ellipses, 1 elsewhere (all 1 without eyes).
    ``eyes_px``: ``[2, 2]`` (x, y) eye centres in full-resolution pixels."""
    h, w = shape
    weights = torch.ones((h, w), dtype=torch.float32)
    if eyes_px is None:
        return weights
    eyes = np.asarray(eyes_px, dtype=np.float64) / factor
    d = float(np.linalg.norm(eyes[1] - eyes[0]))
    ys = torch.arange(h, dtype=torch.float64)[:, None] + 0.5
    xs = torch.arange(w, dtype=torch.float64)[None, :] + 0.5
    for cx, cy in eyes:
        inside = ((xs - cx) / (EYE_HALF_WIDTH * d)) ** 2 + ((ys - cy) / (EYE_HALF_HEIGHT * d)) ** 2 < 1.0
        weights[inside] = 0.0
    return weights


def registered_residual(x: torch.Tensor, ref: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``x - ref`` (float32 ``[T, h, w]`` minus ``[h, w]``) less its weighted least-squares fit
    by a global shift, rotation, scale, brightness offset and gain (first-order in the motion)."""
    h, w = ref.shape
    gy, gx = torch.gradient(ref)
    ys = torch.arange(h, dtype=torch.float32)[:, None] - h / 2 + 0.5
    xs = torch.arange(w, dtype=torch.float32)[None, :] - w / 2 + 0.5
    basis = torch.stack([gx, gy, gx * xs + gy * ys, gy * xs - gx * ys, torch.ones_like(ref), ref], -1)
    jac = basis.reshape(-1, 6).to(torch.float64)
    diff = (x - ref[None]).reshape(x.shape[0], -1).to(torch.float64)
    jw = jac * weights.reshape(-1, 1).to(torch.float64)
    normal = jw.T @ jac + 1e-9 * torch.eye(6, dtype=torch.float64) * jw.square().sum().clamp_min(1.0)
    theta = torch.linalg.solve(normal, jw.T @ diff.T)  # [6, T]
    return (diff - (jac @ theta).T).reshape(x.shape).to(torch.float32)


def distinct_frames(x: torch.Tensor) -> np.ndarray:
    """bool ``[T]``: which frames of ``x`` (``[T, h, w]``) differ from the frame before them
    (the first frame always counts). A repeat is an exact copy, as a repaired damaged frame, a
    frozen video or a duplicated frame is: it adds no independent sensor noise."""
    keep = np.ones(int(x.shape[0]), dtype=bool)
    if x.shape[0] > 1:
        keep[1:] = (x[1:] != x[:-1]).flatten(1).any(dim=1).numpy()
    return keep


def noise_floor(evidence: np.ndarray) -> float:
    """Robust sd of a curve's frame-to-frame noise, never 0: ``1.4826 MAD / sqrt(6)`` of its
    second differences (a smooth rise or fall of the curve cancels there; independent noise
    of sd ``s`` per frame gives second differences of sd ``sqrt(6) s``). NaN when the curve
    has fewer than :data:`MIN_NOISE_SAMPLES` second differences: no estimate, no move."""
    if evidence.size < MIN_NOISE_SAMPLES + 2:
        return float("nan")
    d = np.diff(evidence, n=2)
    mad = float(np.median(np.abs(d - np.median(d))))
    return max(1.4826 * mad / math.sqrt(6.0), float(np.abs(evidence).max()) * 1e-6, 1e-12)


def select_apex(
    evidence: np.ndarray, annotated: int, lo: int, hi: int, sigma: float, settings: ReselectionSettings
) -> tuple[int, float]:
    """The apex among ``lo..hi`` (inclusive) and its confidence (see the module docstring);
    the annotation and NaN when ``sigma`` is NaN (too few frames to know the noise)."""
    if not math.isfinite(sigma):
        return annotated, float("nan")
    segment = evidence[lo : hi + 1]
    best = float(np.max(segment))
    ties = np.flatnonzero(segment >= best - settings.tie_z * sigma) + lo
    pick = int(ties[np.argmin(np.abs(ties - annotated))])  # argmin: the earlier of two equidistant
    gain = (evidence[pick] - evidence[annotated]) / sigma
    return (pick if gain > settings.move_z else annotated), float(max(gain, 0.0))


def evidence_curve(x: torch.Tensor, ref: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
    """float64 ``[T]``: the weighted residual energy of each frame of ``x`` (``[T, h, w]``)
    against ``ref`` after :func:`registered_residual`, squared grey levels."""
    resid = registered_residual(x, ref, weights)
    return (resid.square() * weights[None]).flatten(1).sum(dim=1).to(torch.float64).numpy()


def correct_offset(
    x: torch.Tensor,
    apex: int,
    offset: int,
    k: int,
    weights: torch.Tensor,
    settings: ReselectionSettings,
    start: tuple[int, int] | None = None,
    distinct: np.ndarray | None = None,
) -> tuple[int, float]:
    """Step 7 of the module docstring on grey frames ``x`` (``[T, h, w]``, indices relative to
    ``x``): the offset and its confidence (NaN when the clip has too few distinct frames after
    it, or when its end is not neutral). ``start``: first and last frame (inclusive) of the
    neutral reference before the onset. ``distinct``: bool ``[T]``, the frames that are not
    repeats of the one before (:func:`distinct_frames`; default: computed from ``x``); the end
    reference, the level and the noise floor use those only. The end reference must be nearer
    that neutral start than the apex: the start's evidence against it above ``L`` at most
    half the apex's (head drift and flicker that the registration leaves add to both), else
    the clip's end holds the expression still or another one, and an offset measured against
    it would move late."""
    if distinct is None:
        distinct = distinct_frames(x)
    m = max(2, k)
    after = np.flatnonzero(distinct[offset + 1 :]) + offset + 1
    if after.size < k + m:
        return offset, float("nan")
    ref_frames, level_frames = after[-k:], after[-k - m : -k]
    end_ref = x[torch.from_numpy(ref_frames)].mean(dim=0)
    curve = evidence_curve(x[apex:], end_ref, weights)
    sigma = noise_floor(curve[distinct[apex:]])
    if not math.isfinite(sigma):
        return offset, float("nan")
    level = float(np.median(curve[level_frames - apex]))
    if start is not None:
        before = evidence_curve(x[start[0] : start[1] + 1], end_ref, weights)
        if float(np.median(before)) - level > 0.5 * (curve[0] - level):
            return offset, float("nan")
    confidence = max(0.0, (curve[offset - apex] - level) / sigma)
    if confidence <= settings.offset_z:
        return offset, confidence
    back = np.flatnonzero(curve[offset - apex : int(ref_frames[0]) - apex] <= level + settings.tie_z * sigma)
    return (offset + int(back[0]) if back.size else offset), confidence


def correct_clip(
    frames: torch.Tensor,
    onset: int,
    apex: int,
    offset: int,
    fps: float,
    settings: ReselectionSettings,
    eyes_px: np.ndarray | None = None,
) -> tuple[tuple[int, int, int], tuple[float, float, float], float, np.ndarray]:
    """One clip: (onset, apex, offset), their confidences, the apex noise floor and the apex
    evidence curve ``[T]`` (NaN outside the frames used). ``frames`` need only hold up to the
    last frame of :func:`frames_needed` (indices are the clip's)."""
    n = int(frames.shape[0])
    first, last = frames_needed(onset, apex, offset, fps, n, settings)
    x, factor = grey_pooled(frames[first : last + 1])
    k = reference_frames(fps, settings)
    ref_first, ref_last = reference_span(onset, k)
    ref = x[ref_first - first : ref_last - first + 1].mean(dim=0)
    weights = eye_weights(tuple(ref.shape), eyes_px, factor)
    curve = evidence_curve(x, ref, weights)
    evidence = np.full(n, np.nan)
    evidence[first : last + 1] = curve
    distinct = distinct_frames(x)
    sigma = noise_floor(curve[distinct])
    w = apex_window_frames(fps, settings)
    lo, hi = max(onset, apex - w), min(offset, apex + w)
    new_apex, apex_conf = select_apex(evidence, apex, lo, hi, sigma, settings)
    new_offset, offset_conf = offset, float("nan")
    if settings.move_offset:
        start = (ref_first - first, ref_last - first)
        new_offset, offset_conf = correct_offset(
            x, new_apex - first, offset - first, k, weights, settings, start, distinct
        )
        new_offset += first
    return (onset, new_apex, new_offset), (float("nan"), apex_conf, offset_conf), sigma, evidence


def _check_finite(clip: torch.Tensor, first: int, b: int, clip_ids: Sequence[str] | None) -> None:
    """``ValueError`` naming the clip and frame when a floating clip has NaN or inf at or after
    ``first`` (the frames the method reads)."""
    if not clip.is_floating_point():
        return
    bad = ~torch.isfinite(clip[first:].reshape(clip.shape[0] - first, -1)).all(dim=1)
    if bool(bad.any()):
        name = f"clip {b} ({clip_ids[b]!r})" if clip_ids is not None else f"clip {b}"
        raise ValueError(f"{name}: frame {first + int(torch.nonzero(bad)[0])} has non-finite values (NaN or inf)")


def detect_eyes(images: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    """Eye centres (x, y) ``[2, 2]`` of the most probable face in each RGB uint8 ``[H, W, 3]``
    image, by MTCNN (facenet-pytorch, bundled weights), or None where no face is found. One
    image per detector call, so a clip's eyes do not depend on the others it is batched with."""
    detector = get_detector("cpu")
    return [detector.eye_centres([image])[0] for image in images]


def _as_tensor(clip: Any) -> Any:
    """A numpy clip as a tensor (copied where torch cannot take it as it is: read-only, as a
    cache's memory map is, or with negative strides, as ``clip[::-1]`` has); anything else as
    it is, for the checks that follow."""
    if isinstance(clip, np.ndarray):
        usable = clip.flags.writeable and all(s >= 0 for s in clip.strides)
        return torch.from_numpy(clip if usable else np.array(clip))
    return clip


def correct_keyframes(
    clips: Sequence[torch.Tensor | np.ndarray],
    onset,
    apex,
    offset,
    fps,
    *,
    settings: ReselectionSettings | None = None,
    eyes: Sequence[np.ndarray | None] | None = None,
    clip_ids: Sequence[str] | None = None,
    return_evidence: bool = False,
) -> Correction:
    """Noise-aware correction of the annotated keyframes of each clip (module docstring).

    clips: ``B`` tensors or numpy arrays (such as :meth:`FrameCache.frames
        <gamdss.data.cache.FrameCache.frames>` returns), uint8 (or float, grey levels)
        ``[T_i, H, W, 3]`` RGB or ``[T_i, H, W]``.
    onset, apex, offset: ``B`` clip-relative indices with ``0 <= onset <= apex <= offset < T_i``.
    fps: frame rate, one number or ``B`` numbers (windows are in milliseconds).
    settings: a :class:`ReselectionSettings` with ``method="noise_aware"`` (default: the
        ``recommended`` preset).
    eyes: per clip ``[2, 2]`` eye centres (x, y) in frame pixels, or None to find them with
        MTCNN on each RGB uint8 clip's annotated onset frame (when ``settings.mask_eyes``;
        grey or float clips are not masked).
    """
    settings = preset("recommended") if settings is None else settings
    if settings.method != "noise_aware":
        raise ValueError(f"correct_keyframes runs the noise_aware method, settings have method={settings.method!r}")
    clips = [_as_tensor(c) for c in clips]
    for i, c in enumerate(clips):
        if not isinstance(c, torch.Tensor) or c.dim() not in (3, 4) or (c.dim() == 4 and c.shape[-1] not in (1, 3)):
            name = clip_ids[i] if clip_ids is not None else i
            raise ValueError(
                f"clip {name}: frames must be a [T, H, W, 3] or [T, H, W] tensor, got "
                f"{tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__}"
            )
        if min(c.shape[1:3]) < 2:
            name = clip_ids[i] if clip_ids is not None else i
            raise ValueError(
                f"clip {name}: frames of {c.shape[1]}x{c.shape[2]} px are too small to register; need at least 2x2"
            )
    lengths = torch.tensor([int(c.shape[0]) for c in clips], dtype=torch.int64)
    ann = keyframes(onset, apex, offset, lengths, clip_ids)
    rates = np.broadcast_to(np.asarray(fps, dtype=np.float64), (len(clips),))
    if not np.all(np.isfinite(rates) & (rates > 0)):
        raise ValueError(f"fps must be positive numbers, got {fps!r}")
    for b, (clip, (o, _a, _f)) in enumerate(zip(clips, ann.tolist())):
        _check_finite(clip, reference_span(o, reference_frames(float(rates[b]), settings))[0], b, clip_ids)
    if eyes is None:
        eyes = [None] * len(clips)
        if settings.mask_eyes and clips:
            for b, (clip, (o, _, _)) in enumerate(zip(clips, ann.tolist())):
                if clip.dim() == 4 and clip.shape[-1] == 3 and clip.dtype == torch.uint8:
                    eyes[b] = detect_eyes([clip[o].cpu().numpy()])[0]
    out = torch.empty((len(clips), 3), dtype=torch.int64)
    conf = torch.full((len(clips), 3), float("nan"), dtype=torch.float64)
    sigma = torch.empty(len(clips), dtype=torch.float64)
    curves = []
    # The per-clip tensors are small (48 px frames): extra intra-op threads cost more than they
    # give, several times over on a busy machine, so the loop runs on one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for b, (clip, (o, a, f)) in enumerate(zip(clips, ann.tolist())):
            keys, c, s, ev = correct_clip(clip.cpu(), o, a, f, float(rates[b]), settings, eyes[b])
            out[b] = torch.tensor(keys)
            conf[b], sigma[b] = torch.tensor(c, dtype=torch.float64), s
            curves.append(torch.from_numpy(ev))
    finally:
        torch.set_num_threads(before)
    found = torch.tensor([e is not None for e in eyes], dtype=torch.bool)
    return Correction(out[:, 0], out[:, 1], out[:, 2], conf, sigma, found, curves if return_evidence else None)
