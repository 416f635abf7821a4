"""Frequency-domain apex spotting of Li, Huang & Zhao (ICIP 2018, "Can micro-expression be
recognized based on single apex frame?"), our own vectorised implementation.

For every frame ``n`` of the clip:

1. LBP images of all frames (:mod:`gamdss.spotting.lbp`, ``[H-2, W-2]``).
2. The first and last LBP images are repeated ``half`` times before and after the clip, so
   every frame has a centred window of ``W = 2 * half + 1`` frames.
3. Each LBP image is cut into 6x6 blocks of ``b_h x b_w`` pixels,
   ``b = (size - 1) // 6`` as in the released code (the last rows/columns are not used).
4. Per block, a 3-D FFT of the ``[W, b_h, b_w]`` volume, ``fftshift`` (zero frequency in the
   centre), and an ideal high-pass: keep the coefficients far from the centre (see
   "Window and threshold").
5. The score of frame ``n`` is the sum of ``|F|`` of the kept coefficients over all 36 blocks.
   The apex is the argmax of the score within ``[onset, offset]``.

Window and threshold: the paper uses ``W = 61`` at 200 fps (305 ms) and ``d0 = 31 =
(W + 1) / 2`` frequency bins. We keep the duration: ``half = round(30 * fps / 200)`` (round
half up, at least 1), so 30, 60, 90 and 200 fps give W = 11, 19, 29 and 61. The threshold
is a distance in frequency bins, so its meaning depends on the block size as well: with the
paper's face crops (blocks of a few tens of pixels) the sphere of radius 31 keeps the
coefficients that oscillate fast in time *and* space, but with small crops it lies outside
the spectrum (blocks of 10 pixels reach at most ``sqrt(30**2 + 2 * 5**2) = 30.8`` bins): an
empty mask and a flat score. We therefore measure the distance per axis in units of that
axis' half-extent (``k / (n // 2)``, so the highest frequency of every axis is at about 1)
and keep the coefficients at normalised distance ``>= 31/30``, the paper's threshold over
its 30-bin temporal half-extent. At 200 fps this is the paper's temporal cut; it keeps the
same share of the spectrum at any frame rate and block size. ``d0=`` restores the paper's
threshold in bins.

Differences from the released MATLAB code (``apex_frame_spotting.m``):

- All 36 blocks are summed, as the paper states. The released code's "choose max 9 boxes"
  lines (``[B, I] = sort(fsum_1d, 'descend'); c = find(I <= 9); d = fsum_1d(c)``) do not
  pick the 9 largest blocks: ``c`` holds the *ranks* at which blocks 1-9 appear in the
  sorted order, and ``fsum_1d(c)`` then reads the blocks whose *index* equals those ranks,
  9 blocks chosen by a mix of rank and position. Its own comment says the paper uses all 36.
  ``top_k`` offers a true top-k alternative.
- The mask is centred on the zero frequency. The released code centres it one bin off in the
  two spatial axes (``fix(b/2)`` against fftshift's ``fix(b/2) + 1``, 1-based).
- Every frame is scored; the released code skips the last one.

What the score measures, and why it does not localise the apex (measured on clean clips: no
noise, JPEG, head motion or flicker). The LBP code of a pixel is piecewise constant in time.
Inside a window the DFT is circular, so one code change (a step, closed by the wrap-around)
and a change that comes back (a pulse) both put about the same energy into the high temporal
frequencies, wherever they lie in the window. The score of frame ``n`` is therefore close to
the number of pixels whose code is *not constant* over ``[n - half, n + half]``: its
correlation with that count over a clip is 0.95-0.99 (``tests/test_spotting.py``). Under
smooth motion a pixel's code changes when the intensity crosses its threshold, so a window
counts the pixels whose threshold lies in the intensity *range* it spans. Every window that
contains the apex spans the top of that range, so the score is a plateau over them, not a
peak at the apex; the argmax falls on one of those windows, ``|error| <= half``, decided by
texture details. Measured errors of the first argmax (frames; midpoint for comparison):

===========================================  ======  =====================  ================
clips                                        half    this module            midpoint
===========================================  ======  =====================  ================
test's linear clip, 64 px, 60 fps            9       -4 (seed 0), -2 (4)    0
5 linear clips, 64 px, 30-90 fps             5-14    -4, 7, -1, 3, 2        0, 5, -4, 6, 3
generator, 96 px, 60 fps, 8 seeds            9       mean 3.9, max 8        mean 1.9, max 5
generator, 96 px, 200 fps, 3 seeds           30      -15, 27, 0             1, 5, 1
generator, 160 px, 200 fps, 4 seeds          30      -14, 25, 4, 14         1, 5, 1, 17
same, paper's ``d0=31`` bins (26-px blocks)  30      17, 29, 8, 13          1, 5, 1, 17
===========================================  ======  =====================  ================

On the generator's faces the deformation reaches nearly every pixel, so almost every code
changes inside any window that holds the expression: the score varies by about 1% over
``[onset, offset]`` at 200 fps and the window of 61 frames spans most of a 30-60-frame
expression. Other readings of the description do not help: half or twice the window (mean
errors at 200 fps 8.3 and 7.3 frames at 96 px, 4.8 and 5.5 at 160 px; at best a third of the
clips within one frame, against half or more for the midpoint), the paper's threshold in bins (above;
with blocks under about 26 px at 200 fps, or at lower frame rates, its mask is empty and the
score flat, so the onset is returned), or a true top-9 of the blocks (96 px: -15, 27, 2 at
200 fps; mean 3.6 frames at 60 fps). Comparing the window with the onset, or scoring the
difference to the onset, would be a different method (it is what :mod:`.frame_difference`
does). The method is kept as published: a baseline for "high-pass
LBP activity", which is largest around the expression but not at its apex frame.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._frames import apex_from_curve, as_frames, check_range, empty_curve, grey_uint8
from .lbp import lbp_images

BLOCKS = 6
PAPER_FPS = 200.0
PAPER_HALF_WINDOW = 30
PAPER_RADIUS = 31 / 30


def half_window(fps: float) -> int:
    """Half the sliding window in frames: ``round(30 * fps / 200)``, half up, at least 1
    (the paper's 30 frames at 200 fps, the same 150 ms at any frame rate)."""
    if not fps > 0:
        raise ValueError(f"fps: expected a positive frame rate, got {fps!r}")
    return max(1, int(math.floor(PAPER_HALF_WINDOW * float(fps) / PAPER_FPS + 0.5)))


def high_pass_mask(
    shape: tuple[int, int, int], d0: float | None = None, *, radius: float = PAPER_RADIUS
) -> torch.Tensor:
    """bool ``shape = (W, b_h, b_w)``: the ideal high-pass in fftshift layout (zero
    frequency at index ``n // 2`` of each axis).

    With ``d0`` (the paper's rule): True where the frequency index's Euclidean distance from
    the zero frequency is ``>= d0``. Without: True where the distance normalised per axis,
    ``sqrt(sum_i (k_i / max(n_i // 2, 1))**2)``, is ``>= radius`` (default 31/30, the paper's
    ``d0 = 31`` over its 30-bin temporal half-extent).
    """
    axes = [torch.arange(n, dtype=torch.float64) - n // 2 for n in shape]
    if d0 is None:
        axes = [k / max(n // 2, 1) for k, n in zip(axes, shape)]
        d0 = radius
    kt, ky, kx = torch.meshgrid(*axes, indexing="ij")
    return torch.sqrt(kt**2 + ky**2 + kx**2) >= d0


def block_volumes(codes: np.ndarray) -> torch.Tensor:
    """float32 ``[T, 36, b_h, b_w]``: LBP images ``[T, h, w]`` cut into 6x6 blocks of
    ``b = (size - 1) // 6`` pixels (row-major block order)."""
    t, h, w = codes.shape
    bh, bw = (h - 1) // BLOCKS, (w - 1) // BLOCKS
    if bh < 1 or bw < 1:
        raise ValueError(f"frames of {h + 2}x{w + 2} pixels are too small for {BLOCKS}x{BLOCKS} blocks")
    x = torch.from_numpy(np.ascontiguousarray(codes[:, : BLOCKS * bh, : BLOCKS * bw])).to(torch.float32)
    x = x.reshape(t, BLOCKS, bh, BLOCKS, bw).permute(0, 1, 3, 2, 4)
    return x.reshape(t, BLOCKS * BLOCKS, bh, bw)


def score_curve(
    frames,
    onset: int | None = None,
    offset: int | None = None,
    *,
    fps: float = PAPER_FPS,
    half: int | None = None,
    d0: float | None = None,
    top_k: int | None = None,
    chunk_elements: int = 1 << 23,
) -> np.ndarray:
    """float64 ``[T]``: the high-pass energy (sum of ``|F|``, in LBP-code units) of the
    window centred on every frame in ``[onset, offset]`` (the whole clip when both are None),
    NaN outside.

    frames: uint8 ``[T, H, W, 3]`` RGB or ``[T, H, W]`` grey, ``H, W >= 9``.
    fps: frame rate, sets ``half`` (default :func:`half_window`). d0: the paper's threshold in
        frequency bins (default: the normalised one of :func:`high_pass_mask`).
    top_k: sum only the k largest blocks per frame (default: all 36).
    chunk_elements: FFT this many complex values at a time (memory bound).
    """
    frames = as_frames(frames)
    n_frames = frames.shape[0]
    onset = 0 if onset is None else onset
    offset = n_frames - 1 if offset is None else offset
    onset, offset = check_range(onset, offset, n_frames)
    half = half_window(fps) if half is None else int(half)
    if half < 0:
        raise ValueError(f"half: expected >= 0, got {half}")
    if top_k is not None and not 1 <= top_k <= BLOCKS * BLOCKS:
        raise ValueError(f"top_k: expected 1..{BLOCKS * BLOCKS}, got {top_k}")
    # Only the frames the scored windows reach; replicate the clip's ends as the paper does.
    first, last = max(onset - half, 0), min(offset + half, n_frames - 1)
    blocks = block_volumes(lbp_images(grey_uint8(frames[first : last + 1])))
    pad_before, pad_after = half - (onset - first), half - (last - offset)
    blocks = torch.cat([blocks[:1].expand(pad_before, -1, -1, -1), blocks, blocks[-1:].expand(pad_after, -1, -1, -1)])
    width = 2 * half + 1
    mask = high_pass_mask((width,) + tuple(blocks.shape[2:]), d0).permute(1, 2, 0)  # [b_h, b_w, W]
    # A 3-D FFT is a 2-D FFT per frame, then a 1-D FFT along time: the spatial part is done
    # once per frame instead of once per window containing it.
    spatial = torch.fft.fftshift(torch.fft.fft2(blocks), dim=(-2, -1))  # [T', 36, b_h, b_w]
    # windows[n] = padded frames n .. n + width - 1, i.e. centred on frame onset + n.
    windows = spatial.unfold(0, width, 1)  # [N, 36, b_h, b_w, W]
    step = max(1, chunk_elements // max(windows[0].numel(), 1))
    energies = []
    for start in range(0, windows.shape[0], step):
        spectrum = torch.fft.fftshift(torch.fft.fft(windows[start : start + step], dim=-1), dim=-1)
        energies.append((spectrum.abs() * mask).sum(dim=(-3, -2, -1), dtype=torch.float64))
    per_block = torch.cat(energies)  # [N, 36]
    if top_k is not None:
        per_block = per_block.topk(top_k, dim=1).values
    curve = empty_curve(n_frames)
    curve[onset : offset + 1] = per_block.sum(dim=1).numpy()
    return curve


def spot_apex(
    frames,
    onset: int,
    offset: int,
    *,
    fps: float = PAPER_FPS,
    half: int | None = None,
    d0: float | None = None,
    top_k: int | None = None,
) -> int:
    """Clip-relative apex in ``[onset, offset]``: the first argmax of :func:`score_curve`."""
    curve = score_curve(frames, onset, offset, fps=fps, half=half, d0=d0, top_k=top_k)
    return apex_from_curve(curve, onset, offset)
