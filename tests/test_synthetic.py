"""Synthetic micro-expressions: determinism, the true apex is the frame of MEASURED peak
deformation (optical flow and image differences), intensity profiles, camera effects, faces
(MTCNN finds them where we say they are), configs and datasets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from gamdss.data.synthetic import (
    CASME2_EMOTIONS,
    EMOTION_AUS,
    PHOTOS,
    PROFILE_SHAPES,
    SAMM_EMOTIONS,
    SyntheticConfig,
    deformation_field,
    emotion_for_dataset,
    intensity_profile,
    make_clip,
    make_dataset,
    make_face,
)

# Small, clean clips: 96 px, 200 fps, ~40 frames, no camera effects.
CLEAN = SyntheticConfig(
    size=(96, 96),
    fps=200,
    rise_ms=(50, 70),
    fall_ms=(60, 90),
    pad_before_ms=(15, 25),
    pad_after_ms=(15, 25),
    amplitude_px=(2.5, 2.5),
    profile="linear",
    noise_sd=0.0,
    jpeg_quality=None,
    head_motion_px=0.0,
    flicker_gl=0.0,
)
SMALL = CLEAN.replace(size=(48, 48), noise_sd=1.0, jpeg_quality=90, head_motion_px=0.2, profile="cosine")


def _grey(frames: torch.Tensor) -> list[np.ndarray]:
    return [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames.numpy()]


def _flow_along_field(clip, size):
    """Per frame: median optical-flow displacement (Farneback, frame 0 -> frame t) projected on
    the expression's field direction, over the pixels where the field is at least half its peak."""
    face = make_face(clip.subject, size)
    field = deformation_field(clip.aus, face.landmarks, size).numpy()
    norm2 = (field**2).sum(-1)
    mask = norm2 >= 0.25
    g = _grey(clip.frames)
    out = []
    for t in range(len(g)):
        flow = cv2.calcOpticalFlowFarneback(g[0], g[t], None, 0.5, 3, 9, 5, 5, 1.1, 0)
        out.append(float(np.median((flow * field).sum(-1)[mask] / norm2[mask])))
    return np.array(out)


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_different_seed_different():
    a = make_clip(SMALL, seed=7, subject=1)
    b = make_clip(SMALL, seed=7, subject=1)
    c = make_clip(SMALL, seed=8, subject=1)
    assert a.frames.dtype == torch.uint8 and a.frames.shape[1:] == (48, 48, 3)
    assert torch.equal(a.frames, b.frames) and a.truth == b.truth and a.emotion == b.emotion
    assert np.array_equal(a.head_motion_px, b.head_motion_px)
    assert a.frames.shape != c.frames.shape or not torch.equal(a.frames, c.frames)


def test_keyframes_layout_and_durations():
    cfg = CLEAN.replace(size=(32, 32), fps=90)
    for seed in range(5):
        c = make_clip(cfg, seed=seed)
        o, a, f = c.truth
        assert 1 <= o < a < f <= len(c) - 2
        # durations within the configured ranges (rounded to frames at 90 fps)
        assert round(50 * 90 / 1000) <= a - o <= round(70 * 90 / 1000)
        assert round(60 * 90 / 1000) <= f - a <= round(90 * 90 / 1000)
        assert c.emotion in CASME2_EMOTIONS and c.aus == EMOTION_AUS[c.emotion]


# --------------------------------------------------------------------------- measured apex
@pytest.mark.parametrize("subject,emotion", [(0, "happiness"), (1, "surprise"), (2, "disgust")])
def test_true_apex_is_measured_peak_displacement(subject, emotion):
    clip = make_clip(CLEAN, seed=3, subject=subject, emotion=emotion)
    measured = _flow_along_field(clip, CLEAN.size)
    o, a, f = clip.truth
    assert int(np.argmax(measured)) == a
    # The measured displacement at the apex is the configured amplitude (Farneback smooths a
    # little: within 25 %), and nothing moves outside [onset, offset].
    assert 0.75 * clip.amplitude_px <= measured[a] <= 1.1 * clip.amplitude_px
    assert np.all(np.abs(measured[: o + 1]) < 0.05) and np.all(np.abs(measured[f:]) < 0.05)
    # Halfway up the (linear) rise, about half the displacement.
    half = o + (a - o) // 2
    expected = clip.amplitude_px * (half - o) / (a - o)
    assert abs(measured[half] - expected) < 0.3 * clip.amplitude_px


