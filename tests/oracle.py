"""Checks of an op result against the float64 / exact reference (docs/reselection.md)."""

from __future__ import annotations

import torch

from gamdss.op import reference
from gamdss.op.packing import PackedClips
from gamdss.op.result import Reselection

RTOL = 1e-5


def _close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(b), scale) + 1e-12


def assert_matches_reference(
    got: Reselection, packed: PackedClips, ann: torch.Tensor, windows: torch.Tensor, distance: str
) -> None:
    """uint8: every output bit-identical to the reference. Floating: each chosen pair's
    float64 distance within RTOL of the float64 maximum (indices may differ only among
    such near-ties), reported distances and tables within RTOL."""
    cpu_packed = PackedClips(packed.frames.cpu(), packed.starts, packed.lengths)
    ref = reference.reselect_windows(cpu_packed, ann, windows, distance=distance, return_table=True)
    got = Reselection(*[t.cpu() if isinstance(t, torch.Tensor) else t for t in got])
    if packed.frames.dtype == torch.uint8:
        for name in ("onset", "apex", "offset", "rise_distance", "fall_distance"):
            assert torch.equal(getattr(got, name), getattr(ref, name)), (name, getattr(got, name), getattr(ref, name))
        if got.rise_table is not None:
            assert torch.equal(got.rise_table.nan_to_num(-1.0), ref.rise_table.nan_to_num(-1.0))
            assert torch.equal(got.fall_table.nan_to_num(-1.0), ref.fall_table.nan_to_num(-1.0))
        return
    w = windows.tolist()
    for b in range(packed.batch_size):
        o, a, f = int(got.onset[b]), int(got.apex[b]), int(got.offset[b])
        o_lo, o_hi, a_lo, a_hi, f_lo, f_hi = w[b]
        assert o_lo <= o <= o_hi and a_lo <= a <= a_hi and o <= a, (b, o, a, w[b])
        best = float(ref.rise_distance[b])
        chosen = float(ref.rise_table[b, o - o_lo, a - a_lo])
        assert _close(chosen, best, best), f"clip {b}: chosen rise pair ({o},{a}) d={chosen} vs max {best}"
        assert _close(float(got.rise_distance[b]), chosen, best)
        # The fall search from the op's own apex, in float64.
        pinned = windows.clone()
        pinned[b, 0:4] = torch.tensor([o, o, a, a])
        ref_f = reference.reselect_windows(cpu_packed, ann, pinned, distance=distance, return_table=True)
        f_eff = [max(x, a) for x in range(f_lo, f_hi + 1)]
        assert f in f_eff, (b, f, f_eff)
        best_f = float(ref_f.fall_distance[b])
        chosen_f = float(ref_f.fall_table[b, f_eff.index(f)])
        assert _close(chosen_f, best_f, best_f), f"clip {b}: chosen offset {f} d={chosen_f} vs max {best_f}"
        assert _close(float(got.fall_distance[b]), chosen_f, best_f)
        if got.rise_table is not None:
            scale = max(best, 1e-30)
            gt, rt = got.rise_table[b], ref.rise_table[b]
            assert torch.equal(gt.isnan(), rt.isnan())
            m = ~rt.isnan()
            assert torch.allclose(gt[m], rt[m], rtol=RTOL, atol=RTOL * scale)
            if (o, a) == (int(ref.onset[b]), int(ref.apex[b])):
                gf, rf = got.fall_table[b], ref.fall_table[b]
                m = ~rf.isnan()
                assert torch.equal(gf.isnan(), rf.isnan())
                assert torch.allclose(gf[m], rf[m], rtol=RTOL, atol=RTOL * max(best_f, 1e-30))
