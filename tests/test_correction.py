"""Noise-aware keyframe correction (``gamdss.reselection.noise_aware``) against known truth: blinks next to
the apex are not taken for it, clips without an action are left alone, confidence grows with
the action's amplitude, accurate annotations survive every confounder, the onset is never
touched and the offset only moves later (not past the truth); hand-made actions; hand-computed
cases of ``select_apex``, ``noise_floor``, ``eye_weights`` and ``registered_residual``; bad
input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gamdss.data.synthetic import SyntheticConfig, make_clip, make_face
from gamdss.reselection.noise_aware import (
    WORKING_SIZE,
    Correction,
    box_grey,
    correct_clip,
    correct_keyframes,
    eye_weights,
    frames_needed,
    noise_floor,
    registered_residual,
    select_apex,
)
from gamdss.settings.reselection import preset

RECOMMENDED = preset("recommended")
FPS = 200.0
WINDOW = round(RECOMMENDED.apex_window_ms * FPS / 1000)  # 60 ms: 12 frames
REF = round(RECOMMENDED.reference_ms * FPS / 1000)  # 10 ms: 2 frames up to the onset
# Small clips at 200 fps with the default camera (noise 1 gl, JPEG 90).
BASE = SyntheticConfig(size=(64, 64), fps=FPS)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _eyes(clip):
    """The true eye centres of a clip's face (the generator's landmarks)."""
    return make_face(clip.subject, clip.config.size).landmarks[:2]


def _correct(clips, apex=None, *, settings=None, eyes="truth", offset=None, **kwargs):
    apex = [c.apex for c in clips] if apex is None else list(apex)
    offset = [c.offset for c in clips] if offset is None else list(offset)
    eyes = [_eyes(c) for c in clips] if eyes == "truth" else eyes
    r = correct_keyframes(
        [c.frames for c in clips], [c.onset for c in clips], apex, offset, FPS, settings=settings, eyes=eyes, **kwargs
    )
    _check_keyframe_rules(r, [c.onset for c in clips], offset, settings or RECOMMENDED)
    return r


def _check_keyframe_rules(r: Correction, onsets, offsets, settings=RECOMMENDED):
    """(e) The onset is returned as annotated with NaN confidence; the apex stays inside the
    annotated onset..offset with a finite confidence >= 0; the offset never moves earlier, and
    moves later only with a confidence above ``offset_z`` (NaN: not assessed, kept; always
    NaN and kept with ``move_offset`` off); the noise floor is positive."""
    b = len(onsets)
    onsets, offsets = torch.tensor(list(onsets)), torch.tensor(list(offsets))
    assert r.onset.dtype == torch.int64 and torch.equal(r.onset, onsets)
    assert r.confidence.shape == (b, 3) and r.confidence.dtype == torch.float64
    assert torch.isnan(r.confidence[:, 0]).all()
    assert torch.isfinite(r.confidence[:, 1]).all() and (r.confidence[:, 1] >= 0).all()
    assert ((onsets <= r.apex) & (r.apex <= offsets)).all()
    off_conf = r.confidence[:, 2]
    assert (r.offset >= offsets).all()
    moved = r.offset != offsets
    assert (off_conf[moved] > settings.offset_z).all()
    assert (torch.isnan(off_conf) | (off_conf >= 0)).all()
    if not settings.move_offset:
        assert torch.isnan(off_conf).all() and not moved.any()
    assert (r.noise_floor > 0).all()


def _static_clip(n=60, size=64, noise_sd=2.0, seed=0, subject=0):
    """A still face plus i.i.d. Gaussian sensor noise: uint8 [T, H, W, 3] and its eyes."""
    face = make_face(subject, (size, size))
    rng = np.random.default_rng(seed)
    x = face.image[None].astype(np.float64) + rng.normal(0.0, noise_sd, (n, size, size, 3))
    return torch.from_numpy(np.clip(np.rint(x), 0, 255).astype(np.uint8)), face.landmarks[:2]


def _bump_clip(peak, n=60, size=64, amp=40.0, half=6, seed=0):
    """A still face with noise plus a local bright bump on the cheek whose strength rises
    linearly to 1 at frame ``peak`` and falls back over ``half`` frames: the only change."""
    frames, eyes = _static_clip(n, size, seed=seed)
    face = make_face(0, (size, size))
    cx, cy = face.landmarks[2] + np.array([-6.0, 3.0])  # beside the nose, far from the eyes
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    blob = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 2.5**2))
    strength = np.clip(1.0 - np.abs(np.arange(n) - peak) / half, 0.0, 1.0)
    x = frames.numpy().astype(np.float64) + amp * strength[:, None, None, None] * blob[None, ..., None]
    return torch.from_numpy(np.clip(np.rint(x), 0, 255).astype(np.uint8)), eyes


# --------------------------------------------------------------------------- (a) blinks
def _blink_near_apex_clips(count):
    """Clips whose blink overlaps the apex window (+-60 ms) without covering the true apex.
    Seeds are searched on 16 px renderings (cheap); timing does not depend on the size."""
    cfg = BASE.replace(blink_probability=1.0)
    tiny = cfg.replace(size=(16, 16), noise_sd=0.0, jpeg_quality=None)
    clips = []
    for seed in range(300):
        probe = make_clip(tiny, seed=seed, subject=seed % 6)
        if probe.blink_frames is None:
            continue
        first, last = probe.blink_frames
        if first <= probe.apex + WINDOW and last >= probe.apex - WINDOW and not first <= probe.apex <= last:
            clip = make_clip(cfg, seed=seed, subject=seed % 6)
            assert clip.truth == probe.truth and clip.blink_frames == probe.blink_frames
            clips.append(clip)
            if len(clips) == count:
                return clips
    raise AssertionError("not enough clips with a blink next to the apex")


def test_blink_next_to_the_apex_is_not_taken_for_it():
    clips = _blink_near_apex_clips(12)
    # Annotations at the truth and 3 frames toward the blink, but never inside it.
    toward = []
    for c in clips:
        first, last = c.blink_frames
        step = 1 if first > c.apex else -1
        gap = (first - c.apex - 1) if step > 0 else (c.apex - last - 1)
        toward.append(c.apex + step * min(3, gap))
    for k, apex in enumerate(([c.apex for c in clips], toward)):
        r = _correct(clips, apex, eyes=None)  # eyes found by MTCNN, as in use
        assert r.eyes_found.all()
        for c, ann, got in zip(clips, apex, r.apex.tolist()):
            first, last = c.blink_frames
            in_blink = first <= got <= last
            assert not in_blink or abs(got - c.apex) <= 2, (c.seed, c.truth, c.blink_frames, ann, got)
        if k == 0:  # accurate annotations mostly stay exactly
            assert (r.apex == torch.tensor([c.apex for c in clips])).float().mean() >= 0.9
    # Control: the same clips are a trap without the eye mask (the blink is the largest
    # change in the window), so the test above is not passing by accident.
    r = _correct(clips, toward, settings=RECOMMENDED.replace(mask_eyes=False), eyes=None)
    assert not r.eyes_found.any()
    into_blink = sum(
        c.blink_frames[0] <= got <= c.blink_frames[1] and abs(got - c.apex) > 2
        for c, got in zip(clips, r.apex.tolist())
    )
    assert into_blink >= 3


# --------------------------------------------------------------------------- (b) no action
def test_still_face_with_noise_moves_nothing():
    frames, eyes = _static_clip()
    # Every annotated apex strictly after the onset (the onset frame is part of the reference).
    anns = list(range(11, 51))
    r = correct_keyframes([frames] * len(anns), [10] * len(anns), anns, [50] * len(anns), FPS, eyes=[eyes] * len(anns))
    _check_keyframe_rules(r, [10] * len(anns), [50] * len(anns))
    assert r.apex.tolist() == anns
    assert (r.confidence[:, 1] <= RECOMMENDED.move_z).all()


def test_clips_without_an_action_move_nothing():
    """Amplitude 1e-6 px: nothing moves on the skin. Sensor noise, JPEG, flicker and blinks
    are on; rigid head motion is off (the next test has it on)."""
    cfg = BASE.replace(amplitude_px=(1e-6, 1e-6), head_motion_px=0.0, flicker_gl=1.5, blink_probability=0.5)
    clips = [make_clip(cfg, seed=s, subject=s % 6) for s in range(12)]
    assert any(c.blink_frames for c in clips)
    for shift in (0, -6, 6):
        apex = [min(max(c.apex + shift, c.onset + 1), c.offset) for c in clips]
        r = _correct(clips, apex)
        assert r.apex.tolist() == apex, shift
        assert (r.confidence[:, 1] <= RECOMMENDED.move_z).all()


def test_clips_without_an_action_move_nothing_under_head_wander():
    cfg = BASE.replace(amplitude_px=(1e-6, 1e-6))
    clips = [make_clip(cfg, seed=s, subject=s % 6) for s in range(10)]
    assert _correct(clips).apex.tolist() == [c.apex for c in clips]


# --------------------------------------------------------------------------- (c) confidence
def test_confidence_grows_with_the_amplitude():
    amps = (0.5, 1.0, 2.0, 3.0)
    seeds = range(8)
    conf = np.empty((len(seeds), len(amps)))
    for j, amp in enumerate(amps):
        clips = [make_clip(BASE.replace(amplitude_px=(amp, amp)), seed=s, subject=s % 6) for s in seeds]
        apex = [max(c.onset + 1, c.apex - 6) for c in clips]  # 30 ms early
        r = _correct(clips, apex)
        conf[:, j] = r.confidence[:, 1].numpy()
        if amp >= 2.0:  # a clear action: the apex is corrected to within 2 frames of the truth
            assert np.all(np.abs(r.apex.numpy() - np.array([c.apex for c in clips])) <= 2), amp
    mean = conf.mean(axis=0)
    # Single clips are noisy (the evidence's own noise grows with the signal); the mean is not.
    assert np.all(np.diff(mean) > 0), mean
    assert mean[-1] > 3 * mean[0], mean
    assert np.all(conf[:, -1] > conf[:, 0]), conf


# --------------------------------------------------------------------------- (d) accurate annotations
def test_accurate_annotations_stay_under_all_confounders():
    cfg = BASE.replace(
        flicker_gl=1.5, blink_probability=0.5, head_rotation_deg=0.5, head_scale=0.005, rise_power=2.0, fall_power=2.0
    )
    clips = [make_clip(cfg, seed=s, subject=s) for s in range(16)]
    assert sum(c.blink_frames is not None for c in clips) >= 4
    r = _correct(clips, eyes=None)
    assert r.eyes_found.all()
    drift = np.abs(r.apex.numpy() - np.array([c.apex for c in clips]))
    assert np.mean(drift == 0) >= 0.8 and drift.mean() <= 1.5, drift


# --------------------------------------------------------------------------- (e) onset, offset, evidence
def test_onset_is_never_changed_and_evidence_covers_the_frames_used():
    clips = [make_clip(BASE, seed=s, subject=s % 6) for s in range(4)]
    # Deliberately bad keyframes: early onsets, an offset at the clip's last frame, one
    # before the true offset, one late; apexes 3 frames early.
    onsets = [max(0, c.onset - 4) for c in clips]
    offsets = [len(clips[0]) - 1, clips[1].offset - 5, min(len(clips[2]) - 1, clips[2].offset + 6), clips[3].offset]
    apex = [c.apex - 3 for c in clips]
    for settings in (RECOMMENDED, RECOMMENDED.replace(move_offset=False)):
        r = correct_keyframes(
            [c.frames for c in clips],
            onsets,
            apex,
            offsets,
            FPS,
            settings=settings,
            eyes=[_eyes(c) for c in clips],
            return_evidence=True,
        )
        _check_keyframe_rules(r, onsets, offsets, settings)
        assert math.isnan(r.confidence[0, 2])  # no neutral frames after an offset at the last frame
        for c, o, a, f, ev, got in zip(clips, onsets, apex, offsets, r.evidence, r.apex.tolist()):
            first, last = frames_needed(o, a, f, FPS, len(c), settings)
            assert first == (max(0, o - REF) if o else 0)  # the REF frames before the onset
            assert last == len(c) - 1  # the noise floor uses the whole tail, whatever move_offset is
            assert ev.shape == (len(c),) and ev.dtype == torch.float64
            used = torch.zeros(len(c), dtype=torch.bool)
            used[first : last + 1] = True
            assert torch.isfinite(ev[used]).all() and torch.isnan(ev[~used]).all() and (ev[used] >= 0).all()
            assert max(o, a - WINDOW) <= got <= min(f, a + WINDOW)
    plain = correct_keyframes([c.frames for c in clips], onsets, apex, offsets, FPS, eyes=[_eyes(c) for c in clips])
    assert plain.evidence is None


def test_offset_moves_only_later_and_not_past_the_truth():
    """Without rigid head motion: offsets marked inside the decay move later but never past
    the true offset, and get closer to it; accurate and late offsets stay (one-sided)."""
    cfg = BASE.replace(head_motion_px=0.0)
    clips = [make_clip(cfg, seed=s, subject=s % 6) for s in range(12)]
    truth = np.array([c.offset for c in clips])
    early = [c.offset - (c.offset - c.apex) // 2 for c in clips]  # half-way down the decay
    late = [min(len(c) - 5, c.offset + 6) for c in clips]
    r = _correct(clips, offset=early)
    got = r.offset.numpy()
    assert np.all(got <= truth), got - truth
    moved = got != np.array(early)
    assert moved.mean() >= 0.75, got - truth
    assert np.all(np.abs(got - truth)[moved] < np.abs(np.array(early) - truth)[moved])
    for offs in ([c.offset for c in clips], late):
        r = _correct(clips, offset=offs)
        assert r.offset.tolist() == offs
        assert (r.confidence[:, 2] <= RECOMMENDED.offset_z).all()
    off = _correct(clips, offset=early, settings=RECOMMENDED.replace(move_offset=False))
    assert off.offset.tolist() == early and torch.isnan(off.confidence[:, 2]).all()


def test_offset_is_not_moved_past_the_truth_under_head_wander():
    clips = [make_clip(BASE, seed=s, subject=s % 6) for s in (0, 6)]
    early = [c.offset - (c.offset - c.apex) // 2 for c in clips]
    got = _correct(clips, offset=early).offset.numpy()
    assert np.all(got <= np.array([c.offset for c in clips]))


def test_offset_of_a_hand_made_action():
    """The bump of ``_bump_clip`` changes frames 25..35 only: an offset inside it moves to 36,
    the first neutral frame; one after it stays; too few frames after the offset: not
    assessed."""
    frames, eyes = _bump_clip(peak=30)
    offsets = [32, 40, 36, 56]
    r = correct_keyframes([frames] * 4, [10] * 4, [30] * 4, offsets, FPS, eyes=[eyes] * 4)
    _check_keyframe_rules(r, [10] * 4, offsets)
    assert r.offset.tolist() == [36, 40, 36, 56]
    assert r.confidence[0, 2] > RECOMMENDED.offset_z
    assert (r.confidence[1:3, 2] <= RECOMMENDED.offset_z).all()
    assert math.isnan(r.confidence[3, 2])  # 3 frames after it: fewer than the end reference needs
    assert r.apex.tolist() == [30] * 4


def test_batch_equals_clip_by_clip_and_grey_equals_rgb():
    clips = [make_clip(BASE, seed=s, subject=s % 6) for s in (20, 21, 22)]
    apex = [c.apex + 5 for c in clips]
    batch = _correct(clips, apex)
    for i, c in enumerate(clips):
        one = _correct([c], [apex[i]])
        assert int(one.apex) == int(batch.apex[i])
        assert float(one.confidence[0, 1]) == pytest.approx(float(batch.confidence[i, 1]))
    # Grey frames (equal channels) give the RGB result; MTCNN is not run on grey frames.
    c = clips[0]
    grey = c.frames[..., :1].expand(-1, -1, -1, 3).contiguous()
    rgb = correct_keyframes([grey], [c.onset], [apex[0]], [c.offset], FPS, eyes=[_eyes(c)], return_evidence=True)
    flat = correct_keyframes(
        [grey[..., 0]], [c.onset], [apex[0]], [c.offset], FPS, eyes=[_eyes(c)], return_evidence=True
    )
    assert torch.equal(rgb.apex, flat.apex)
    assert torch.allclose(rgb.evidence[0], flat.evidence[0], equal_nan=True, rtol=1e-5)
    unmasked = correct_keyframes([grey[..., 0]], [c.onset], [apex[0]], [c.offset], FPS)
    assert not unmasked.eyes_found.any()


def test_numpy_clips_and_read_only_memory_maps_give_the_tensor_result(tmp_path):
    """A cache's frames (a read-only numpy memory map) go in as they are."""
    c = make_clip(BASE, seed=23, subject=1)
    want = correct_keyframes([c.frames], [c.onset], [c.apex + 5], [c.offset], FPS, eyes=[_eyes(c)])
    np.save(tmp_path / "clip.npy", c.frames.numpy())
    mapped = np.load(tmp_path / "clip.npy", mmap_mode="r")
    reversed_rows = np.ascontiguousarray(c.frames.numpy()[:, ::-1])[:, ::-1]  # the same pixels, stride < 0
    assert reversed_rows.strides[1] < 0
    for clip in (c.frames.numpy(), mapped, reversed_rows):
        got = correct_keyframes([clip], [c.onset], [c.apex + 5], [c.offset], FPS, eyes=[_eyes(c)])
        assert torch.equal(got.apex, want.apex) and torch.equal(got.offset, want.offset)
        assert torch.equal(got.confidence.isnan(), want.confidence.isnan())
        assert torch.allclose(got.confidence.nan_to_num(), want.confidence.nan_to_num())


