"""The basic 3x3 local binary pattern (LBP) image, vectorised over frames.

Each interior pixel gets an 8-bit code: bit ``i`` is set when neighbour ``i`` is ``>=`` the
centre. Neighbours in the order of the original LBP code of Heikkilä and Ahonen (the one
Li, Huang & Zhao call), weights ``2**i``::

    1   2   4
    8   .  16
    32  64 128

The border pixels have no full neighbourhood, so the LBP image is ``[H-2, W-2]``.
"""

from __future__ import annotations

import numpy as np

# (row offset, column offset) of neighbour i, weight 2**i.
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def lbp_images(grey: np.ndarray) -> np.ndarray:
    """uint8 ``[T, H-2, W-2]`` LBP codes of grey frames ``[T, H, W]`` (any real dtype;
    ``[H, W]`` is treated as one frame and gives ``[H-2, W-2]``)."""
    grey = np.asarray(grey)
    single = grey.ndim == 2
    if single:
        grey = grey[None]
    if grey.ndim != 3 or grey.shape[1] < 3 or grey.shape[2] < 3:
        raise ValueError(f"lbp_images: expected grey frames [T, H, W] with H, W >= 3, got shape {grey.shape}")
    h, w = grey.shape[1:]
    centre = grey[:, 1 : h - 1, 1 : w - 1]
    codes = np.zeros(centre.shape, dtype=np.uint8)
    for bit, (dy, dx) in enumerate(NEIGHBOURS):
        neighbour = grey[:, 1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx]
        codes |= (neighbour >= centre).astype(np.uint8) << bit
    return codes[0] if single else codes