@pytest.mark.parametrize("shape", PROFILE_SHAPES)
def test_frames_differ_from_neutral_most_at_apex(shape):
    clip = make_clip(CLEAN.replace(profile=shape, size=(64, 64)), seed=11, subject=0, emotion="sadness")
    frames = clip.frames.to(torch.int32)
    diff = (frames - frames[0]).abs().sum(dim=(1, 2, 3)).numpy()
    o, a, f = clip.truth
    assert np.all(diff[: o + 1] == 0) and np.all(diff[f:] == 0)  # neutral frames are the photograph
    assert diff[a] == diff.max()
    if shape == "linear":  # a sharp peak: unique even after rounding to grey levels
        assert np.sum(diff == diff.max()) == 1


def test_peak_displacement_record_matches_amplitude_and_intensity():
    clip = make_clip(CLEAN, seed=2, subject=0)
    assert clip.peak_displacement_px[clip.apex] == pytest.approx(clip.amplitude_px)
    assert np.allclose(clip.peak_displacement_px, clip.amplitude_px * clip.intensity)
    assert np.argmax(clip.intensity) == clip.apex and np.sum(clip.intensity == 1.0) == 1


# --------------------------------------------------------------------------- profiles
@pytest.mark.parametrize("shape", PROFILE_SHAPES)
@pytest.mark.parametrize("powers", [(1.0, 1.0), (2.0, 0.5), (0.5, 3.0)])
def test_profile_properties(shape, powers):
    rng = np.random.default_rng(0)
    for _ in range(20):
        o = int(rng.integers(0, 10))
        a = o + int(rng.integers(1, 40))
        f = a + int(rng.integers(1, 60))
        n = f + 1 + int(rng.integers(0, 10))
        p = intensity_profile(n, o, a, f, shape=shape, rise_power=powers[0], fall_power=powers[1])
        assert p.shape == (n,) and p.dtype == np.float64
        assert np.all(p[: o + 1] == 0.0) and np.all(p[f:] == 0.0)
        assert p[a] == 1.0 and np.all(np.delete(p, a) < 1.0)
        assert np.all(np.diff(p[o : a + 1]) > 0) and np.all(np.diff(p[a : f + 1]) < 0)


def test_profile_shapes_hand_values():
    # onset 0, apex 4, offset 8: the rise at r = 1/2 and the fall at s = 1/4.
    lin = intensity_profile(9, 0, 4, 8, shape="linear")
    assert lin.tolist() == [0, 0.25, 0.5, 0.75, 1, 0.75, 0.5, 0.25, 0]
    cos = intensity_profile(9, 0, 4, 8, shape="cosine")
    assert cos[2] == pytest.approx(0.5) and cos[1] == pytest.approx((1 - np.cos(np.pi / 4)) / 2)
    gam = intensity_profile(9, 0, 4, 8, shape="gamma", rise_power=2.0)
    assert gam[2] == pytest.approx((0.5 * np.exp(0.5)) ** 2) and gam[7] == pytest.approx(0.25 * np.exp(0.75))


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((10, 3, 3, 8), {}),
        ((10, 0, 5, 10), {}),
        ((10, 0, 4, 8), {"shape": "box"}),
        ((10, 0, 4, 8), {"rise_power": 0.0}),
    ],
)
def test_profile_rejects_bad_input(args, kwargs):
    with pytest.raises(ValueError):
        intensity_profile(*args, **kwargs)


