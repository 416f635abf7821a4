"""gamdss: keyframe reselection (GAMDSS) for micro-expression recognition research.

The core is the fused op ``torch.ops.gamdss.reselect`` (CPU and CUDA kernels); this
package wraps it:

- :func:`reselect`: re-select onset, apex and offset of a batch of clips near their
  annotations, with the ``paper``, ``released`` or ``symmetric`` windows.
- :func:`frame_distance_curves`: distance of every frame to a reference frame per clip.
- :func:`correct_keyframes`: the noise-aware correction of the ``recommended`` preset
  (:mod:`gamdss.reselection.noise_aware`).
- :mod:`gamdss.op.ops`: the low-level calls with explicit windows.
- :mod:`gamdss.op.reference`: the pure-PyTorch oracle with the same signatures.

The names are loaded on first use, so ``import gamdss`` (and ``gamdss --help``) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {
    "reselect": ".op.api",
    "frame_distance_curves": ".op.api",
    "Reselection": ".op.result",
    "PRESETS": ".op.windows",
    "preset_windows": ".op.windows",
    "search_ranges": ".op.windows",
    "correct_keyframes": ".reselection.noise_aware",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gamdss' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