def test_local_change_is_found_inside_the_window_only():
    """A hand-made action (a bump rising to frame 30): found from 6 frames away; from
    further than the 60 ms window the apex moves at most to the window's edge; never past the
    annotated offset."""
    frames, eyes = _bump_clip(peak=30)
    r = correct_keyframes([frames] * 4, [10] * 4, [24, 36, 30, 24], [50, 50, 50, 28], FPS, eyes=[eyes] * 4)
    _check_keyframe_rules(r, [10] * 4, [50, 50, 50, 28])
    assert r.apex.tolist()[:3] == [30, 30, 30] and r.offset.tolist() == [50, 50, 50, 36]
    assert r.confidence[0, 1] > RECOMMENDED.move_z and r.confidence[2, 1] == 0.0
    assert r.apex[3] == 28  # the annotated offset 28 bounds the search; the bump still rises there
    keys, conf, sigma, ev = correct_clip(frames, 10, 24, 50, FPS, RECOMMENDED, eyes)
    assert keys == (10, 30, 50) and math.isnan(conf[0]) and conf[1] == pytest.approx(float(r.confidence[0, 1]))
    assert int(np.nanargmax(ev)) == 30 and sigma == pytest.approx(float(r.noise_floor[0]))
    # Outside the bump (frames 25..35 change) the evidence is noise: far below the peak.
    quiet = np.r_[12:24, 37:50]
    assert ev[quiet].max() < ev[30] - 20 * sigma
    far = correct_keyframes([frames], [5], [14], [50], FPS, eyes=[eyes])  # peak 16 frames away
    assert int(far.apex) == 14 + WINDOW  # the window's edge, where the bump is rising
    # At 100 fps the same frames are 10 ms apart: the window is 6 frames.
    slow = correct_keyframes([frames], [10], [22], [50], 100.0, eyes=[eyes])
    assert int(slow.apex) == 28


