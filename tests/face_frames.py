"""Test frames with a real face: scikit-image's astronaut (public-domain NASA photo, shipped
inside the scikit-image wheel), resized so that MTCNN finds the face.

``face_frame(n)`` differs slightly from frame to frame (a deterministic per-frame pattern of
+-3 grey levels), so a clip made of them is not constant; ``shift`` moves the face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# The astronaut's face in the 512x512 original, (x0, y0, x1, y1), as MTCNN finds it
# (toolchain notes: [181.05, 62.16, 267.75, 172.05], p = 0.99999).
ASTRONAUT_SIZE = 512
ASTRONAUT_FACE = (181.0, 62.0, 268.0, 172.0)

_cache: dict[tuple[int, int], np.ndarray] = {}


def astronaut(size: tuple[int, int] = (160, 160)) -> np.ndarray:
    """The astronaut resized to ``size`` = (H, W): uint8 [H, W, 3] RGB."""
    if size not in _cache:
        from skimage import data

        img = Image.fromarray(data.astronaut()).resize((size[1], size[0]), Image.Resampling.BILINEAR)
        _cache[size] = np.asarray(img)
    return _cache[size].copy()


def face_location(size: tuple[int, int] = (160, 160), shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Where the face is in a ``face_frame`` of this size and shift: float [4] (x0, y0, x1, y1)."""
    h, w = size
    sx, sy = w / ASTRONAUT_SIZE, h / ASTRONAUT_SIZE
    x0, y0, x1, y1 = ASTRONAUT_FACE
    dy, dx = shift
    return np.array([x0 * sx + dx, y0 * sy + dy, x1 * sx + dx, y1 * sy + dy])


def face_frame(frame_number: int, size: tuple[int, int] = (160, 160), shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """uint8 [H, W, 3] RGB: the astronaut at ``size`` = (H, W), moved by ``shift`` = (dy, dx)
    pixels (wrapping around), plus a pattern of -3..3 grey levels seeded by ``frame_number``."""
    img = np.roll(astronaut(size), shift=shift, axis=(0, 1)).astype(np.int16)
    rng = np.random.default_rng(frame_number)
    img += rng.integers(-3, 4, size=img.shape[:2], dtype=np.int16)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def blank_frame(frame_number: int, size: tuple[int, int] = (160, 160)) -> np.ndarray:
    """A frame without a face: smooth grey gradient, uint8 [H, W, 3]."""
    h, w = size
    ramp = np.linspace(60, 180, w)[None, :] + np.linspace(0, 20, h)[:, None] + frame_number % 5
    return np.repeat(ramp[..., None], 3, axis=2).astype(np.uint8)


def write_frames(
    folder: Path, frames: list[np.ndarray], *, first: int = 1, pattern: str = "img{n}.jpg", grey: bool = False
) -> list[Path]:
    """Write frames as image files named by ``pattern`` with frame numbers ``first``, ``first+1``...
    (PNG when the pattern ends in .png: lossless, so tests can compare exact pixels).
    ``grey``: save as single-channel (mode L) images."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, frame in enumerate(frames):
        img = Image.fromarray(frame)
        if grey:
            img = img.convert("L")
        path = folder / pattern.format(n=first + k)
        img.save(path)
        paths.append(path)
    return paths
