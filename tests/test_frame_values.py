"""Frames the op cannot measure are refused with the clip and frame named, by the op's entry
point and the reference alike; candidate tables that would not fit are refused with their
size."""

from __future__ import annotations

import pytest
import torch

import gamdss
import gamdss.op.reference


@pytest.mark.parametrize("backend", [gamdss.reselect, gamdss.op.reference.reselect])
@pytest.mark.parametrize(
    "bad, words",
    [
        (float("nan"), "non-finite"),
        (float("inf"), "non-finite"),
        (-float("inf"), "non-finite"),
        (1e30, "overflowing float32"),
    ],
)
def test_non_finite_and_overflowing_frames_name_the_clip_and_frame(backend, bad, words):
    g = torch.Generator().manual_seed(0)
    clips = [torch.rand((12, 3, 4, 4), generator=g) for _ in range(3)]
    clips[1][7, 0, 1, 2] = bad
    with pytest.raises(ValueError, match=rf"clip 1 \('b'\): frame 7 has .*{words}"):
        backend(clips, [1, 1, 1], [5, 5, 5], [9, 9, 9], lam_rise=0.5, lam_fall=0.5, clip_ids=["a", "b", "c"])
    # The same value in a frame the windows do not reach is never read, so it is no error.
    clips[1][7] = 0.5
    clips[1][11, 0, 0, 0] = bad
    out = backend(clips, [1, 1, 1], [5, 5, 5], [9, 9, 9], lam_rise=0.1, lam_fall=0.1)
    assert out.offset.tolist() == [9, 9, 9]