# --------------------------------------------------------------------------- camera
def test_flicker_shifts_mean_brightness_by_the_recorded_offset():
    # Sensor noise dithers the rounding to grey levels, so mean brightness is measurable to ~0.02 gl.
    still = make_clip(CLEAN.replace(size=(48, 48), noise_sd=1.0), seed=4, subject=0)
    flick = make_clip(still.config.replace(flicker_gl=3.0), seed=4, subject=0)
    assert flick.truth == still.truth and np.abs(flick.flicker_gl).max() > 2.0
    a, b = flick.frames.double(), still.frames.double()
    unclipped = (b > 12) & (b < 243)  # pixels that 0/255 saturation cannot reach
    shift = ((a - b) * unclipped).sum(dim=(1, 2, 3)) / unclipped.sum(dim=(1, 2, 3))
    assert np.allclose(shift.numpy(), flick.flicker_gl, atol=0.1)


def test_head_motion_is_measured_as_the_recorded_translation():
    cfg = CLEAN.replace(size=(96, 96), head_motion_px=6.0, amplitude_px=(0.5, 0.5))
    clip = make_clip(cfg, seed=5, subject=0, emotion="others")
    g = [x.astype(np.float64) for x in _grey(clip.frames)]
    window = cv2.createHanningWindow((96, 96), cv2.CV_64F)
    for t in range(0, clip.onset + 1):  # before the expression: rigid motion only
        (dx, dy), _ = cv2.phaseCorrelate(g[0], g[t], window)
        assert abs(dx - clip.head_motion_px[t, 0]) < 0.15 and abs(dy - clip.head_motion_px[t, 1]) < 0.15
    assert np.abs(clip.head_motion_px).max() > 0.3


def test_noise_and_jpeg_change_frames_by_their_size():
    base = make_clip(CLEAN.replace(size=(48, 48)), seed=6, subject=0)
    noisy = make_clip(CLEAN.replace(size=(48, 48), noise_sd=2.0), seed=6, subject=0)
    jpeg = make_clip(CLEAN.replace(size=(48, 48), jpeg_quality=50), seed=6, subject=0)
    d_noise = (noisy.frames.double() - base.frames.double()).std().item()
    assert 1.7 < d_noise < 2.3
    assert 0.5 < (jpeg.frames.double() - base.frames.double()).abs().mean().item() < 8


# --------------------------------------------------------------------------- faces and AUs
def test_faces_load_and_subjects_cycle_with_variation():
    assert len(PHOTOS) == 18
    for s in (0, 1, 2, 17):
        face = make_face(s, (64, 80))
        assert face.image.shape == (64, 80, 3) and face.image.dtype == np.uint8 and face.variation == "none"
        lm = face.landmarks
        assert np.all((lm >= 0) & (lm <= [80, 64]))
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left first
        assert lm[[0, 1], 1].max() < lm[2, 1] < lm[[3, 4], 1].min()  # eyes, nose, mouth top to bottom
    again = make_face(len(PHOTOS), (64, 64))
    first = make_face(0, (64, 64))
    assert again.photo == first.photo and again.variation.startswith("cycle 1: flip=True")
    assert again.landmarks[0, 0] < again.landmarks[1, 0]
    assert not np.array_equal(again.image, first.image)
    with pytest.raises(ValueError, match="subject"):
        make_face(-1, (64, 64))


@pytest.fixture(scope="module")
def mtcnn():
    from facenet_pytorch import MTCNN

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # MTCNN on small images is faster single-threaded
    yield MTCNN(keep_all=False, device="cpu")
    torch.set_num_threads(threads)


