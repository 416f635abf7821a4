"""Public wrappers over the compiled ops ``torch.ops.gamdss.reselect`` and
``torch.ops.gamdss.frame_distances`` (CPU and CUDA kernels)."""

from __future__ import annotations

import torch

import gamdss_ext  # noqa: F401  (loads the compiled ops)

from .packing import PackedClips, check_distance
from .result import Reselection


def table_sizes(windows: torch.Tensor) -> tuple[int, int, int]:
    """Largest onset, apex and offset window sizes of int64 ``[B, 6]`` windows."""
    if windows.shape[0] == 0:
        return 0, 0, 0
    sizes = (windows[:, 1::2] - windows[:, 0::2] + 1).amax(dim=0)
    return int(sizes[0]), int(sizes[1]), int(sizes[2])


def reselect_windows(
    packed: PackedClips,
    annotations: torch.Tensor,
    windows: torch.Tensor,
    *,
    distance: str = "l2",
    return_table: bool = False,
) -> Reselection:
    """Reselection with explicit per-clip candidate windows (the low-level call).

    packed: frames ``[N, ...]`` with int64 ``starts``/``lengths`` ``[B]`` (see
        :func:`gamdss.op.packing.pack_clips`).
    annotations: int64 ``[B, 3]`` annotated (onset, apex, offset); they break exact ties.
    windows: int64 ``[B, 6]`` inclusive clip-relative windows (onset lo/hi, apex lo/hi,
        offset lo/hi), each inside ``[0, T-1]``, with onset_lo <= apex_hi.
    Invalid windows raise ``RuntimeError`` naming the clip and the values.
    """
    check_distance(distance, packed.frames.dtype)
    annotations = annotations.to("cpu", torch.int64)
    windows = windows.to("cpu", torch.int64)
    sizes = table_sizes(windows) if return_table else (0, 0, 0)
    out = torch.ops.gamdss.reselect(
        packed.frames.detach(), packed.starts, packed.lengths, annotations, windows, distance, *sizes
    )
    onset, apex, offset, rise_d, fall_d, rise_t, fall_t = out
    if not return_table:
        rise_t = fall_t = None
    return Reselection(onset, apex, offset, rise_d, fall_d, windows, rise_t, fall_t)


def frame_distances(packed: PackedClips, reference: torch.Tensor, *, distance: str = "l2") -> torch.Tensor:
    """Distance of every frame of each clip to that clip's reference frame.

    reference: int64 ``[B]`` clip-relative index of each clip's reference frame (e.g. its
    onset). Returns float64 ``[B, max T]`` on the frames' device; ``[b, t]`` is
    d(frame reference[b], frame t) for t < T_b and NaN after. With ``released_uint8`` the
    element difference is (frame t - reference) mod 256.
    """
    check_distance(distance, packed.frames.dtype)
    max_len = int(packed.lengths.max()) if packed.batch_size else 0
    return torch.ops.gamdss.frame_distances(
        packed.frames.detach(), packed.starts, packed.lengths, reference.to("cpu", torch.int64), distance, max_len
    )