def test_an_apex_window_under_half_a_frame_keeps_the_apex():
    """``apex_window_ms`` 0 (or under half a frame) was widened to one frame each side: the
    apex still moved while the settings said "apex within 0 ms"."""
    frames, eyes = _bump_clip(peak=30)
    for ms, apex in ((0.0, 29), (2.4, 29), (5.0, 30), (10.0, 30)):  # 200 fps: 5 ms per frame
        settings = RECOMMENDED.replace(apex_window_ms=ms, move_z=1.0, tie_z=0.5)
        r = correct_keyframes([frames], [10], [29], [50], FPS, eyes=[eyes], settings=settings)
        assert int(r.apex) == apex, ms
        if apex == 29:
            assert float(r.confidence[0, 1]) == 0.0


# --------------------------------------------------------------------------- (f) select_apex, noise_floor
def test_select_apex_hand_computed():
    s = preset("recommended", move_z=6.0, tie_z=1.0)
    e = np.array([0.0, 1.0, 2.0, 9.5, 10.0, 3.0, 0.0])
    # Best 10 (frame 4); frame 3 (9.5) is a tie within 1 sigma and nearer annotation 1.
    assert select_apex(e, 1, 0, 6, 1.0, s) == (3, 8.5)
    # From frame 6 the nearer tie is frame 4: gain 10.
    assert select_apex(e, 6, 0, 6, 1.0, s) == (4, 10.0)
    # sigma 2: ties are >= 8 (frames 3, 4); gain (9.5 - 1) / 2 = 4.25 <= 6: no move.
    assert select_apex(e, 1, 0, 6, 2.0, s) == (1, 4.25)
    # A gain of exactly move_z does not move (strictly more is needed).
    assert select_apex(np.array([0.0, 0.0, 0.0, 9.0, 3.0]), 4, 0, 4, 1.0, s) == (4, 6.0)
    # Equidistant ties: the earlier frame.
    assert select_apex(np.array([10.0, 0.0, 10.0]), 1, 0, 2, 1.0, s) == (0, 10.0)
    # The annotation is itself a tie: it stays, confidence 0 (never negative).
    assert select_apex(np.array([10.0, 9.5, 0.0]), 1, 0, 2, 1.0, s) == (1, 0.0)
    assert select_apex(np.array([1.0, 5.0, 0.0]), 1, 0, 2, 1.0, s) == (1, 0.0)
    # Only lo..hi are candidates, however large the rest.
    e = np.array([100.0, 0.0, 8.0, 0.0, 100.0])
    assert select_apex(e, 1, 1, 3, 1.0, s) == (2, 8.0)
    # Larger move_z / tie_z from the settings.
    assert select_apex(e, 1, 1, 3, 1.0, s.replace(move_z=8.0)) == (1, 8.0)
    wide = s.replace(tie_z=5.0)
    assert select_apex(np.array([0.0, 7.0, 10.0, 0.0]), 0, 0, 3, 1.0, wide) == (1, 7.0)


