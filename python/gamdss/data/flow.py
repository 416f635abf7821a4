"""Dense optical flow between two frames: OpenCV Farneback or TV-L1 (``cv2.optflow``).

A flow ``d`` from frame A to frame B is float32 ``[2, H, W]``: channel 0 the horizontal
displacement (+ = right), channel 1 the vertical one (+ = down), in **pixels of the given
frames**, with ``A(p) ≈ B(p + d(p))``: where the content at ``p`` in A went in B.

Frames are grey uint8 ``[N, H, W]`` (:func:`rgb_to_grey` turns uint8 RGB ``[N, H, W, 3]``
into that with the ITU-R BT.601 weights OpenCV uses). TV-L1 (Zach, Pock and Bischof's
duality-based TV-L1, what most published micro-expression models use) needs the OpenCV
contrib build, ``opencv-contrib-python-headless`` (a dependency of gamdss; it contains
everything ``opencv-python-headless`` has, and the two must not be installed together).

The method parameters are the OpenCV defaults (:data:`FLOW_DEFAULTS`); :func:`flow_params`
merges a caller's overrides and refuses unknown names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = [
    "FLOW_METHODS",
    "FARNEBACK_DEFAULTS",
    "TVL1_DEFAULTS",
    "FLOW_DEFAULTS",
    "GREY_WEIGHTS",
    "flow_params",
    "rgb_to_grey",
    "compute_flow",
    "farneback_flow",
    "tvl1_available",
]

#: flow methods by name (the ``data.flow`` values of a training config)
FLOW_METHODS = ("farneback", "tvl1")

#: cv2.calcOpticalFlowFarneback arguments (OpenCV's documented example values).
FARNEBACK_DEFAULTS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)

#: cv2.optflow.DualTVL1OpticalFlow_create arguments (OpenCV's defaults).
TVL1_DEFAULTS = dict(
    tau=0.25,
    lambda_=0.15,
    theta=0.3,
    nscales=5,
    warps=5,
    epsilon=0.01,
    innnerIterations=30,  # sic: OpenCV's spelling of the keyword
    outerIterations=10,
    scaleStep=0.8,
    gamma=0.0,
    medianFiltering=5,
)

FLOW_DEFAULTS = {"farneback": FARNEBACK_DEFAULTS, "tvl1": TVL1_DEFAULTS}

#: grey = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as cv2.cvtColor), rounded
GREY_WEIGHTS = (0.299, 0.587, 0.114)


def tvl1_available() -> bool:
    """Whether this OpenCV build has TV-L1 (``cv2.optflow``, the contrib build)."""
    return hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")


def flow_params(method: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full parameter set of ``method``: its defaults updated with ``overrides``.

    ``ValueError`` naming the method or the unknown parameter."""
    if method not in FLOW_DEFAULTS:
        raise ValueError(f"flow method must be one of {', '.join(FLOW_METHODS)}, got {method!r}")
    params = dict(FLOW_DEFAULTS[method])
    unknown = sorted(set(overrides or {}) - set(params))
    if unknown:
        raise ValueError(f"{method} flow has no parameter {unknown[0]!r} (it has {', '.join(params)})")
    params.update(overrides or {})
    return params


def rgb_to_grey(rgb: Tensor) -> Tensor:
    """Grey uint8 ``[..., H, W]`` from RGB ``[..., H, W, 3]`` (uint8, or float in 0-255 units)."""
    weights = torch.tensor(GREY_WEIGHTS, dtype=torch.float32, device=rgb.device)
    return (rgb.float() @ weights).round().clamp(0, 255).to(torch.uint8)


def _check_pair(source: Tensor, target: Tensor, what: str) -> None:
    if source.shape != target.shape or source.ndim != 3 or source.dtype != torch.uint8:
        raise ValueError(
            f"{what} needs two grey uint8 [N, H, W] batches of the same shape, got "
            f"{tuple(source.shape)} {source.dtype} and {tuple(target.shape)} {target.dtype}"
        )


def _tvl1(params: Mapping[str, Any]):
    if not tvl1_available():
        raise RuntimeError(
            "TV-L1 flow needs the OpenCV contrib build: pip uninstall opencv-python-headless && "
            "pip install opencv-contrib-python-headless"
        )
    return cv2.optflow.DualTVL1OpticalFlow_create(**params)


def compute_flow(
    source: Tensor, target: Tensor, method: str = "farneback", params: Mapping[str, Any] | None = None
) -> Tensor:
    """Flow from each ``source`` frame to its ``target`` frame (grey uint8 ``[N, H, W]``, CPU).

    Returns float32 ``[N, 2, H, W]`` (dx, dy) in pixels (module doc). ``params`` overrides
    the method's defaults (:func:`flow_params`). One OpenCV call per pair, on the CPU.
    """
    full = flow_params(method, params)
    _check_pair(source, target, f"{method} flow")
    src, dst = source.cpu().numpy(), target.cpu().numpy()
    out = np.empty((src.shape[0], 2) + src.shape[1:], dtype=np.float32)
    solver = _tvl1(full) if method == "tvl1" else None
    for i in range(src.shape[0]):
        if solver is not None:
            flow = solver.calc(src[i], dst[i], None)
        else:
            flow = cv2.calcOpticalFlowFarneback(
                src[i],
                dst[i],
                None,
                full["pyr_scale"],
                full["levels"],
                full["winsize"],
                full["iterations"],
                full["poly_n"],
                full["poly_sigma"],
                full["flags"],
            )
        out[i] = flow.transpose(2, 0, 1)
    return torch.from_numpy(out)


def farneback_flow(source: Tensor, target: Tensor, *, flow_scale: float = 1.0, farneback: dict | None = None) -> Tensor:
    """Farneback flow from ``source`` to ``target`` (grey uint8 ``[N, H, W]``).

    Returns float32 ``[N, 2, H, W]`` (dx, dy), in pixels / ``flow_scale``, with
    ``source(p) ≈ target(p + d)``.
    """
    _check_pair(source, target, "farneback_flow")
    return compute_flow(source, target, "farneback", farneback) / float(flow_scale)
