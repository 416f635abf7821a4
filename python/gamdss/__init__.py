"""gamdss: keyframe reselection (GAMDSS) for micro-expression recognition research.

The core is the fused op ``torch.ops.gamdss.reselect`` (CPU and CUDA kernels); this
package wraps it:

- :func:`reselect`: re-select onset, apex and offset of a batch of clips near their
  annotations, with the ``paper``, ``released`` or ``symmetric`` windows.
- :func:`frame_distance_curves`: distance of every frame to a reference frame per clip.
- :mod:`gamdss.ops`: the low-level calls with explicit windows.
- :mod:`gamdss.reference`: the pure-PyTorch oracle with the same signatures.
"""

from .reselection import frame_distance_curves, reselect
from .results import Reselection
from .windows import PRESETS, preset_windows, search_ranges

__version__ = "0.1.0"

__all__ = ["reselect", "frame_distance_curves", "Reselection", "PRESETS", "preset_windows",
           "search_ranges", "__version__"]
