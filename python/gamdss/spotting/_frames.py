"""Shared input handling of the apex spotters: frame validation, grey conversion, and the
argmax of a score curve inside the annotated [onset, offset] range."""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 luma weights, the same as OpenCV's RGB->GRAY conversion.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def as_frames(frames) -> np.ndarray:
    """``frames`` (numpy array or torch tensor) uint8 ``[T, H, W, 3]`` RGB or ``[T, H, W]``
    grey, returned as a numpy uint8 array of the same shape (no copy when possible)."""
    if hasattr(frames, "detach"):  # a torch tensor
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise TypeError(f"frames: expected dtype uint8, got {frames.dtype}")
    if frames.ndim == 4 and frames.shape[-1] != 3:
        raise ValueError(
            f"frames: expected [T, H, W, 3] RGB or [T, H, W] grey, got shape "
            f"{tuple(frames.shape)} (channels must be last)"
        )
    if frames.ndim not in (3, 4):
        raise ValueError(f"frames: expected [T, H, W, 3] RGB or [T, H, W] grey, got shape {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise ValueError("frames: the clip has no frames")
    return frames


def grey_float(frames: np.ndarray) -> np.ndarray:
    """float32 ``[T, H, W]`` grey levels (0-255) of uint8 ``[T, H, W, 3]`` or ``[T, H, W]``."""
    if frames.ndim == 3:
        return frames.astype(np.float32)
    return frames.astype(np.float32) @ _LUMA


def grey_uint8(frames: np.ndarray) -> np.ndarray:
    """uint8 ``[T, H, W]`` grey image (luma rounded to the nearest level)."""
    if frames.ndim == 3:
        return frames
    return np.clip(np.rint(grey_float(frames)), 0, 255).astype(np.uint8)


def check_range(onset: int, offset: int, n_frames: int) -> tuple[int, int]:
    """Validate the annotated range: ``0 <= onset <= offset <= n_frames - 1``."""
    onset, offset = int(onset), int(offset)
    if not 0 <= onset <= offset <= n_frames - 1:
        raise ValueError(f"onset={onset}, offset={offset} violates 0 <= onset <= offset <= T-1 with T={n_frames}")
    return onset, offset


def check_mask(mask, shape: tuple[int, int]) -> np.ndarray | None:
    """A face mask: bool ``[H, W]`` with at least one True pixel, or None (whole frame)."""
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != tuple(shape):
        raise ValueError(f"mask: expected shape {tuple(shape)} (the frame's H, W), got {mask.shape}")
    if not mask.any():
        raise ValueError("mask: selects no pixel")
    return mask


def empty_curve(n_frames: int) -> np.ndarray:
    """float64 ``[T]`` of NaN: score curves are NaN outside the scored range."""
    return np.full(n_frames, np.nan, dtype=np.float64)


def apex_from_curve(curve: np.ndarray, onset: int, offset: int) -> int:
    """The first frame of maximal score in ``[onset, offset]`` (clip-relative).

    ``curve`` float ``[T]``; NaN scores are never chosen unless all of the range is NaN,
    then the onset is returned.
    """
    onset, offset = check_range(onset, offset, len(curve))
    part = np.asarray(curve[onset : offset + 1], dtype=np.float64)
    if np.all(np.isnan(part)):
        return onset
    return onset + int(np.nanargmax(part))
