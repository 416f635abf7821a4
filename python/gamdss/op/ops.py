"""Public wrappers over the compiled ops ``torch.ops.gamdss.reselect`` and
``torch.ops.gamdss.frame_distances`` (CPU and CUDA kernels)."""

from __future__ import annotations

import torch

import gamdss_ext  # noqa: F401  (loads the compiled ops)

from .packing import PackedClips, check_distance, int64_on_cpu
from .result import Reselection


def table_sizes(windows: torch.Tensor) -> tuple[int, int, int]:
    """Largest onset, apex and offset window sizes of int64 ``[B, 6]`` windows."""
    if windows.shape[0] == 0:
        return 0, 0, 0
    sizes = (windows[:, 1::2] - windows[:, 0::2] + 1).amax(dim=0)
    return int(sizes[0]), int(sizes[1]), int(sizes[2])


#: the largest candidate tables ``return_table=True`` allocates (rise + fall, float64)
MAX_TABLE_BYTES = 512 * 2**20


def check_table_size(windows: torch.Tensor, limit: int | None = None) -> None:
    """``ValueError`` when the padded candidate tables of ``windows`` (int64 ``[B, 6]``)
    would take more than ``limit`` bytes (default :data:`MAX_TABLE_BYTES`): every clip's table is padded to the largest
    windows of the batch, so one long clip among many short ones multiplies the size."""
    limit = MAX_TABLE_BYTES if limit is None else limit
    n_o, n_a, n_f = table_sizes(windows)
    b = int(windows.shape[0])
    size = 8 * b * (n_o * n_a + n_f)
    if size > limit:
        sizes = windows[:, 1::2] - windows[:, 0::2] + 1
        worst = int((sizes[:, 0] * sizes[:, 1]).argmax())
        raise ValueError(
            f"return_table=True would allocate {size / 2**20:.0f} MiB ({b} clips padded to {n_o} x {n_a} "
            f"rise and {n_f} fall candidates; clip {worst} has the largest windows), more than "
            f"{limit / 2**20:.0f} MiB; ask for tables of fewer clips per call (e.g. that clip alone)"
        )


def reselect_windows(
    packed: PackedClips,
    annotations: torch.Tensor,
    windows: torch.Tensor,
    *,
    distance: str = "l2",
    return_table: bool = False,
    check_size: bool = True,
) -> Reselection:
    """Reselection with explicit per-clip candidate windows (the low-level call).

    packed: frames ``[N, ...]`` with int64 ``starts``/``lengths`` ``[B]`` (see
        :func:`gamdss.op.packing.pack_clips`).
    annotations: int64 ``[B, 3]`` annotated (onset, apex, offset); they break exact ties.
    windows: int64 ``[B, 6]`` inclusive clip-relative windows (onset lo/hi, apex lo/hi,
        offset lo/hi), each inside ``[0, T-1]``, with onset_lo <= apex_hi.
    Invalid windows raise ``RuntimeError`` naming the clip and the values; floating or
    boolean annotations or windows ``TypeError``; tables over :data:`MAX_TABLE_BYTES`
    ``ValueError`` with their size (``check_size=False``: no limit, for callers that size
    their own batches).
    """
    check_distance(distance, packed.frames.dtype)
    annotations = int64_on_cpu(annotations, "annotations")
    windows = int64_on_cpu(windows, "windows")
    if return_table and check_size:
        check_table_size(windows)
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
        packed.frames.detach(), packed.starts, packed.lengths, int64_on_cpu(reference, "reference"), distance, max_len
    )
