"""The released code's tie order (docs/reselection.md, "Released tie order"):
:mod:`gamdss.op.released_ties` (the op, then the clips with a tied maximum again by the
reference) against the reference with ``ties="first_inserted"`` pair by pair, on clips built to
have ties, for every distance, with tables, split into chunks, on floating frames and on an
empty batch. Against an emulation of the released loop itself: test_reselect_cases.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gamdss.op import reference, released_ties
from support import device_params
from test_reselect_cases import clips_with_ties

DISTANCES = ["released_uint8", "l2", "centered"]


def _batch(seed: int, count: int = 24):
    clips, ann = clips_with_ties(seed, count)
    return [torch.from_numpy(c) for c in clips], *(list(k) for k in zip(*ann))


def _assert_same(got, want):
    for name in ("onset", "apex", "offset", "windows"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    # uint8: both sides are square roots of the same exact integers.
    for name in ("rise_distance", "fall_distance", "rise_table", "fall_table"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(-1), b.nan_to_num(-1)), name


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("return_table", [False, True])
def test_matches_the_reference_pair_by_pair(distance, return_table, device):
    clips, onset, apex, offset = _batch(1)
    clips = [c.to(device) for c in clips]
    kwargs = dict(lam_rise=0.15, lam_fall=0.2, window="released", distance=distance, return_table=return_table)
    got = released_ties.reselect(clips, onset, apex, offset, **kwargs)
    want = reference.reselect(clips, onset, apex, offset, ties="first_inserted", **kwargs)
    assert got.onset.device == clips[0].device
    _assert_same(got, want)
    nearest = reference.reselect(clips, onset, apex, offset, **kwargs)
    assert not torch.equal(torch.stack([got.onset, got.apex]), torch.stack([nearest.onset, nearest.apex]))


def test_chunks_give_the_same_result(monkeypatch):
    clips, onset, apex, offset = _batch(2)
    kwargs = dict(lam_rise=0.15, window="released", distance="released_uint8", return_table=True)
    whole = released_ties.reselect(clips, onset, apex, offset, **kwargs)
    monkeypatch.setattr(released_ties, "MAX_TABLE_BYTES", 8 * 5 * 5 * 3)  # a few clips a chunk
    chunks = list(released_ties._chunks(whole.windows))
    assert len(chunks) > 3 and sum(chunks, []) == list(range(len(clips)))
    _assert_same(released_ties.reselect(clips, onset, apex, offset, **kwargs), whole)


def test_a_clip_whose_table_alone_is_over_the_limit_is_a_chunk_of_its_own(monkeypatch):
    """The released preset needs the tables internally; a clip too large for the limit alone is
    still reselected (as its own chunk), with or without tables asked for."""
    import gamdss.op.ops as ops

    clips, onset, apex, offset = _batch(2)
    kwargs = dict(lam_rise=0.15, window="released", distance="released_uint8")
    whole = released_ties.reselect(clips, onset, apex, offset, **kwargs)
    monkeypatch.setattr(released_ties, "MAX_TABLE_BYTES", 8)
    monkeypatch.setattr(ops, "MAX_TABLE_BYTES", 8)
    assert all(len(c) == 1 for c in released_ties._chunks(whole.windows))
    _assert_same(released_ties.reselect(clips, onset, apex, offset, **kwargs), whole)


def test_floating_frames_go_to_the_reference():
    clips, onset, apex, offset = _batch(3, 10)
    clips = [c.to(torch.float32) / 255 for c in clips]
    got = released_ties.reselect(clips, onset, apex, offset, lam_rise=0.15, distance="l2")
    want = reference.reselect(clips, onset, apex, offset, lam_rise=0.15, window="released", ties="first_inserted")
    _assert_same(got, want)


def test_empty_batch_and_other_windows():
    empty = torch.zeros((0, 5, 8, 8, 3), dtype=torch.uint8)
    out = released_ties.reselect(empty, [], [], [])
    assert out.onset.shape == (0,) and out.rise_distance.dtype == torch.float64
    clip = torch.from_numpy(np.zeros((20, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="window 'released'"):
        released_ties.reselect([clip], [0], [10], [19], window="paper")
    with pytest.raises(ValueError, match="ties must be one of nearest, first_inserted"):
        reference.reselect([clip], [0], [10], [19], ties="last")
