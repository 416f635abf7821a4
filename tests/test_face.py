"""Face detection and the choice of one box per clip (gamdss.data.face)."""

from __future__ import annotations

import numpy as np
import pytest

from face_frames import blank_frame, face_frame, face_location
from gamdss.data.face import FaceDetector, NoFaceError, choose_box, expand_box, median_box, sample_frames

SIZE = (160, 160)


@pytest.fixture(scope="module")
def detector():
    return FaceDetector(device="cpu")


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_mtcnn_finds_the_astronaut_face_where_it_is(detector):
    # Known location: [181, 62, 268, 172] in the 512x512 original, scaled to 160x160 and to a
    # non-square 120x200 frame, and moved by a shift.
    frames = [face_frame(0, SIZE), face_frame(1, SIZE, shift=(70, 50))]
    found = detector.detect(frames)
    for det, shift in zip(found, [(0, 0), (70, 50)]):
        assert det is not None and det.prob > 0.99
        assert iou(det.box, face_location(SIZE, shift)) > 0.8, (det.box, face_location(SIZE, shift))
    # A stretched face: MTCNN's box stays squarer than the stretched truth, centres agree.
    (wide,) = detector.detect([face_frame(0, (120, 200))])
    truth = face_location((120, 200))
    centre = lambda r: np.array([r[0] + r[2], r[1] + r[3]]) / 2  # noqa: E731
    assert iou(wide.box, truth) > 0.7
    assert np.abs(centre(wide.box) - centre(truth)).max() < 3


def test_detect_returns_none_without_a_face(detector):
    assert detector.detect([blank_frame(0, SIZE)]) == [None]
    assert detector.detect([]) == []
    with pytest.raises(ValueError, match="one size"):
        detector.detect([face_frame(0, SIZE), face_frame(0, (120, 160))])


def test_sample_frames_hand_computed():
    # linspace(0, 9, 4) = 0, 3, 6, 9, plus onset 2, apex 5, offset 8.
    assert sample_frames(10, 2, 5, 8, detect_frames=4) == [0, 2, 3, 5, 6, 8, 9]
    assert sample_frames(10, 2, 5, 8, detect_frames=0) == [2, 5, 8]
    assert sample_frames(10, 2, 5, 8, method="onset") == [2]
    assert sample_frames(1, 0, 0, 0, detect_frames=4) == [0]
    with pytest.raises(ValueError, match="apex=10"):
        sample_frames(10, 2, 10, 9)
    with pytest.raises(ValueError, match="box_method"):
        sample_frames(10, 2, 5, 8, method="largest")


def test_median_box_per_coordinate():
    boxes = [np.array([0, 10, 20, 30]), np.array([2, 8, 100, 31]), np.array([1, 9, 22, 90])]
    np.testing.assert_array_equal(median_box(boxes), [1, 9, 22, 31])


def test_expand_box_hand_computed():
    # 20x30 box, margin 0.2 of the longer side (6 px) on each side: 32x42 -> square side 42
    # around the centre (50, 65).
    assert expand_box((40, 50, 60, 80), (200, 200), margin=0.2) == (29, 44, 71, 86)
    assert expand_box((40, 50, 60, 80), (200, 200), margin=0.0) == (35, 50, 65, 80)
    # Sticking out at the top-left: moved inside, same size.
    assert expand_box((0, 0, 20, 30), (200, 200), margin=0.2) == (0, 0, 42, 42)
    assert expand_box((170, 170, 190, 200), (200, 200), margin=0.2) == (158, 158, 200, 200)
    # Image only 30 px high: shrunk to 30x30, centred on x = 50.
    assert expand_box((40, 50, 60, 80), (30, 100), margin=0.2) == (35, 0, 65, 30)
    # Output aspect 2:1 (W:H): height 42, width 84.
    assert expand_box((40, 50, 60, 80), (200, 200), margin=0.2, aspect=2.0) == (8, 44, 92, 86)
    with pytest.raises(ValueError, match="empty"):
        expand_box((10, 10, 10, 20), (50, 50))


def test_median_box_ignores_one_wrong_and_one_missing_frame(detector):
    # Frame 1 shows the face elsewhere, frame 3 shows none; all five frames are tried.
    frames = [
        face_frame(0, SIZE),
        face_frame(1, SIZE, shift=(70, 50)),
        face_frame(2, SIZE),
        blank_frame(3, SIZE),
        face_frame(4, SIZE),
    ]
    box = choose_box(detector, frames.__getitem__, 5, 0, 2, 4, clip_id="c", detect_frames=5, margin=0.0)
    assert box.frames_tried == (0, 1, 2, 3, 4)
    assert box.frames_with_face == (0, 1, 2, 4)
    assert box.method == "median" and box.prob > 0.99
    truth = face_location(SIZE)
    assert np.abs(np.array(box.face_box) - truth).max() < 4, (box.face_box, truth)
    # The onset method trusts its one frame: with the moved face on the onset, the box moves.
    onset = choose_box(detector, frames.__getitem__, 5, 1, 2, 4, clip_id="c", method="onset", margin=0.0)
    assert onset.frames_tried == (1,)
    assert np.abs(np.array(onset.face_box) - face_location(SIZE, (70, 50))).max() < 4


def test_crop_box_is_square_and_holds_the_face(detector):
    frames = [face_frame(k, SIZE) for k in range(3)]
    box = choose_box(detector, frames.__getitem__, 3, 0, 1, 2, clip_id="c", margin=0.2)
    x0, y0, x1, y1 = box.box
    assert x1 - x0 == y1 - y0
    fx0, fy0, fx1, fy1 = face_location(SIZE)
    assert x0 < fx0 and y0 < fy0 and x1 > fx1 and y1 > fy1
    assert 0 <= x0 and 0 <= y0 and x1 <= SIZE[1] and y1 <= SIZE[0]


def test_no_face_raises_naming_the_clip_and_frames(detector):
    frames = [blank_frame(k, SIZE) for k in range(4)]
    names = [f"img{k + 10}.jpg" for k in range(4)]
    with pytest.raises(NoFaceError) as info:
        choose_box(detector, frames.__getitem__, 4, 0, 1, 3, clip_id="sub07/EP01_2", detect_frames=2, frame_names=names)
    err = info.value
    assert err.clip_id == "sub07/EP01_2"
    assert err.frames == ("img10.jpg", "img11.jpg", "img13.jpg")
    assert "sub07/EP01_2" in str(err) and "img13.jpg" in str(err) and "--full-frame-fallback" in str(err)