def _detect(mtcnn, image: np.ndarray) -> tuple[float, np.ndarray]:
    """MTCNN on uint8 RGB ``image``: (probability, float64 [5, 2] landmarks) of its most likely face."""
    from PIL import Image

    boxes, probs, landmarks = mtcnn.detect(Image.fromarray(np.ascontiguousarray(image)), landmarks=True)
    assert boxes is not None, "MTCNN found no face"
    probs = np.asarray(probs).astype(float)
    best = int(np.argmax(probs))
    return float(probs[best]), np.asarray(landmarks).astype(float)[best]


# Measured at 128 px (five landmarks, distance / inter-ocular distance): <= 0.05 on the two
# photographs, <= 0.11 on the blurry LFW upscales (up to 0.3 at other sizes: MTCNN's own scatter).
_FACE_SUBJECTS = [pytest.param(i, id=name) for i, name in enumerate(PHOTOS)] + [
    pytest.param(len(PHOTOS) + i, id=f"{PHOTOS[i]}-flipped") for i in (0, 2)
]


@pytest.mark.parametrize("subject", _FACE_SUBJECTS)
def test_mtcnn_finds_the_face_where_the_landmarks_say(mtcnn, subject):
    face = make_face(subject, (128, 128))
    prob, found = _detect(mtcnn, face.image)
    assert prob > 0.95
    tolerance = 0.25 if face.photo.startswith("lfw_") else 0.1
    error = np.linalg.norm(found - face.landmarks, axis=1) / face.interocular_px
    assert error.max() < tolerance, f"{face.photo}: landmark errors {np.round(error, 2)} inter-ocular distances"


@pytest.mark.parametrize("name", [n for n in PHOTOS if n.startswith("lfw_")])
def test_lfw_landmark_rows_reproduce_their_measurement(mtcnn, name):
    # The stored rows were measured on a 10x PIL-bicubic upscale of each 25 px crop; repeating
    # that reproduces every row to 0.05 px, while the rows of the other LFW faces are >= 0.58 px
    # away, so this catches a row stored under the wrong face (the crop test above cannot: the
    # LFW crops are aligned alike and MTCNN scatters by up to 0.3 inter-ocular distances on them).
    from PIL import Image

    from gamdss.data.synthetic.faces import load_photo, photo_landmarks

    img = load_photo(name)
    assert img.shape == (25, 25, 3)
    _, found = _detect(mtcnn, np.asarray(Image.fromarray(img).resize((250, 250), Image.BICUBIC)))
    np.testing.assert_allclose(found / 10.0, photo_landmarks(name), atol=0.25)


def test_mtcnn_still_finds_the_face_at_apex(mtcnn):
    size = (128, 128)
    for subject in (0, 2, len(PHOTOS) + 1):  # astronaut, an LFW face, a flipped variant
        clip = make_clip(
            SyntheticConfig(size=size, rise_ms=(10, 10), fall_ms=(10, 10), pad_before_ms=(5, 5), pad_after_ms=(5, 5)),
            seed=0,
            subject=subject,
        )
        prob, found = _detect(mtcnn, clip.frames[clip.apex].numpy())
        assert prob > 0.95
        face = make_face(subject, size)
        assert np.abs(found[:2] - face.landmarks[:2]).max() < 0.15 * face.interocular_px


def test_field_peak_is_one_and_unilateral_aus_stay_on_one_side():
    face = make_face(0, (96, 96))
    both = deformation_field(("12",), face.landmarks, (96, 96))
    one = deformation_field(("R12",), face.landmarks, (96, 96))
    assert both.norm(dim=-1).max().item() == pytest.approx(1.0, abs=1e-6)
    mid = int(round(0.5 * (face.landmarks[3, 0] + face.landmarks[4, 0])))
    mag = one.norm(dim=-1)
    assert mag[:, :mid].max() > 0.99 and mag[:, mid + 12 :].max() < 0.01  # subject's right = image-left
    with pytest.raises(ValueError, match="not modelled"):
        deformation_field(("99",), face.landmarks, (96, 96))