def test_noise_floor_hand_computed():
    # A quadratic has constant second differences: MAD 0, so the floor is 1e-6 of the
    # curve's largest magnitude (3 * 81 + 5 = 248).
    t = np.arange(10.0)
    assert noise_floor(3 * t**2 + 5) == pytest.approx(248e-6)
    # Alternating +-s: second differences are +-4s, median 0, MAD 4s.
    alt = 2.0 * (-1.0) ** np.arange(12)
    assert noise_floor(alt) == pytest.approx(1.4826 * 8.0 / math.sqrt(6.0))
    # A linear trend adds nothing.
    assert noise_floor(alt + 50.0 * np.arange(12)) == pytest.approx(1.4826 * 8.0 / math.sqrt(6.0))
    # Never zero; short curves.
    assert noise_floor(np.zeros(10)) == 1e-12
    # Fewer than MIN_NOISE_SAMPLES second differences: no estimate (and so no move).
    assert math.isnan(noise_floor(np.array([3.0, -7.0]))) and math.isnan(noise_floor(np.array([])))
    assert math.isnan(noise_floor(alt[:9])) and math.isfinite(noise_floor(alt[:10]))


def test_noise_floor_measures_frame_noise_under_a_smooth_curve():
    rng = np.random.default_rng(42)
    t = np.arange(4000.0)
    smooth = 500.0 * np.exp(-(((t - 2000) / 600.0) ** 2)) + 0.01 * t  # slow: 2nd differences ~ 0
    for sd in (0.5, 3.0):
        got = noise_floor(smooth + rng.normal(0.0, sd, t.size))
        assert got == pytest.approx(sd, rel=0.06)
    # A few huge outliers (a blink) do not change the robust estimate much.
    noisy = smooth + rng.normal(0.0, 1.0, t.size)
    noisy[1000:1010] += 1000.0
    assert noise_floor(noisy) == pytest.approx(1.0, rel=0.08)


