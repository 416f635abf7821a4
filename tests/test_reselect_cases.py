"""Hand-computed cases of the contract in docs/reselection.md, section "The max-distance op":
**Windows** (each preset), **Selection** (the tie rules, offsets before the apex), **Distances**
(``released_uint8`` next to the true L2, ``centered``), **Output** (the tables, the curves), and
**Released tie order** (the ``released`` preset against an emulation of the released loop on
clips full of ties)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gamdss
from gamdss.op import reference
from gamdss.op.ops import reselect_windows
from gamdss.op.packing import keyframes, pack_clips
from gamdss.reselection.clips import reselect_clips
from gamdss.settings.reselection import preset
from support import device_params

# Scalar frames: d(i, j) = |v_i - v_j|.
VALUES = [0, 0, 10, 3, 5, 0, 20, 30, 25, 1, 0, 50]


def scalar_clip(values, dtype=torch.float64, device="cpu"):
    return torch.tensor(values, dtype=torch.float64).reshape(-1, 1).to(dtype).to(device)


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize(
    "window, expected",
    [
        # onset 2, apex 6, offset 9, lambda 0.5: R_rise = int(0.5*4) = 2, R_fall = int(0.5*3) = 1.
        # paper: O=[2,4], A=[4,8], F=[9,10]; best rise |30-3| at (3,7); fall from 7: |30-0| at 10.
        ("paper", (3, 7, 10, 27.0, 30.0)),
        # released: O=[2,4], A=[4,6], F=[8,9]; best |20-3| at (3,6); fall from 6: |20-1| at 9.
        ("released", (3, 6, 9, 17.0, 19.0)),
        # symmetric: O=[0,4], A=[4,8], F=[8,10]; (0,7) and (1,7) both give 30: cost 3 vs 2 -> (1,7).
        ("symmetric", (1, 7, 10, 30.0, 30.0)),
    ],
)
def test_presets_hand_computed(window, expected, dtype, device):
    clip = scalar_clip(VALUES, dtype, device)
    out = gamdss.reselect([clip], [2], [6], [9], lam_rise=0.5, lam_fall=0.5, window=window)
    o, a, f, rd, fd = expected
    assert (out.onset.item(), out.apex.item(), out.offset.item()) == (o, a, f)
    assert out.rise_distance.item() == pytest.approx(rd)
    assert out.fall_distance.item() == pytest.approx(fd)


def explicit(values, ann, windows, distance="l2", return_table=False):
    packed = pack_clips([scalar_clip(values)])
    a = keyframes([ann[0]], [ann[1]], [ann[2]], packed.lengths)
    return reselect_windows(packed, a, torch.tensor([windows]), distance=distance, return_table=return_table)


def values_with(n, base, **at):
    v = [base] * n
    for k, val in at.items():
        v[int(k[1:])] = val
    return v


def test_rise_tie_goes_to_smaller_o_at_equal_cost():
    # (4,10) and (6,10) give 100, both at cost 1 from the annotation (5,10).
    v = values_with(25, 50, i4=0, i6=0, i10=100)
    out = explicit(v, (5, 10, 20), (3, 7, 8, 12, 17, 23))
    assert (out.onset.item(), out.apex.item()) == (4, 10)


def test_rise_tie_goes_to_smaller_a_at_equal_cost_and_onset():
    # (5,9) and (5,11): both cost 1.
    v = values_with(25, 50, i5=0, i9=100, i11=100)
    out = explicit(v, (5, 10, 20), (3, 7, 8, 12, 17, 23))
    assert (out.onset.item(), out.apex.item()) == (5, 9)


def test_rise_tie_prefers_the_pair_closest_to_the_annotation():
    # (3,10) costs 2 and (6,10) costs 1: the larger onset wins.
    v = values_with(25, 50, i3=0, i6=0, i10=100)
    out = explicit(v, (5, 10, 20), (3, 7, 8, 12, 17, 23))
    assert (out.onset.item(), out.apex.item()) == (6, 10)


def test_rise_tie_with_the_annotation_keeps_it():
    v = values_with(25, 50, i5=0, i7=0, i10=100, i12=100)
    out = explicit(v, (5, 10, 20), (3, 7, 8, 12, 17, 23))
    assert (out.onset.item(), out.apex.item()) == (5, 10)


def test_fall_ties_go_to_closest_then_smaller_offset():
    # Apex 10 (value 100) is the unique best; offsets 19 and 21 both give 100 at cost 1.
    v = values_with(25, 50, i5=0, i10=100, i19=0, i21=0)
    out = explicit(v, (5, 10, 20), (5, 5, 10, 10, 17, 23))
    assert out.offset.item() == 19
    v = values_with(25, 50, i5=0, i10=100, i18=0, i21=0)  # cost 2 vs cost 1
    out = explicit(v, (5, 10, 20), (5, 5, 10, 10, 17, 23))
    assert out.offset.item() == 21


def test_offsets_before_the_chosen_apex_become_the_apex():
    # Apex moves to 15 while the offset window is [12, 18]: 12..14 are replaced by 15.
    # Frames 15..18 are equal, so every candidate has distance 0 and the tie goes to the
    # effective offset closest to the annotated 13, i.e. 15 (never 12, 13 or 14).
    v = values_with(25, 50, i5=0, i15=90, i16=90, i17=90, i18=90, i12=-70, i13=-70, i14=-70)
    out = explicit(v, (5, 10, 13), (5, 5, 8, 15, 12, 18), return_table=True)
    assert out.apex.item() == 15
    assert out.offset.item() == 15
    assert out.fall_distance.item() == 0.0
    # Table column k is d(15, max(12 + k, 15)): all zero.
    assert out.fall_table[0].tolist() == [0.0] * 7


def test_rise_table_marks_onset_after_apex_as_nan():
    v = list(range(20))
    out = explicit(v, (6, 8, 15), (5, 9, 7, 10, 15, 16), return_table=True)
    table = out.rise_table[0]
    for i, o in enumerate(range(5, 10)):
        for j, a in enumerate(range(7, 11)):
            if o <= a:
                assert table[i, j].item() == abs(a - o)
            else:
                assert torch.isnan(table[i, j])
    assert (out.onset.item(), out.apex.item()) == (5, 10)


def released_style_selection(frames: np.ndarray, onset: int, apex: int, offset: int, lam: float = 0.1):
    """An emulation of the released code's search (released-code-behaviour.md 1.1-1.2):
    pairs inserted in its order into a dict, numpy uint8 subtraction (wraps), first max."""
    r = int(lam * (apex - onset))
    scores = {(onset, apex): np.linalg.norm(frames[apex] - frames[onset])}
    for i in range(1, r + 1):
        scores[(onset + i, apex)] = np.linalg.norm(frames[apex] - frames[onset + i])
        for j in range(1, r + 1):
            scores[(onset + i, apex - j)] = np.linalg.norm(frames[apex - j] - frames[onset + i])
    for n in range(1, r + 1):
        scores[(onset, apex - n)] = np.linalg.norm(frames[apex - n] - frames[onset])
    o_star, a_star = max(scores, key=scores.get)
    r_off = int(lam * (offset - apex))
    fall = {offset: np.linalg.norm(frames[a_star] - frames[offset])}
    for m in range(1, r_off + 1):
        fall[offset - m] = np.linalg.norm(frames[a_star] - frames[offset - m])
    return o_star, a_star, max(fall, key=fall.get), scores[(o_star, a_star)]


def darkening_clip() -> np.ndarray:
    """21 frames where frame 9 is frame 0 darkened by one grey level, and frame 10 has a
    real change (+40 on 15% of the pixels); frame 1 differs from frame 0 in one element
    (so no pair ties exactly: on exact ties the released code keeps its insertion order,
    the contract the candidate closest to the annotation); the rest is frame 0."""
    rng = np.random.default_rng(3)
    base = rng.integers(50, 200, size=(3, 32, 32), dtype=np.uint8)
    frames = np.repeat(base[None], 21, axis=0)
    frames[9] = base - 1
    mask = rng.random(base.shape) < 0.15
    frames[10] = np.where(mask, base + 40, base)
    frames[1, 0, 0, 0] += 1
    return frames


def test_released_selection_reproduced_where_wrapped_and_true_l2_disagree():
    frames = darkening_clip()
    clip = torch.from_numpy(frames)
    # The released code: R = int(0.1 * 10) = 1, O = [0, 1], A = [9, 10].
    want = released_style_selection(frames, 0, 10, 20)
    released = gamdss.reselect([clip], [0], [10], [20], window="released", distance="released_uint8")
    assert (released.onset.item(), released.apex.item(), released.offset.item()) == want[:3]
    assert released.rise_distance.item() == pytest.approx(float(want[3]), rel=1e-12)
    # The wrap makes the one-level darkening (255^2 per element) beat the real change...
    assert released.apex.item() == 9
    # ... while the true L2 distance picks the frame that really changed.
    true_l2 = gamdss.reselect([clip], [0], [10], [20], window="released", distance="l2")
    assert true_l2.apex.item() == 10
    n = frames[0].size
    assert released.rise_distance.item() == pytest.approx(255.0 * np.sqrt(n))
    assert true_l2.rise_distance.item() == pytest.approx(
        np.sqrt(((frames[10].astype(np.int64) - frames[0]) ** 2).sum())
    )


@pytest.mark.parametrize("seed", range(20))
def test_released_window_and_distance_reproduce_the_released_loop(seed):
    rng = np.random.default_rng(seed)
    t = int(rng.integers(30, 60))
    onset = int(rng.integers(0, 5))
    apex = onset + int(rng.integers(10, 20))
    offset = min(t - 1, apex + int(rng.integers(10, 25)))
    frames = rng.integers(0, 256, size=(t, 3, 8, 8), dtype=np.uint8)
    want = released_style_selection(frames, onset, apex, offset)
    got = gamdss.reselect(
        [torch.from_numpy(frames)], [onset], [apex], [offset], window="released", distance="released_uint8"
    )
    assert (got.onset.item(), got.apex.item(), got.offset.item()) == want[:3]


def palette_clip(rng: np.random.Generator, t: int, colours: int = 3) -> np.ndarray:
    """``t`` uint8 frames ``[t, 8, 8, 3]``, each one of ``colours`` random frames: many pairs
    of candidates are the same two frames, so exact ties are everywhere."""
    palette = rng.integers(0, 256, size=(colours, 8, 8, 3), dtype=np.uint8)
    return palette[rng.integers(0, colours, size=t)]


def clips_with_ties(seed: int, count: int):
    rng = np.random.default_rng(seed)
    clips, ann = [], []
    for _ in range(count):
        t = int(rng.integers(40, 70))
        onset = int(rng.integers(0, 5))
        apex = onset + int(rng.integers(10, 35))  # R = 1..3
        offset = min(t - 1, apex + int(rng.integers(10, 30)))
        clips.append(palette_clip(rng, t))
        ann.append((onset, apex, offset))
    return clips, ann


def test_released_tie_order_hand_computed():
    # Released windows of the annotation (5, 10, 20): O = [5, 7], A = [8, 10], F = [18, 20].
    # (5, 9) and (6, 9) both give 100. The released loop inserts (5, 10), then the rows of the
    # later onsets 6, 7 (apexes 10, 9, 8), then onset 5 with apexes 9, 8: (6, 9) comes first.
    # The contract's rule: (5, 9) costs 1, (6, 9) costs 2, so (5, 9).
    v = values_with(25, 50, i5=0, i6=0, i9=100, i18=0, i20=0)
    packed = pack_clips([scalar_clip(v, torch.uint8)])
    a = keyframes([5], [10], [20], packed.lengths)
    windows = torch.tensor([(5, 7, 8, 10, 18, 20)])
    first = reference.reselect_windows(packed, a, windows, distance="released_uint8", ties="first_inserted")
    nearest = reference.reselect_windows(packed, a, windows, distance="released_uint8")
    assert (first.onset.item(), first.apex.item()) == (6, 9)
    assert (nearest.onset.item(), nearest.apex.item()) == (5, 9)
    # Offsets 18 and 20 tie (|100 - 0|): the loop inserts 20 first, the closest to 20 too.
    assert first.offset.item() == nearest.offset.item() == 20
    # The same through the public paths: the released preset and the reference with its ties.
    got = reselect_clips([scalar_clip(v, torch.uint8)], [5], [10], [20], 200.0, preset("released", lam_rise=0.4))
    assert got.keyframes[0].tolist() == [6, 9, 20]


@pytest.mark.parametrize("seed", range(3))
def test_released_preset_reproduces_the_released_loop_on_ties(seed):
    clips, ann = clips_with_ties(seed, 40)
    onset, apex, offset = (list(k) for k in zip(*ann))
    tensors = [torch.from_numpy(c) for c in clips]
    released = reselect_clips(tensors, onset, apex, offset, 200.0, preset("released"))
    differ = 0
    for b, (frames, (o, a, f)) in enumerate(zip(clips, ann)):
        want = released_style_selection(frames, o, a, f)
        assert tuple(released.keyframes[b].tolist()) == want[:3], (b, ann[b])
        assert released.rise_distance[b].item() == float(want[3])
        nearest = gamdss.reselect([tensors[b]], [o], [a], [f], window="released", distance="released_uint8")
        differ += (nearest.onset.item(), nearest.apex.item(), nearest.offset.item()) != want[:3]
    assert differ > 0  # the clips do have ties on which the two orders part
    # The default order is still the op's, and the reference's default is that order too.
    default = preset("released", ties="nearest")
    got = reselect_clips(tensors, onset, apex, offset, 200.0, default)
    op = gamdss.reselect(tensors, onset, apex, offset, window="released", distance="released_uint8")
    ref = reference.reselect(tensors, onset, apex, offset, window="released", distance="released_uint8")
    want = torch.stack([op.onset, op.apex, op.offset], dim=1)
    assert torch.equal(got.keyframes, want)
    assert torch.equal(torch.stack([ref.onset, ref.apex, ref.offset], dim=1), want)
    torch.testing.assert_close(ref.rise_distance, op.rise_distance, rtol=0, atol=0)


def test_centered_ignores_a_global_brightness_change():
    # Frame 7 is frame 0 + 3 grey levels everywhere (flicker); frame 6 has a small real
    # change. L2 follows the flicker, the centered distance the real change.
    rng = np.random.default_rng(0)
    base = rng.integers(20, 200, size=(3, 16, 16)).astype(np.uint8)
    frames = np.repeat(base[None], 12, axis=0)
    frames[7] = base + 3
    frames[6, 0, :4, :4] = base[0, :4, :4] + 10
    clip = torch.from_numpy(frames)
    l2 = gamdss.reselect([clip], [0], [6], [11], lam_rise=0.2, window="paper", distance="l2")
    centered = gamdss.reselect([clip], [0], [6], [11], lam_rise=0.2, window="paper", distance="centered")
    assert l2.apex.item() == 7
    assert centered.apex.item() == 6
    d = frames[6].astype(np.int64) - frames[0]
    assert centered.rise_distance.item() == pytest.approx(np.sqrt(((d - d.mean()) ** 2).sum()), rel=1e-12)


def test_frame_distance_curves_hand_computed():
    curves = gamdss.frame_distance_curves([scalar_clip(VALUES), scalar_clip([5, 1, 9])], [2, 0])
    assert curves.shape == (2, len(VALUES))
    assert curves[0].tolist() == [abs(v - 10) for v in VALUES]
    assert curves[1, :3].tolist() == [0.0, 4.0, 4.0]
    assert torch.isnan(curves[1, 3:]).all()