def test_padded_tensor_checks_only_frames_the_windows_reach():
    frames = torch.rand((2, 10, 8), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    frames[0, 9] = float("nan")  # padding: clip 0 has 8 frames
    frames[1, 9] = float("nan")  # after clip 1's windows (0..6 at lam 0.1)
    out = gamdss.reselect(frames, [0, 0], [3, 3], [6, 6], lengths=[8, 10])
    listed = gamdss.reselect([frames[0, :8], frames[1]], [0, 0], [3, 3], [6, 6])
    assert out.apex.tolist() == listed.apex.tolist()  # a tensor and a list give the same answer
    frames[1, 4] = float("nan")
    for clips, kw in ((frames, dict(lengths=[8, 10])), ([frames[0, :8], frames[1]], {})):
        with pytest.raises(ValueError, match="clip 1: frame 4 has non-finite"):
            gamdss.reselect(clips, [0, 0], [3, 3], [6, 6], **kw)


def test_float64_frames_take_values_float32_cannot():
    clips = [torch.full((6, 4), 1e30, dtype=torch.float64)]
    clips[0][3] = -1e30
    out = gamdss.reselect(clips, [0], [3], [5], lam_rise=0.0, lam_fall=0.0)
    ref = gamdss.op.reference.reselect(clips, [0], [3], [5], lam_rise=0.0, lam_fall=0.0)
    assert float(out.rise_distance[0]) == pytest.approx(float(ref.rise_distance[0])) == pytest.approx(4e30)


@pytest.mark.parametrize("backend", [gamdss.reselect, gamdss.op.reference.reselect])
def test_float64_frames_whose_centered_distance_would_overflow_are_refused(backend):
    """The centered distance squares the sum of differences: with D = 3 elements, values at 0.9
    of sqrt(max / D) / 2 keep the sum of squares finite but not its square (hand-computed:
    lin = 3.6 b, lin^2 = 12.96 b^2 > max). Refused; at sqrt(max) / (2 D) every distance is
    finite and the selection is the one the exact distances give."""
    fmax = torch.finfo(torch.float64).max
    v = 0.9 * (fmax / 3) ** 0.5 / 2
    frames = torch.tensor([[-v, -v, 0.0], [v, v, 0.0], [-v, -v, 1e150]], dtype=torch.float64)
    with pytest.raises(ValueError, match="clip 0: frame 0 has values up to .*overflowing float64"):
        backend([frames], [0], [1], [2], lam_rise=1.0, lam_fall=0.0, distance="centered")
    w = fmax**0.5 / 6
    frames = torch.tensor([[-w, -w, 0.0], [w, w, 0.0], [-w, -w, w / 1e3]], dtype=torch.float64)
    out = backend([frames], [0], [1], [2], lam_rise=1.0, lam_fall=0.0, distance="centered", return_table=True)
    # By hand (e = 1e-3): d(0,1)^2 = 8 w^2 - (4 w)^2 / 3 = 8/3 w^2; d(0,2)^2 = e^2 w^2 (2/3);
    # d(1,2)^2 = (8 + e^2) w^2 - (4 - e)^2 w^2 / 3 = (8/3 + 8e/3 + 2e^2/3) w^2, the largest.
    table = out.rise_table[0]
    assert torch.isfinite(table[~torch.isnan(table)]).all()
    assert float(table[0, 1]) == pytest.approx((8 / 3) ** 0.5 * w, rel=1e-12)
    assert float(table[1, 2]) == pytest.approx((8 / 3 + 8e-3 / 3 + 2e-6 / 3) ** 0.5 * w, rel=1e-12)
    assert (out.onset.tolist(), out.apex.tolist()) == ([1], [2])


def test_a_huge_lambda_reaches_the_whole_clip_instead_of_overflowing():
    clip = torch.randint(0, 256, (10, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    whole = gamdss.reselect([clip], [2], [5], [7], lam_rise=1e3, lam_fall=1e3)
    for lam in (1e19, 1e300):
        out = gamdss.reselect([clip], [2], [5], [7], lam_rise=lam, lam_fall=lam)
        assert out.windows.tolist() == whole.windows.tolist() == [[2, 9, 0, 9, 7, 9]]
        assert (out.onset.tolist(), out.apex.tolist(), out.offset.tolist()) == (
            whole.onset.tolist(),
            whole.apex.tolist(),
            whole.offset.tolist(),
        )


def test_distance_curves_refuse_nan_frames():
    clip = torch.zeros((5, 2, 2))
    clip[2, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="clip 0: frame 2 has non-finite"):
        gamdss.frame_distance_curves([clip], [0])


def test_tables_that_would_not_fit_are_refused_with_their_size(monkeypatch):
    import gamdss.op.ops as reselection

    short = [torch.zeros((20, 2), dtype=torch.uint8) for _ in range(49)]
    long = torch.zeros((400, 2), dtype=torch.uint8)
    onset, apex, offset = [1] * 50, [10] * 49 + [200], [15] * 49 + [390]
    # The long clip: R_rise = int(0.5 * 199) = 99, so 100 onset (1..100) and 199 apex (101..299)
    # candidates; R_fall = int(0.5 * 190) = 95, offsets 390..399 (clamped): 10. Every clip is
    # padded to that: 50 clips x 8 bytes x (100 * 199 + 10).
    expected = 50 * 8 * (100 * 199 + 10)
    monkeypatch.setattr(reselection, "MAX_TABLE_BYTES", expected - 1)
    with pytest.raises(ValueError, match=r"return_table=True would allocate .*clip 49 has the largest windows"):
        gamdss.reselect(short + [long], onset, apex, offset, lam_rise=0.5, lam_fall=0.5, return_table=True)
    monkeypatch.setattr(reselection, "MAX_TABLE_BYTES", expected)
    out = gamdss.reselect(short + [long], onset, apex, offset, lam_rise=0.5, lam_fall=0.5, return_table=True)
    assert out.rise_table.shape == (50, 100, 199) and out.fall_table.shape == (50, 10)


def test_sparse_frames_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"clips\[0\] is a sparse_coo tensor; pass dense frames"):
        gamdss.reselect([torch.zeros(5, 3).to_sparse()], [0], [2], [4])
    with pytest.raises(ValueError, match="the clips tensor is a sparse_coo tensor"):
        gamdss.reselect(torch.zeros(1, 5, 3).to_sparse(), [0], [2], [4])