# --------------------------------------------------------------------------- (g) registration
H = W = 48


def _scene(dx=0.0, dy=0.0, angle=0.0, scale=1.0):
    """A smooth image (blobs and a slow sinusoid), moved by (dx, dy), rotated by ``angle``
    degrees and scaled about the centre: sampled analytically, no interpolation."""
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    th = np.deg2rad(angle)
    rx, ry = xs - dx - W / 2, ys - dy - H / 2
    sx = (np.cos(th) * rx + np.sin(th) * ry) / scale + W / 2
    sy = (-np.sin(th) * rx + np.cos(th) * ry) / scale + H / 2
    return (
        100
        + 40 * np.exp(-((sx - 20) ** 2 + (sy - 22) ** 2) / (2 * 8.0**2))
        + 25 * np.exp(-((sx - 31) ** 2 + (sy - 27) ** 2) / (2 * 6.0**2))
        + 10 * np.sin(2 * np.pi * sx / 24.0) * np.cos(2 * np.pi * sy / 30.0)
    )


def _bump(x0=12.0, y0=36.0, amp=6.0, s=1.5):
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    return amp * np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * s * s))


def _energy(x):
    return x.double().square().flatten(1).sum(1)


def test_registered_residual_removes_global_motion_and_brightness_keeps_local_change():
    ref = _scene()
    globals_ = [
        _scene(0.3, -0.2),
        1.05 * ref + 3.0,
        _scene(angle=0.5),
        _scene(scale=1.01),
        0.97 * _scene(0.2, 0.25, 0.3, 0.995) - 2.0,
    ]
    bump = _bump()
    x = torch.tensor(np.stack(globals_ + [ref + bump, _scene(0.3, -0.2) + bump]), dtype=torch.float32)
    r = torch.tensor(ref, dtype=torch.float32)
    res = registered_residual(x, r, torch.ones(H, W))
    assert res.shape == x.shape and res.dtype == torch.float32
    raw, left = _energy(x - r), _energy(res)
    assert torch.all(raw[:5] > 50.0)
    assert torch.all(left[:5] < 0.01 * raw[:5]), (left / raw)[:5]
    # The local bump survives, alone or on top of a shift, and the residual is the bump.
    b = torch.tensor(bump, dtype=torch.float32)
    for k in (5, 6):
        assert left[k] > 0.9 * b.square().sum()
        assert float((res[k] * b).sum() / b.square().sum()) > 0.9
    # The reference itself leaves nothing.
    assert _energy(registered_residual(r[None], r, torch.ones(H, W))).item() < 1e-6


