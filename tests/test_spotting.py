"""Apex-spotting baselines (gamdss.spotting) on clips with a known apex."""

from __future__ import annotations

import numpy as np
import pytest

from gamdss import spotting
from gamdss.spotting import frame_difference, frequency, midpoint, optical_flow
from gamdss.spotting.lbp import lbp_images


def warped_clip(
    onset: int, apex: int, offset: int, n_frames: int, size: int = 64, amplitude_px: float = 2.0, seed: int = 0
) -> np.ndarray:
    """uint8 [T, size, size, 3]: a smooth random texture whose lower middle is pushed up by a
    Gaussian bump of ``amplitude_px * p(t)`` pixels, p rising linearly from 0 at the onset to
    1 at the apex and back to 0 at the offset (so the apex is the frame of largest warp)."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 1.5)
    tex = (tex - tex.min()) / (tex.max() - tex.min()) * 200 + 20
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    bump = np.exp(-((yy - 0.6 * size) ** 2 + (xx - 0.5 * size) ** 2) / (2 * (size / 8) ** 2)).astype(np.float32)
    t = np.arange(n_frames)
    profile = np.where(
        t <= apex, np.clip((t - onset) / (apex - onset), 0, 1), np.clip((offset - t) / (offset - apex), 0, 1)
    )
    frames = []
    for p in profile:
        warped = cv2.remap(
            tex, xx, (yy - amplitude_px * p * bump).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        frames.append(np.clip(np.rint(warped), 0, 255).astype(np.uint8))
    return np.repeat(np.stack(frames)[..., None], 3, axis=3)


ONSET, APEX, OFFSET, T, FPS = 5, 14, 23, 29, 60.0
# The frequency method scores how many pixels' LBP codes change inside a window around each
# frame: a plateau over the windows that contain the apex, not a peak at it (measured errors in
# its module docstring). It is checked against its definition and against these properties
# instead (test_frequency_*).
LOCATING = sorted(set(spotting.SPOTTERS) - {"frequency"})


@pytest.fixture(scope="module")
def clean_clip() -> np.ndarray:
    return warped_clip(ONSET, APEX, OFFSET, T)


@pytest.mark.parametrize("method", LOCATING)
def test_each_baseline_finds_the_apex_of_a_clean_clip(clean_clip, method):
    apex = spotting.spot_apex(method, clean_clip, ONSET, OFFSET, fps=FPS)
    assert ONSET <= apex <= OFFSET
    assert abs(apex - APEX) <= 1


@pytest.mark.parametrize("method", sorted(spotting.SPOTTERS))
def test_score_curves_cover_the_range_and_peak_at_the_spotted_apex(clean_clip, method):
    onset, offset = 3, 20
    curve = spotting.score_curve(method, clean_clip, onset, offset, fps=FPS)
    assert curve.shape == (T,) and curve.dtype == np.float64
    assert np.isnan(curve[:onset]).all() and np.isnan(curve[offset + 1 :]).all()
    assert np.isfinite(curve[onset : offset + 1]).all()
    expected = onset + int(np.argmax(curve[onset : offset + 1]))
    assert spotting.spot_apex(method, clean_clip, onset, offset, fps=FPS) == expected


def test_normalised_frame_difference_finds_the_apex_too(clean_clip):
    assert abs(frame_difference.spot_apex(clean_clip, ONSET, OFFSET, variant="normalised") - APEX) <= 1


def test_spotters_accept_grey_frames_and_torch_tensors(clean_clip):
    torch = pytest.importorskip("torch")
    grey = np.ascontiguousarray(clean_clip[..., 0])
    for method in spotting.SPOTTERS:
        expected = spotting.spot_apex(method, clean_clip, ONSET, OFFSET, fps=FPS)
        assert spotting.spot_apex(method, grey, ONSET, OFFSET, fps=FPS) == expected
        assert spotting.spot_apex(method, torch.from_numpy(clean_clip), ONSET, OFFSET, fps=FPS) == expected


def test_midpoint_is_the_floor_of_the_mean():
    frames = np.zeros((12, 4, 4), dtype=np.uint8)
    assert midpoint.spot_apex(frames, 2, 7) == 4
    assert midpoint.spot_apex(frames, 2, 8) == 5
    assert midpoint.spot_apex(frames, 6, 6) == 6
    curve = midpoint.score_curve(frames, 2, 7)
    assert spotting.apex_from_curve(curve, 2, 7) == 4


def test_frame_difference_scores_by_hand():
    # Three 1x2 grey frames: onset [10, 10], then [13, 10], then [10, 16].
    frames = np.array([[[10, 10]], [[13, 10]], [[10, 16]]], dtype=np.uint8)
    absolute = frame_difference.score_curve(frames, 0, 2)
    np.testing.assert_allclose(absolute, [0.0, 1.5, 3.0])
    normalised = frame_difference.score_curve(frames, 0, 2, variant="normalised")
    # t=0: (0+1)/(0+1) per pixel; t=1: ((3+1)/(3+1) + (0+1)/(0+1)) / 2; t=2: ((0+1)/(3+1) + (6+1)/(6+1)) / 2.
    np.testing.assert_allclose(normalised, [1.0, 1.0, (0.25 + 1.0) / 2])
    # A mask restricts the mean to the selected pixels.
    np.testing.assert_allclose(frame_difference.score_curve(frames, 0, 2, mask=[[False, True]]), [0.0, 0.0, 6.0])


def test_lbp_of_a_hand_computed_3x3_patch():
    patch = np.array([[5, 9, 1], [4, 6, 7], [2, 6, 3]], dtype=np.uint8)
    # Neighbours >= 6: top (weight 2), right (16), bottom (64; equal counts as set).
    assert lbp_images(patch).tolist() == [[2 + 16 + 64]]
    flat = np.full((3, 4, 5), 7, dtype=np.uint8)  # all neighbours equal: every bit set
    codes = lbp_images(flat)
    assert codes.shape == (3, 2, 3) and (codes == 255).all()


def test_lbp_of_a_gradient_sets_the_lower_neighbours():
    ramp = np.repeat(np.arange(5, dtype=np.uint8)[:, None] * 10, 4, axis=1)  # brighter downwards
    # Row below is brighter, same row equal: bits of left, right, bottom-left, bottom, bottom-right.
    assert (lbp_images(ramp) == 8 + 16 + 32 + 64 + 128).all()


def test_half_window_keeps_the_papers_duration():
    assert [frequency.half_window(f) for f in (30, 60, 90, 200)] == [5, 9, 14, 30]
    assert frequency.half_window(1) == 1
    with pytest.raises(ValueError, match="fps"):
        frequency.half_window(0)


@pytest.mark.parametrize("shape", [(61, 10, 10), (11, 15, 15), (19, 7, 9)])
def test_high_pass_mask_properties(shape):
    mask = frequency.high_pass_mask(shape)
    centre = tuple(n // 2 for n in shape)
    assert mask.shape == shape and mask.dtype.is_floating_point is False
    assert not mask[centre]  # the zero frequency is never kept
    assert mask[0, 0, 0]  # the corner (highest frequency on all axes) always is
    # No purely temporal or purely spatial-row frequency passes (normalised radius <= 1 < 31/30).
    assert not mask[:, centre[1], centre[2]].any()
    assert not mask[centre[0], :, centre[2]].any()
    # Point symmetry k -> -k wherever -k exists (interior of even axes, all of odd ones).
    inner = mask[tuple(slice(1 - n % 2, None) for n in shape)]
    assert (inner == inner.flip(0, 1, 2)).all()


def test_high_pass_mask_in_bins_is_the_papers_rule():
    # The paper's d0 = 31 on a 61-frame window: with 10-px blocks the sphere is outside the spectrum.
    assert not frequency.high_pass_mask((61, 10, 10), 31).any()
    mask = frequency.high_pass_mask((61, 40, 40), 31)
    assert mask[0, 0, 0] and not mask[30, 20, 20] and not mask[0, 20, 20]  # |k_t| = 30 < 31
    assert mask[0, 20, 8]  # sqrt(30^2 + 12^2) >= 31
    counts = [int(frequency.high_pass_mask((21, 12, 12), d).sum()) for d in (0, 3, 6, 9, 12)]
    assert counts[0] == 21 * 12 * 12 and counts == sorted(counts, reverse=True)


def naive_frequency_score(grey: np.ndarray, n: int, half: int) -> float:
    """The method's definition, one frame, one block at a time, with numpy's FFT."""
    codes = lbp_images(grey).astype(np.float64)
    padded = np.concatenate([np.repeat(codes[:1], half, 0), codes, np.repeat(codes[-1:], half, 0)])
    window = padded[n : n + 2 * half + 1]
    bh, bw = (codes.shape[1] - 1) // 6, (codes.shape[2] - 1) // 6
    w = window.shape[0]
    kt, ky, kx = np.meshgrid(*[(np.arange(m) - m // 2) / max(m // 2, 1) for m in (w, bh, bw)], indexing="ij")
    keep = np.sqrt(kt**2 + ky**2 + kx**2) >= 31 / 30
    total = 0.0
    for i in range(6):
        for j in range(6):
            volume = window[:, i * bh : (i + 1) * bh, j * bw : (j + 1) * bw]
            total += np.abs(np.fft.fftshift(np.fft.fftn(volume)))[keep].sum()
    return total


def test_frequency_score_matches_its_definition(clean_clip):
    grey = np.ascontiguousarray(clean_clip[..., 0])
    curve = frequency.score_curve(grey, 2, 26, fps=30)  # half = 5
    for n in (2, 3, 14, 25, 26):
        np.testing.assert_allclose(curve[n], naive_frequency_score(grey, n, 5), rtol=1e-4)


def pixels_changing_in_window(grey: np.ndarray, half: int) -> np.ndarray:
    """float [T]: the share of pixels whose LBP code is not constant over the window centred on
    each frame (first and last frames replicated, as the method does)."""
    codes = lbp_images(grey)
    padded = np.concatenate([np.repeat(codes[:1], half, 0), codes, np.repeat(codes[-1:], half, 0)])
    return np.array([(padded[n : n + 2 * half + 1] != padded[n + half]).any(axis=0).mean() for n in range(len(codes))])


@pytest.mark.parametrize("fps", [30.0, 60.0])
def test_frequency_score_counts_the_pixels_whose_code_changes_in_the_window(clean_clip, fps):
    # A code change is a step or a pulse in time; in the circular window both carry about the
    # same high-pass energy wherever they are, so the score follows this count (measured r 0.99).
    grey = np.ascontiguousarray(clean_clip[..., 0])
    curve = frequency.score_curve(grey, fps=fps)
    changing = pixels_changing_in_window(grey, frequency.half_window(fps))
    assert np.corrcoef(curve, changing)[0, 1] > 0.95


@pytest.mark.parametrize(
    "onset, apex, offset, n_frames, fps, seed",
    [
        (ONSET, APEX, OFFSET, T, FPS, 0),
        (ONSET, APEX, OFFSET, T, 30.0, 0),
        (4, 10, 26, 32, 60.0, 1),
        (6, 20, 26, 32, 60.0, 2),
        (3, 9, 27, 30, 60.0, 3),
        (8, 16, 30, 40, 90.0, 5),
    ],
)
def test_frequency_peak_window_contains_the_apex_of_a_clean_clip(onset, apex, offset, n_frames, fps, seed):
    # Every window holding the apex spans the whole intensity range, so the score's maximum is
    # one of them: the apex is within half a window (measured errors -4..7 here), not within one frame.
    frames = warped_clip(onset, apex, offset, n_frames, seed=seed)
    spotted = frequency.spot_apex(frames, onset, offset, fps=fps)
    assert onset <= spotted <= offset
    assert abs(spotted - apex) <= frequency.half_window(fps)


def test_frequency_all_blocks_equals_top_36(clean_clip):
    full = frequency.score_curve(clean_clip, ONSET, OFFSET, fps=FPS)
    np.testing.assert_allclose(frequency.score_curve(clean_clip, ONSET, OFFSET, fps=FPS, top_k=36), full)
    top9 = frequency.score_curve(clean_clip, ONSET, OFFSET, fps=FPS, top_k=9)
    assert (top9[ONSET : OFFSET + 1] <= full[ONSET : OFFSET + 1]).all()
    # Scoring a sub-range gives the same scores as scoring the whole clip (ends replicated either way).
    whole = frequency.score_curve(clean_clip, fps=FPS)
    np.testing.assert_allclose(full[ONSET : OFFSET + 1], whole[ONSET : OFFSET + 1], rtol=1e-5)


def test_frequency_of_a_static_clip_is_flat():
    frames = np.repeat(warped_clip(0, 1, 2, 3)[:1], 12, axis=0)
    curve = frequency.score_curve(frames, fps=30)
    np.testing.assert_allclose(curve, curve[0], rtol=1e-6)


def test_optical_flow_ignores_a_global_shift():
    cv2 = pytest.importorskip("cv2")
    base = warped_clip(0, 1, 2, 3)[0, ..., 0]
    shifted = [
        cv2.warpAffine(base, np.float32([[1, 0, s], [0, 1, 0]]), base.shape[::-1], borderMode=cv2.BORDER_REFLECT)
        for s in (0.0, 0.5, 1.0)
    ]
    frames = np.stack(shifted)
    crop = np.zeros(base.shape, dtype=bool)
    crop[8:-8, 8:-8] = True  # away from the reflected border
    cancelled = optical_flow.score_curve(frames, 0, 2, mask=crop)
    raw = optical_flow.score_curve(frames, 0, 2, mask=crop, cancel_head_motion=False)
    assert raw[2] > 0.8 and cancelled[2] < 0.2 * raw[2]


def test_baseline_on_a_generated_clip():
    synthetic = pytest.importorskip("gamdss.data.synthetic")
    config = synthetic.SyntheticConfig(
        fps=60, size=(64, 64), noise_sd=0.0, jpeg_quality=None, head_motion_px=0.0, amplitude_px=(2.0, 2.5)
    )
    clip = synthetic.make_clip(config, seed=3, subject=1)
    onset, apex, offset = clip.truth
    frames = clip.frames.numpy()
    for method in ("frame_difference", "optical_flow"):
        assert abs(spotting.spot_apex(method, frames, onset, offset, fps=clip.fps) - apex) <= 1, method
    assert spotting.spot_apex("midpoint", frames, onset, offset) == (onset + offset) // 2


def test_bad_inputs_are_named():
    frames = np.zeros((10, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="onset=6, offset=4"):
        spotting.spot_apex("frame_difference", frames, 6, 4)
    with pytest.raises(ValueError, match="T=10"):
        spotting.spot_apex("optical_flow", frames, 0, 10)
    with pytest.raises(ValueError, match="unknown spotting method 'peak'"):
        spotting.spot_apex("peak", frames, 0, 5)
    with pytest.raises(TypeError, match="varient"):
        spotting.spot_apex("frame_difference", frames, 0, 5, varient="normalised")
    with pytest.raises(TypeError, match="uint8"):
        spotting.spot_apex("frame_difference", frames.astype(np.float32), 0, 5)
    with pytest.raises(ValueError, match="channels must be last"):
        spotting.spot_apex("frame_difference", np.zeros((10, 3, 8, 8), dtype=np.uint8), 0, 5)
    with pytest.raises(ValueError, match="mask"):
        frame_difference.score_curve(frames, 0, 5, mask=np.zeros((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="variant"):
        frame_difference.score_curve(frames, 0, 5, variant="ratio")
    with pytest.raises(ValueError, match="too small"):
        frequency.score_curve(np.zeros((10, 8, 8), dtype=np.uint8), fps=30)


def test_apex_from_curve_takes_the_first_maximum_and_skips_nan():
    curve = np.array([np.nan, 1.0, 3.0, 3.0, np.nan, 2.0])
    assert spotting.apex_from_curve(curve, 0, 5) == 2
    assert spotting.apex_from_curve(curve, 4, 4) == 4
