"""Synthetic confounders (eye blinks, in-plane rotation and scale drift): off by default, each
from its own random stream, drawn where the recorded arrays say (checked against a point's
rendered centroid and an independent OpenCV warp), blink timing and locality, drift
statistics, and config validation."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from gamdss.data.synthetic import SyntheticConfig, make_clip, make_face
from gamdss.data.synthetic.blinks import EYE_HEIGHT, EYE_WIDTH, blink_closure, draw_blink, lid_colours
from gamdss.data.synthetic.camera import pose_drift_path
from gamdss.data.synthetic.generator import _moved_points, render_frames

# Small clips at 200 fps with the default camera (noise, JPEG 90, head wander).
BASE = SyntheticConfig(size=(64, 64), fps=200)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _eye_distance(xs, ys, eyes_t, interocular, margin_px):
    """Per pixel: min over the two eyes of the normalised ellipse radius of the drawn lid
    ellipse (half axes enlarged by ``margin_px``); < 1 inside."""
    hw = 0.5 * EYE_WIDTH * interocular + margin_px
    hh = 0.5 * EYE_HEIGHT * interocular + margin_px
    return np.minimum.reduce([((xs - cx) / hw) ** 2 + ((ys - cy) / hh) ** 2 for cx, cy in eyes_t])


def _inside_blink_seeds(config, count, limit=200):
    """The first ``count`` seeds (subject = seed % 6) whose blink lies wholly inside the clip."""
    out = []
    for seed in range(limit):
        c = make_clip(config, seed=seed, subject=seed % 6)
        bf = c.blink_frames
        if bf is not None and bf[0] > 0 and bf[1] < len(c) - 1:
            out.append(c)
            if len(out) == count:
                return out
    raise AssertionError(f"fewer than {count} clips with a whole blink among {limit} seeds")


# --------------------------------------------------------------------------- defaults
def test_new_confounders_are_off_by_default():
    cfg = SyntheticConfig()
    assert (cfg.head_rotation_deg, cfg.head_scale, cfg.blink_probability) == (0.0, 0.0, 0.0)
    a = make_clip(BASE, seed=4, subject=2)
    # Explicit zeros, and a blink duration that must not matter while blinks are off.
    explicit = BASE.replace(head_rotation_deg=0.0, head_scale=0.0, blink_probability=0.0, blink_ms=(300.0, 400.0))
    b = make_clip(explicit, seed=4, subject=2)
    assert torch.equal(a.frames, b.frames) and a.truth == b.truth
    n = len(a)
    assert a.blink_closure.shape == (n,) and not a.blink_closure.any()
    assert a.blink_frames is None
    assert a.head_rotation_deg.shape == (n,) and not a.head_rotation_deg.any()
    assert a.head_scale.shape == (n,) and np.all(a.head_scale == 1.0)
    conf = a.confounders()
    assert conf["blink_frames"] is None and conf["head_rotation_deg"] == 0.0 and conf["head_scale"] == 0.0
    assert conf["jpeg_quality"] == 90 and conf["noise_sd"] == BASE.noise_sd


def test_identity_pose_renders_like_the_plain_path():
    """Rotation 0 and scale 1 through the rotation/scale branch give the frames of the plain
    translation branch (what clips without drift use)."""
    face = make_face(1, (48, 56))
    rng = np.random.default_rng(0)
    t = 5
    head = rng.normal(0, 0.7, (t, 2))
    disp = np.linspace(0.0, 2.0, t)
    field_px = torch.from_numpy(rng.normal(0, 0.5, (48, 56, 2)).astype(np.float32))
    plain = render_frames(face.image, field_px, disp, head)
    posed = render_frames(face.image, field_px, disp, head, np.zeros(t), np.ones(t))
    assert plain.shape == (t, 3, 48, 56)
    assert torch.allclose(plain, posed, atol=1e-3)


def test_each_confounder_draws_from_its_own_stream():
    base = make_clip(BASE, seed=11, subject=3)
    variants = {
        "rotation": BASE.replace(head_rotation_deg=2.0),
        "scale": BASE.replace(head_scale=0.02),
        "blink": BASE.replace(blink_probability=1.0),
        "flicker": BASE.replace(flicker_gl=2.0),
    }
    clips = {k: make_clip(cfg, seed=11, subject=3) for k, cfg in variants.items()}
    for name, c in clips.items():
        assert c.truth == base.truth and c.emotion == base.emotion and c.amplitude_px == base.amplitude_px, name
        assert np.array_equal(c.head_motion_px, base.head_motion_px), name
        assert not torch.equal(c.frames, base.frames), name  # the confounder did something
    # Rotation drift does not touch flicker or blinks; the scale walk does not change the
    # rotation walk (rotation draws come first); flicker and blinks do not change the pose.
    assert np.array_equal(clips["rotation"].flicker_gl, base.flicker_gl)
    assert np.array_equal(clips["scale"].head_rotation_deg, base.head_rotation_deg)
    assert np.array_equal(clips["blink"].head_rotation_deg, base.head_rotation_deg)
    assert np.array_equal(clips["blink"].flicker_gl, base.flicker_gl)
    assert np.array_equal(clips["flicker"].head_scale, base.head_scale)
    assert not clips["flicker"].blink_closure.any()
    both = make_clip(BASE.replace(head_rotation_deg=2.0, head_scale=0.02, blink_probability=1.0), seed=11, subject=3)
    assert np.array_equal(both.head_rotation_deg, clips["rotation"].head_rotation_deg)
    assert np.array_equal(both.head_motion_px, base.head_motion_px)
    # (The scale walk shares the pose stream and comes after the rotation draws, so with both
    # on it is not the scale-only walk; only its statistics are the configured ones.)
    assert np.array_equal(both.blink_closure, clips["blink"].blink_closure)


# --------------------------------------------------------------------------- blinks
def test_blink_closure_hand_computed():
    # Blink from 50 ms to 150 ms at 200 fps: frames 10 (u = 0) and 30 (u = 1) are open,
    # 11..29 move; fully closed at u = 0.4 (frame 18); half closed at u = 0.2 (frame 14,
    # closing) and at u = 0.7 (frame 24, opening: (1 - 0.7) / 0.6 = 0.5).
    c = blink_closure(50, 200.0, 0.05, 0.1)
    assert c.shape == (50,) and c.dtype == np.float64
    assert np.array_equal(np.flatnonzero(c > 0), np.arange(11, 30))
    assert c[18] == pytest.approx(1.0, abs=1e-12)
    assert c[14] == pytest.approx(0.5, abs=1e-9) and c[24] == pytest.approx(0.5, abs=1e-9)
    assert np.all((c >= 0) & (c <= 1))
    assert np.all(np.diff(c[10:19]) > 0) and np.all(np.diff(c[18:31]) < 0)
    # Closing (40 %) is faster than opening (60 %).
    assert np.count_nonzero(np.diff(c) > 0) < np.count_nonzero(np.diff(c) < 0)
    # A blink that began before the clip is cut off at frame 0.
    early = blink_closure(30, 200.0, -0.05, 0.1)
    assert early[0] > 0.5 and np.flatnonzero(early > 0).max() == 9


@pytest.mark.parametrize("fps,blink_ms", [(200.0, (120.0, 120.0)), (60.0, (100.0, 150.0))])
def test_blink_in_clip_closes_fully_and_lasts_its_duration(fps, blink_ms):
    cfg = BASE.replace(
        size=(32, 32),
        fps=fps,
        blink_probability=1.0,
        blink_ms=blink_ms,
        rise_ms=(150, 250),
        fall_ms=(200, 300),
        jpeg_quality=None,
    )
    for c in _inside_blink_seeds(cfg, 3):
        moving = int(np.count_nonzero(c.blink_closure > 0))
        first, last = c.blink_frames
        assert last - first + 1 == moving  # one contiguous blink
        # Frames strictly inside an open interval of duration * fps frames.
        assert math.floor(blink_ms[0] * fps / 1000) - 1 <= moving <= math.ceil(blink_ms[1] * fps / 1000)
        # Sampled within half a frame of the closed instant: at 200 fps (closing over 9.6
        # frames) >= 0.5 - 0.5 cos(pi (1 - 0.5 / 9.6)) ~ 0.993; at 60 fps (2.4 frames) >= 0.85.
        assert c.blink_closure.max() >= (0.99 if fps == 200 else 0.85)
        assert c.confounders()["blink_frames"] == c.blink_frames


def test_blink_probability_is_respected():
    cfg = BASE.replace(size=(16, 16), noise_sd=0.0, jpeg_quality=None, blink_probability=0.5)
    has = [make_clip(cfg, seed=s).blink_frames is not None for s in range(40)]
    # Binomial(40, 0.5): 20 +- 3.2; [9, 31] is beyond 3.4 sd.
    assert 9 <= sum(has) <= 31
    never = BASE.replace(size=(16, 16), blink_probability=0.0)
    assert all(make_clip(never, seed=s).blink_frames is None for s in range(5))


@pytest.mark.parametrize("jpeg_quality", [None, 90])
def test_blink_changes_only_the_eyes_and_only_during_the_blink(jpeg_quality):
    cfg = BASE.replace(size=(96, 96), jpeg_quality=jpeg_quality, blink_probability=1.0)
    ys, xs = np.mgrid[0:96, 0:96] + 0.5
    for seed in (0, 1, 2):
        with_blink = make_clip(cfg, seed=seed, subject=seed)
        without = make_clip(cfg.replace(blink_probability=0.0), seed=seed, subject=seed)
        first, last = with_blink.blink_frames
        a, b = with_blink.frames.numpy(), without.frames.numpy()
        outside = np.r_[0:first, last + 1 : len(a)]
        assert np.array_equal(a[outside], b[outside])  # JPEG is per frame: byte-identical
        face = make_face(seed, cfg.size)
        d = face.interocular_px
        eyes = _moved_points(
            face.landmarks[:2], with_blink.head_motion_px, with_blink.head_rotation_deg, with_blink.head_scale, cfg.size
        )
        diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
        near_energy = total = 0.0
        for t in range(first, last + 1):
            energy = diff[t].sum(-1)
            if jpeg_quality is None:
                # Lids are drawn inside the eye ellipses (1 px soft rim) and nowhere else.
                assert not energy[_eye_distance(xs, ys, eyes[t], d, 1.0) >= 1.0].any()
            near = _eye_distance(xs, ys, eyes[t], d, 10.0) < 1.0  # JPEG spreads within its blocks
            near_energy += energy[near].sum()
            total += energy.sum()
        assert near_energy >= 0.95 * total
        # Fully closed: the eye centres show skin, tens of grey levels from the open eye.
        closed = int(np.argmax(with_blink.blink_closure))
        centre = _eye_distance(xs, ys, eyes[closed], d, 0.0) < 0.25
        assert np.abs(a[closed].astype(float) - b[closed].astype(float))[centre].mean() > 10.0


def test_draw_blink_hand_computed():
    # d = 40 px: half axes 11 px (x) and 6 px (y); eye centres at pixel centres (20, 20), (60, 20).
    h, w = 40, 80
    img = np.zeros((3, h, w, 3), dtype=np.float32)
    img[..., 0] = 200.0
    eyes = np.tile(np.array([[20.5, 20.5], [60.5, 20.5]]), (3, 1, 1))
    lid = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
    out = draw_blink(img.copy(), np.array([0.0, 1.0, 0.5]), eyes, 40.0, lid)
    assert np.array_equal(out[0], img[0])  # closure 0: untouched
    # Closed: the whole eye interior is lid colour; far outside the ellipse nothing changes.
    assert np.allclose(out[1, 20, 20], lid[0]) and np.allclose(out[1, 20, 60], lid[1])
    assert np.allclose(out[1, 20, 27], lid[0])  # 7 / 11 of the half width, inside the rim
    assert np.array_equal(out[1, 20, 40], img[1, 20, 40]) and np.array_equal(out[1, 5, 20], img[1, 5, 20])
    # Half closed: the lid edge is at the eye centre; 2 px above covered, 2 px below open.
    assert np.allclose(out[2, 18, 20], lid[0]) and np.array_equal(out[2, 22, 20], img[2, 22, 20])
    changed = np.abs(out - img).sum(-1) > 0
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    inside = _eye_distance(xs, ys, eyes[0], 40.0, 0.0) < 1.0
    assert not (changed[1] & ~inside).any() and not (changed[2] & ~inside).any()
    assert changed[2].sum() < changed[1].sum()


def test_lid_colours_are_the_skin_below_each_eye():
    face = np.zeros((60, 80, 3), dtype=np.uint8)
    face[:, :40] = (200, 150, 120)
    face[:, 40:] = (90, 80, 70)
    face[10:20] = 0  # the eye band itself is dark: must not be sampled
    eyes = np.array([[20.0, 15.0], [60.0, 15.0]])
    got = lid_colours(face, eyes, 40.0)  # samples 12 px below the eyes
    assert np.allclose(got, [[200, 150, 120], [90, 80, 70]])


# --------------------------------------------------------------------------- rotation and scale
def test_moved_points_follow_the_rendered_image():
    """A bright dot rendered with rotation, scale and translation has its centroid where
    ``_moved_points`` (used to place the lids) says."""
    h, w = 64, 80
    pts = np.array([[20.0, 18.0], [55.0, 40.0]])
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    img = sum(200.0 * np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * 1.5**2)) for px, py in pts)
    img = np.repeat(np.clip(np.rint(img), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    angle = np.array([0.0, 8.0, -12.0, 5.0])
    scale = np.array([1.0, 1.05, 0.93, 1.0])
    head = np.array([[0.0, 0.0], [1.5, -0.5], [0.0, 2.0], [-3.0, 0.0]])
    video = render_frames(img, torch.zeros(h, w, 2), np.zeros(4), head, angle, scale)[:, 0].numpy()
    moved = _moved_points(pts, head, angle, scale, (h, w))
    assert np.allclose(moved[0], pts)
    for t in range(4):
        for p in range(2):
            cx, cy = moved[t, p]
            weight = video[t] * ((xs - cx) ** 2 + (ys - cy) ** 2 < 36)
            centroid = ((weight * xs).sum() / weight.sum(), (weight * ys).sum() / weight.sum())
            assert np.allclose(centroid, (cx, cy), atol=0.06), (t, p, centroid, (cx, cy))
    # Positive angles turn clockwise on screen (y down): the dot right of centre moves down.
    assert _moved_points(np.array([[60.0, 32.0]]), np.zeros((1, 2)), np.array([10.0]), np.ones(1), (h, w))[0, 0, 1] > 32


def test_clip_frames_match_an_opencv_warp_of_the_recorded_pose():
    cfg = SyntheticConfig(
        size=(96, 96),
        fps=200,
        amplitude_px=(1e-6, 1e-6),
        noise_sd=0.0,
        jpeg_quality=None,
        head_motion_px=0.0,
        head_rotation_deg=10.0,
        head_scale=0.05,
    )
    c = make_clip(cfg, seed=3, subject=0)
    assert c.head_rotation_deg[0] == 0.0 and c.head_scale[0] == 1.0
    face = make_face(0, cfg.size).image.astype(np.float32)
    inner = (slice(16, 80), slice(16, 80))
    centre = np.array([48.0, 48.0])
    for t in (len(c) // 2, len(c) - 1):
        theta, s = np.deg2rad(c.head_rotation_deg[t]), c.head_scale[t]
        assert abs(c.head_rotation_deg[t]) > 1.0  # the pose really moved in this clip
        # forward map (continuous coords, y down): p -> centre + s R(theta) (p - centre) + head;
        # OpenCV's pixel centres are at integers (ours at +0.5).
        a = s * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        b = centre - a @ centre + c.head_motion_px[t]
        m = np.hstack([a, (a @ np.array([0.5, 0.5]) + b - 0.5)[:, None]])
        warped = cv2.warpAffine(face, m, (96, 96), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        frame = c.frames[t].numpy().astype(np.float32)
        err = np.abs(warped - frame)[inner].mean()
        still = np.abs(face - frame)[inner].mean()
        assert err < 1.0 and still > 10 * err, (t, err, still)


def test_drift_paths_are_recorded_and_nontrivial():
    cfg = BASE.replace(head_rotation_deg=1.0, head_scale=0.01)
    c = make_clip(cfg, seed=5, subject=1)
    n = len(c)
    assert c.head_rotation_deg.shape == (n,) and c.head_scale.shape == (n,)
    assert c.head_rotation_deg[0] == 0.0 and c.head_scale[0] == 1.0
    assert np.all(np.diff(c.head_rotation_deg) != 0) and np.all(np.diff(c.head_scale) != 0)
    assert np.all(c.head_scale > 0)
    steps = np.diff(c.head_rotation_deg)
    # Random-walk steps of sd 1 / sqrt(200) deg; n - 1 >= 40 steps: sample sd within 40 %.
    assert 0.6 < steps.std() * math.sqrt(200.0) < 1.4
    still = make_clip(BASE, seed=5, subject=1)
    assert not torch.equal(c.frames, still.frames)
    conf = c.confounders()
    assert conf["head_rotation_deg"] == 1.0 and conf["head_scale"] == 0.01


@pytest.mark.parametrize("fps", [200.0, 60.0])
def test_pose_drift_sd_after_one_second_is_as_configured(fps):
    n = int(fps) + 1  # frame n - 1 is at 1 s
    rng = np.random.default_rng(1234)
    angles, log_scales = [], []
    for _ in range(1500):
        angle, scale = pose_drift_path(n, fps, 0.8, 0.02, rng)
        assert angle[0] == 0.0 and scale[0] == 1.0
        angles.append(angle[-1])
        log_scales.append(math.log(scale[-1]))
    # sd of a sample sd of 1500 normals: ~1.8 %; 15 % is far beyond chance.
    assert np.std(angles) == pytest.approx(0.8, rel=0.15)
    assert np.std(log_scales) == pytest.approx(0.02, rel=0.15)
    assert abs(np.mean(angles)) < 4 * 0.8 / math.sqrt(1500)


def test_pose_drift_consumes_draws_only_when_on():
    rng = np.random.default_rng(7)
    state = rng.bit_generator.state
    angle, scale = pose_drift_path(30, 200.0, 0.0, 0.0, rng)
    assert rng.bit_generator.state == state
    assert not angle.any() and np.all(scale == 1.0)
    a1, s1 = pose_drift_path(30, 200.0, 1.0, 0.0, np.random.default_rng(7))
    a2, s2 = pose_drift_path(30, 200.0, 1.0, 0.05, np.random.default_rng(7))
    assert np.array_equal(a1, a2) and np.all(s1 == 1.0) and s2[0] == 1.0 and np.all(s2[1:] != 1.0)
    single = pose_drift_path(1, 200.0, 1.0, 0.05, np.random.default_rng(7))
    assert single[0].tolist() == [0.0] and single[1].tolist() == [1.0]


@pytest.mark.parametrize(
    "rotation,scale,match",
    [
        (-0.1, 0.0, "rotation drift"),
        (0.0, -0.01, "scale drift"),
        (math.inf, 0.0, "rotation drift"),
        (0.0, math.nan, "scale drift"),
    ],
)
def test_pose_drift_rejects_bad_values(rotation, scale, match):
    with pytest.raises(ValueError, match=match):
        pose_drift_path(10, 200.0, rotation, scale, np.random.default_rng(0))


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "changes,field",
    [
        (dict(blink_probability=1.5), "blink_probability"),
        (dict(blink_probability=-0.1), "blink_probability"),
        (dict(blink_probability=math.nan), "blink_probability"),
        (dict(head_scale=-0.01), "head_scale"),
        (dict(head_scale=math.inf), "head_scale"),
        (dict(head_rotation_deg=-1.0), "head_rotation_deg"),
        (dict(blink_ms=(0.0, 100.0)), "blink_ms"),
        (dict(blink_ms=(150.0, 100.0)), "blink_ms"),
        (dict(blink_ms=(100.0,)), "blink_ms"),
    ],
)
def test_config_rejects_bad_confounders(changes, field):
    with pytest.raises(ValueError, match=rf"SyntheticConfig\.{field}\b"):
        SyntheticConfig(**changes)


def test_config_round_trips_the_new_fields(tmp_path):
    cfg = BASE.replace(head_rotation_deg=0.5, head_scale=0.005, blink_probability=0.25, blink_ms=(90, 140))
    assert SyntheticConfig.from_dict(cfg.to_dict()) == cfg
    path = cfg.save(tmp_path / "synthetic.yaml")
    assert SyntheticConfig.load(path) == cfg
    assert cfg.blink_ms == (90.0, 140.0)