def test_registration_weights_keep_a_masked_change_out_of_the_fit():
    """A large change inside a zero-weight region (an eye closing) does not spoil the fit
    of a global shift elsewhere."""
    ref = _scene()
    moved = _scene(0.3, -0.2)
    moved[8:16, 10:22] += 60.0
    weights = torch.ones(H, W)
    weights[6:18, 8:24] = 0.0
    x = torch.tensor(moved[None], dtype=torch.float32)
    r = torch.tensor(ref, dtype=torch.float32)
    outside = weights.bool()
    masked = registered_residual(x, r, weights)[0][outside]
    unmasked = registered_residual(x, r, torch.ones(H, W))[0][outside]
    raw = (x[0] - r)[outside]
    assert masked.square().sum() < 0.01 * raw.square().sum()
    assert unmasked.square().sum() > 10 * masked.square().sum()


def test_eye_weights_hand_computed():
    assert torch.equal(eye_weights((20, 30), None, 1), torch.ones(20, 30))
    # Eyes 20 px apart: half axes 0.52 * 20 = 10.4 (x) and 0.33 * 20 = 6.6 (y).
    w = eye_weights((24, 44), np.array([[11.0, 10.0], [31.0, 10.0]]), 1)
    assert w.shape == (24, 44) and set(w.unique().tolist()) == {0.0, 1.0}
    assert w[9, 10] == 0 and w[9, 30] == 0  # pixel centres (10.5, 9.5), (30.5, 9.5)
    assert w[9, 1] == 0 and w[9, 0] == 1  # dx 9.5 from the left eye: (9.5 / 10.4)^2 < 1; 10.5: outside
    assert w[9, 40] == 0 and w[9, 41] == 1  # the same right of the right eye
    assert w[3, 10] == 0 and w[2, 10] == 1  # dy 6.5 inside ((6.5 / 6.6)^2 < 1), 7.5 outside
    assert w[16, 10] == 0 and w[17, 10] == 1
    assert w[20, 20] == 1 and w[0, 43] == 1
    # Full-resolution eyes on frames pooled by 2: the same mask at half size.
    half = eye_weights((12, 22), np.array([[22.0, 20.0], [62.0, 20.0]]), 2)
    assert torch.equal(half, eye_weights((12, 22), np.array([[11.0, 10.0], [31.0, 10.0]]), 1))
    assert (1 - w).sum() == pytest.approx(2 * math.pi * 10.4 * 6.6, rel=0.1)