def test_emotion_vocabularies():
    from gamdss.data.datasets import get_dataset

    for e in CASME2_EMOTIONS + SAMM_EMOTIONS:
        assert EMOTION_AUS[e]
        assert emotion_for_dataset(e, "casme2") in get_dataset("casme2").emotions
        assert emotion_for_dataset(e, "samm") in get_dataset("samm").emotions
    assert emotion_for_dataset("repression", "samm") == "other"
    assert emotion_for_dataset("contempt", "casme2") == "others"


# --------------------------------------------------------------------------- config and datasets
def test_config_yaml_round_trip_and_validation(tmp_path):
    cfg = SMALL.replace(fps=60, jpeg_quality=None, flicker_gl=2.5)
    path = cfg.save(tmp_path / "synthetic.yaml")
    assert SyntheticConfig.load(path) == cfg
    with pytest.raises(FileExistsError):
        cfg.save(path)
    with pytest.raises(ValueError, match="amplitude_px"):
        SyntheticConfig(amplitude_px=(2.0, 1.0))
    with pytest.raises(ValueError, match="profile"):
        SyntheticConfig(profile="square")
    (tmp_path / "bad.yaml").write_text("fps: 200\nsizes: [1, 2]\n")
    with pytest.raises(ValueError, match="bad.yaml.*sizes"):
        SyntheticConfig.load(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="emotion"):
        make_clip(SMALL, seed=0, emotion="joy")


def test_make_dataset_ids_emotions_and_bias():
    cfg = SMALL.replace(size=(32, 32))
    typical = make_dataset(cfg, n_subjects=2, clips_per_subject=3, seed=5, bias="typical", progress=False)
    again = make_dataset(cfg, n_subjects=2, clips_per_subject=3, seed=5, bias="typical", progress=False)
    none = make_dataset(cfg, n_subjects=2, clips_per_subject=3, seed=5, bias="none", progress=False)
    assert [s.clip_id for s in typical] == ["s01_01", "s01_02", "s01_03", "s02_01", "s02_02", "s02_03"]
    assert [s.subject for s in typical] == ["01"] * 3 + ["02"] * 3
    assert [s.clip.emotion for s in typical] == [CASME2_EMOTIONS[k] for k in (0, 1, 2, 1, 2, 3)]
    for s, t, n in zip(typical, again, none):
        assert torch.equal(s.clip.frames, t.clip.frames) and s.annotated == t.annotated
        assert torch.equal(s.clip.frames, n.clip.frames)  # bias changes annotations, not clips
        assert n.annotated == n.truth and s.bias == "typical"
        o, a, f = s.annotated
        assert 0 <= o <= a <= f <= len(s.clip) - 1
    assert len({s.clip.frames.shape for s in typical}) > 1 or any(
        not torch.equal(typical[0].clip.frames, s.clip.frames) for s in typical[1:]
    )


def test_flicker_changes_nothing_but_the_brightness():
    from gamdss.data.synthetic import SyntheticConfig, make_clip

    base = SyntheticConfig(fps=60.0, size=(64, 64), jpeg_quality=None, noise_sd=1.0)
    plain = make_clip(base, seed=11, subject=2, emotion="surprise")
    lit = make_clip(base.replace(flicker_gl=3.0), seed=11, subject=2, emotion="surprise")
    assert plain.truth == lit.truth and np.array_equal(plain.head_motion_px, lit.head_motion_px)
    assert np.abs(lit.flicker_gl).max() > 1.0
    diff = lit.frames.double() - plain.frames.double()
    # Same motion and same sensor noise: per frame the difference is the flicker offset, up to
    # rounding to whole grey levels and clipping at 0 and 255.
    inside = (plain.frames > 5) & (plain.frames < 250)
    for t in range(len(plain)):
        d = diff[t][inside[t]]
        assert abs(float(d.mean()) - lit.flicker_gl[t]) < 0.6
        assert float((d - lit.flicker_gl[t]).abs().max()) <= 1.0 + 1e-9
