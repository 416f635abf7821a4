"""Fake (meta) implementations: output shapes and dtypes without computing anything,
so that torch.compile(fullgraph=True) can trace through the gamdss ops."""

from __future__ import annotations

import torch
from torch._subclasses.fake_tensor import is_fake


def _check_traced(op: str, frames: torch.Tensor) -> None:
    # Also reached with real frames when only an index tensor is on the meta device (the
    # dispatcher follows it): refuse rather than return uninitialised "results".
    torch._check(
        frames.is_meta or is_fake(frames),
        lambda: (
            f"gamdss.{op}: frames are on {frames.device} but an index tensor is on the meta device; "
            f"pass the index tensors on the CPU or on the frames' device"
        ),
    )


@torch.library.register_fake("gamdss::reselect")
def _reselect_fake(frames, starts, lengths, annotations, windows, distance, table_o=0, table_a=0, table_f=0):
    _check_traced("reselect", frames)
    torch._check(frames.dim() >= 2, lambda: "frames must be [N, ...]")
    torch._check(starts.dim() == 1, lambda: "starts must be [B]")
    b = starts.shape[0]
    torch._check(annotations.shape == (b, 3), lambda: "annotations must be [B, 3]")
    torch._check(windows.shape == (b, 6), lambda: "windows must be [B, 6]")
    idx = frames.new_empty((b,), dtype=torch.int64)
    dist = frames.new_empty((b,), dtype=torch.float64)
    tables = table_o > 0 or table_a > 0 or table_f > 0
    rise_table = frames.new_empty((b, table_o, table_a) if tables else (b, 0, 0), dtype=torch.float64)
    fall_table = frames.new_empty((b, table_f) if tables else (b, 0), dtype=torch.float64)
    return idx, torch.empty_like(idx), torch.empty_like(idx), dist, torch.empty_like(dist), rise_table, fall_table


@torch.library.register_fake("gamdss::frame_distances")
def _frame_distances_fake(frames, starts, lengths, reference, distance, max_length):
    _check_traced("frame_distances", frames)
    torch._check(frames.dim() >= 2, lambda: "frames must be [N, ...]")
    return frames.new_empty((starts.shape[0], max_length), dtype=torch.float64)