def _block_means_float64(frames: torch.Tensor, f: int) -> torch.Tensor:
    """Oracle: float64 mean over each f x f block and the channels, by explicit loops."""
    x = frames.to(torch.float64)
    if x.dim() == 3:
        x = x[..., None]
    t, height, width = x.shape[:3]
    h, w = height // f, width // f
    out = torch.empty(t, h, w, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            out[:, i, j] = x[:, i * f : (i + 1) * f, j * f : (j + 1) * f].mean(dim=(1, 2, 3))
    return out


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((3, 224, 224, 3), torch.uint8),  # factor 5, 224 = 44 * 5 + 4: a partial block left out
        ((2, 100, 130, 3), torch.uint8),  # factor 2, not square
        ((2, 150, 97, 1), torch.uint8),  # factor 2 by the shorter side, one channel
        ((2, 96, 96), torch.float32),  # grey float, factor 2
        ((2, 96, 96, 3), torch.bfloat16),  # numpy has no bfloat16
        ((2, 40, 30, 3), torch.uint8),  # factor 1: the channel mean only
    ],
)
def test_box_grey_is_the_block_mean_of_the_grey_levels(shape, dtype):
    g = torch.Generator().manual_seed(7)
    frames = torch.randint(0, 256, shape, generator=g, dtype=torch.int64).to(dtype)
    x, f = box_grey(frames)
    assert f == max(1, round(min(shape[1:3]) / WORKING_SIZE))
    expected = _block_means_float64(frames, f)
    assert x.dtype == torch.float32 and x.shape == expected.shape
    torch.testing.assert_close(x.to(torch.float64), expected, rtol=0, atol=1e-4)


# --------------------------------------------------------------------------- (h) bad input
def test_bad_input_raises_value_error_naming_the_problem():
    clip = make_clip(BASE, seed=1)
    f, (o, a, e) = clip.frames, clip.truth
    eyes = [_eyes(clip)]
    with pytest.raises(
        ValueError, match=r"clip 0: frames must be a \[T, H, W, 3\] or \[T, H, W\] tensor, got \(5, 8\)"
    ):
        correct_keyframes([torch.zeros(5, 8, dtype=torch.uint8)], [o], [a], [e], FPS, eyes=eyes)
    with pytest.raises(ValueError, match=rf"frames must be .* got \(1, {len(clip)}, 64, 64, 3\)"):
        correct_keyframes([f[None]], [o], [a], [e], FPS, eyes=eyes)
    with pytest.raises(ValueError, match=r"clip c7: frames must be .* got \(.*, 2\)"):
        correct_keyframes([f[..., :2]], [o], [a], [e], FPS, eyes=eyes, clip_ids=["c7"])
    with pytest.raises(ValueError, match=r"frames must be .* got list"):
        correct_keyframes([list(f)], [o], [a], [e], FPS, eyes=eyes)
    with pytest.raises(ValueError, match=rf"onset={a}, apex={o}, offset={e} violates 0 <= onset <= apex"):
        correct_keyframes([f], [a], [o], [e], FPS, eyes=eyes)
    with pytest.raises(ValueError, match=rf"offset={len(clip)} violates .* T={len(clip)}"):
        correct_keyframes([f], [o], [a], [len(clip)], FPS, eyes=eyes)
    with pytest.raises(ValueError, match="apex has 2 values for a batch of 1 clips"):
        correct_keyframes([f], [o], [a, a], [e], FPS, eyes=eyes)
    for fps in (0.0, -200.0, math.nan, math.inf, [200.0, 0.0]):
        clips = [f] * (2 if isinstance(fps, list) else 1)
        n = len(clips)
        with pytest.raises(ValueError, match="fps must be positive"):
            correct_keyframes(clips, [o] * n, [a] * n, [e] * n, fps, eyes=eyes * n)
    for name in ("paper", "released"):
        with pytest.raises(ValueError, match=r"noise_aware.*method='max_distance'"):
            correct_keyframes([f], [o], [a], [e], FPS, settings=preset(name), eyes=eyes)
    # Settings themselves are checked when made.
    with pytest.raises(ValueError, match="tie_z: must not exceed move_z"):
        preset("recommended", tie_z=7.0)
    with pytest.raises(ValueError, match="apex_window_ms: must be a finite number >= 0"):
        preset("recommended", apex_window_ms=-1.0)


def test_short_clips_keep_their_annotation_and_have_no_confidence():
    """Too few frames to measure the noise: nothing moves (a 3-frame noise clip used to move its
    apex with a confidence of tens of thousands of sds)."""
    g = torch.Generator().manual_seed(0)
    clip = (
        (torch.full((3, 32, 32, 3), 128.0) + torch.randn((3, 32, 32, 3), generator=g) * 2).clamp(0, 255).to(torch.uint8)
    )
    r = correct_keyframes([clip], [0], [1], [2], 200.0, eyes=[None])
    assert r.apex.tolist() == [1] and r.offset.tolist() == [2]
    assert math.isnan(float(r.confidence[0, 1])) and math.isnan(float(r.confidence[0, 2]))


def test_non_finite_frames_name_the_clip_and_frame():
    clip = torch.rand((40, 16, 16), generator=torch.Generator().manual_seed(1)) * 255
    clip[25, 3, 3] = float("inf")
    with pytest.raises(ValueError, match=r"clip 0 \('x'\): frame 25 has non-finite"):
        correct_keyframes([clip], [5], [12], [20], 200.0, clip_ids=["x"])


def test_move_offset_does_not_change_the_apex():
    clips = [make_clip(BASE, seed=s, subject=s % 6) for s in (3, 4, 5)]
    apex = [c.apex + 4 for c in clips]
    on = _correct(clips, apex)
    off = _correct(clips, apex, settings=RECOMMENDED.replace(move_offset=False))
    assert on.apex.tolist() == off.apex.tolist()
    torch.testing.assert_close(on.confidence[:, 1], off.confidence[:, 1])


def test_frames_too_small_to_register_are_refused():
    with pytest.raises(ValueError, match=r"clip 0: frames of 1x8 px are too small to register"):
        correct_keyframes([torch.zeros((20, 1, 8), dtype=torch.uint8)], [2], [6], [10], 200.0)


def test_offset_is_kept_when_the_clip_ends_in_another_expression():
    """The clip's end is the offset's neutral reference. With a second action held over the
    last frames (frames 48..59 carry the bump at full strength), an offset marked inside the
    first action (frame 32, which moves to 36 on the clean clip) is kept and not assessed:
    measured against that end, the neutral frames after the first action would look like
    expression and the offset would move late."""
    frames, eyes = _bump_clip(peak=30)
    face = make_face(0, (64, 64))
    cx, cy = face.landmarks[2] + np.array([-6.0, 3.0])
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    blob = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 2.5**2))
    held = frames.numpy().astype(np.float64)
    held[48:] += 40.0 * blob[None, ..., None]
    held_end = torch.from_numpy(np.clip(np.rint(held), 0, 255).astype(np.uint8))
    r = correct_keyframes([frames, held_end], [10, 10], [30, 30], [32, 32], FPS, eyes=[eyes, eyes])
    _check_keyframe_rules(r, [10, 10], [32, 32])
    assert r.offset.tolist() == [36, 32]
    assert r.confidence[0, 2] > RECOMMENDED.offset_z and math.isnan(r.confidence[1, 2])


@pytest.mark.parametrize("repeated", [4, 8])
def test_an_end_of_repeated_frames_does_not_move_accurate_offsets(repeated):
    """The clip's last frames all copies of one (damaged frames repaired by repeating their
    neighbour, a frozen video): the end reference and the level made of copies had no noise,
    every real frame looked far from neutral, and accurate offsets moved up to 10 frames late
    with confidences of 10-13 sd."""
    cfg = BASE.replace(head_motion_px=0.0)
    clips = [make_clip(cfg, seed=s, subject=s % 6) for s in range(8)]
    for c in clips:
        first_copy = max(len(c) - repeated, c.offset + 2)  # copies after the expression only
        c.frames[first_copy:] = c.frames[first_copy - 1]
    r = _correct(clips)
    assert r.offset.tolist() == [c.offset for c in clips]
    assessed = ~torch.isnan(r.confidence[:, 2])
    assert assessed.sum() >= 6 and (r.confidence[assessed, 2] <= RECOMMENDED.offset_z).all(), r.confidence[:, 2]


def test_frames_repeated_by_a_raised_frame_rate_keep_the_noise_floor_and_the_keyframes():
    """Every frame shown 3 times (3 x the frame rate): more than half the second differences
    of the evidence were exactly 0, the floor collapsed to about 1e-6 of the curve, and a move
    the intact clip rejects was made with thousands of sds."""
    clips = [make_clip(BASE, seed=s, subject=s % 6) for s in range(4)]
    early = [c.offset - (c.offset - c.apex) // 2 for c in clips]
    late_apex = [min(c.offset, c.apex + 4) for c in clips]
    intact = _correct(clips, apex=late_apex, offset=early)
    rep = 3
    frames = [np.repeat(np.asarray(c.frames), rep, axis=0) for c in clips]
    tripled = correct_keyframes(
        frames,
        [c.onset * rep for c in clips],
        [a * rep for a in late_apex],
        [f * rep for f in early],
        FPS * rep,
        eyes=[_eyes(c) for c in clips],
    )
    # equal up to float32 rounding (the reference is the mean of 3 x as many frames)
    np.testing.assert_allclose(tripled.noise_floor.numpy(), intact.noise_floor.numpy(), rtol=1e-4)
    np.testing.assert_allclose(tripled.confidence[:, 1].numpy(), intact.confidence[:, 1].numpy(), rtol=1e-4)
    # the same frames chosen (the first copy of each; a kept keyframe stays where it was)
    assert [a // rep for a in tripled.apex.tolist()] == intact.apex.tolist()
