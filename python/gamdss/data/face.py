"""Face detection (MTCNN) and the choice of one stable face box per clip.

A micro-expression is a movement of a few pixels, so every frame of a clip must be cropped
with the *same* box: a box that follows the detector from frame to frame would add jitter
larger than the expression itself. This module chooses that one box.

Detector: ``facenet_pytorch.MTCNN`` (facenet-pytorch 2.5.3) with the weights bundled in its
wheel, so nothing is downloaded; it runs on CPU or CUDA. On each detected frame the *most
probable* face is used (not the largest, MTCNN's default), since a dataset frame shows one
subject.

Box methods (``box_method``):

- ``median`` (default): detect on a few frames spread over the clip (onset, apex, offset and
  ``detect_frames`` evenly spaced others), then take the per-coordinate median of the boxes of
  the frames where a face was found. One wrong detection (a false positive elsewhere, a missed
  face, a blink or a hand) moves the median by at most the spread of the good boxes, whereas
  a box from one frame inherits whatever went wrong on that frame. The reported
  ``face_prob`` is the median of those frames' probabilities.
- ``onset``: the box of the onset frame only, as many MER pipelines do. Cheaper; as good as
  ``median`` when the onset frame is clean, and no fallback when it is not.

The detected box (MTCNN's is tight: eyebrows to chin) is then grown by ``margin`` times its
longer side on every side (default 0.2: the crop is 1.4 times the face), given the aspect ratio
of the output frames (square for 224x224, so resizing does not distort the face), moved
inside the image where it sticks out, shrunk only if the image is too small to hold it, and
rounded to whole pixels. Boxes are ``(x0, y0, x1, y1)`` in source pixels, ``x1``/``y1``
exclusive: the crop is ``image[y0:y1, x0:x1]``.

No face on any tried frame raises :class:`NoFaceError`; the caller falls back to the full
frame only when the user asked for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gamdss.util.devices import check_device

BOX_METHODS = ("median", "onset")
DEFAULT_MARGIN = 0.2
DEFAULT_DETECT_FRAMES = 4


class NoFaceError(ValueError):
    """MTCNN found no face on any of the frames tried for a clip.

    Attributes: ``clip_id``; ``frames``: the tried frames as the caller named them
    (dataset frame numbers or file names).
    """

    def __init__(self, clip_id: str, frames: Sequence[object], detail: str = ""):
        self.clip_id = clip_id
        self.frames = tuple(frames)
        listed = ", ".join(str(f) for f in self.frames)
        super().__init__(
            f"clip {clip_id}: no face found by MTCNN on any of the {len(self.frames)} "
            f"frame(s) tried ({listed}){detail}; pass full_frame_fallback=True "
            f"(--full-frame-fallback) to use the whole frame instead"
        )


@dataclass(frozen=True)
class Detection:
    """The most probable face on one frame: ``box`` float64 ``[4]`` ``(x0, y0, x1, y1)`` in
    pixels, ``prob`` in [0, 1]."""

    box: np.ndarray
    prob: float


@dataclass(frozen=True)
class FaceBox:
    """The box chosen for a clip.

    ``box``: integer ``(x0, y0, x1, y1)``, the crop is ``image[y0:y1, x0:x1]`` (``None``: the
    full frame). ``face_box``: the aggregated detector box before margin and squaring (float).
    ``prob``: detector probability (median over the frames used). ``method``: ``median``,
    ``onset`` or ``full-frame``. ``frames_tried`` / ``frames_with_face``: clip-relative indices.
    """

    box: tuple[int, int, int, int] | None
    face_box: tuple[float, float, float, float] | None
    prob: float | None
    method: str
    frames_tried: tuple[int, ...]
    frames_with_face: tuple[int, ...]


class FaceDetector:
    """``facenet_pytorch.MTCNN`` with bundled weights, returning the most probable face.

    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... ``min_face_size``: in pixels, faces
    smaller than this are not searched for (MTCNN's default 20). ``threads``: torch intra-op
    threads during a CPU detection (restored afterwards; ``None`` leaves torch's setting).
    The default is 1: MTCNN runs hundreds of tiny ops per frame, where extra threads cost
    more than they give (measured here: 4 frames of 640x480 took 1.1 s with 1 thread, 4.7 s
    with 2 on a busy 2-core machine); parallelism comes from worker processes instead.
    """

    def __init__(self, device: str = "cpu", min_face_size: int = 20, threads: int | None = 1):
        check_device(str(device))
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads!r}")
        self.device = str(device)
        self.threads = threads
        self.min_face_size = int(min_face_size)
        # Imported here: facenet-pytorch pulls in torchvision and torch._dynamo (about 2.5 s),
        # which a command that never detects a face (reselect --preset paper) need not pay.
        from facenet_pytorch import MTCNN

        self._mtcnn = MTCNN(
            keep_all=True, select_largest=False, min_face_size=min_face_size, device=torch.device(device)
        )

    def detect(self, images: Sequence[np.ndarray]) -> list[Detection | None]:
        """Most probable face of each image (``None`` where there is none).

        ``images``: RGB uint8 ``[H, W, 3]`` arrays, all of one size (MTCNN runs them as a batch).
        """
        if len(images) == 0:
            return []
        shapes = {tuple(im.shape) for im in images}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 3:
            raise ValueError(f"detect needs RGB [H, W, 3] images of one size, got shapes {sorted(shapes)}")
        boxes, probs = self._detect(np.stack(images))
        found: list[Detection | None] = []
        # detect() returns object-dtype arrays; a frame without a face gives (None, [None]).
        for frame_boxes, frame_probs in zip(boxes, probs):
            if frame_boxes is None:
                found.append(None)
                continue
            b = np.asarray(list(frame_boxes), dtype=np.float64).reshape(-1, 4)
            p = np.asarray(list(frame_probs), dtype=np.float64).reshape(-1)
            best = int(np.argmax(p))
            found.append(Detection(box=b[best], prob=float(p[best])))
        return found

    def eye_centres(self, images: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """Eye landmarks of the most probable face of each image: float64 ``[2, 2]`` (x, y) in
        pixels, image-left eye first; ``None`` where there is no face. Images of different
        sizes are detected in one batch per size; images smaller than the detector's smallest
        face (``min_face_size``) have none."""
        out: list[np.ndarray | None] = [None] * len(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(images):
            by_shape.setdefault(tuple(np.shape(im)), []).append(i)
        for shape, members in by_shape.items():
            if len(shape) != 3 or shape[2] != 3:
                raise ValueError(f"eye_centres needs RGB [H, W, 3] images, got shape {shape}")
            if min(shape[:2]) < self.min_face_size:  # MTCNN has no image pyramid level for these
                continue
            boxes, probs, points = self._detect(np.stack([images[i] for i in members]), landmarks=True)
            for i, frame_probs, frame_points in zip(members, probs, points):
                if frame_points is None or frame_probs is None:
                    continue
                p = np.asarray(list(frame_probs), dtype=np.float64).reshape(-1)
                pts = np.asarray(list(frame_points), dtype=np.float64).reshape(-1, 5, 2)
                out[i] = pts[int(np.argmax(p))][:2].copy()
        return out

    def _detect(self, batch: np.ndarray, landmarks: bool = False):
        if self.threads is None or not self.device.startswith("cpu"):
            return self._mtcnn.detect(batch, landmarks=landmarks)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._mtcnn.detect(batch, landmarks=landmarks)
        finally:
            torch.set_num_threads(before)


def sample_frames(
    num_frames: int,
    onset: int,
    apex: int,
    offset: int,
    *,
    method: str = "median",
    detect_frames: int = DEFAULT_DETECT_FRAMES,
) -> list[int]:
    """Clip-relative indices to run the detector on, ascending and unique.

    ``median``: onset, apex, offset plus ``detect_frames`` indices evenly spaced over the
    whole clip (first and last included when ``detect_frames >= 2``). ``onset``: the onset only.
    """
    _check_method(method)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    for name, v in (("onset", onset), ("apex", apex), ("offset", offset)):
        if not 0 <= v < num_frames:
            raise ValueError(f"{name}={v} is outside the clip's {num_frames} frames")
    if detect_frames < 0:
        raise ValueError(f"detect_frames must be >= 0, got {detect_frames}")
    if method == "onset":
        return [onset]
    spread = np.rint(np.linspace(0, num_frames - 1, detect_frames)).astype(int).tolist() if detect_frames else []
    return sorted({onset, apex, offset, *spread})


def median_box(boxes: Sequence[np.ndarray]) -> np.ndarray:
    """Per-coordinate median of ``(x0, y0, x1, y1)`` boxes: float64 ``[4]``."""
    if len(boxes) == 0:
        raise ValueError("median_box needs at least one box")
    return np.median(np.stack([np.asarray(b, dtype=np.float64) for b in boxes]), axis=0)


def expand_box(
    box: Sequence[float], image_size: tuple[int, int], *, margin: float = DEFAULT_MARGIN, aspect: float = 1.0
) -> tuple[int, int, int, int]:
    """Grow a face box into the crop box (see the module docstring).

    ``box``: ``(x0, y0, x1, y1)`` float pixels; ``image_size``: ``(H, W)``; ``margin``: added on
    every side, as a fraction of the box's longer side; ``aspect``: crop width / height (the
    output frames' aspect). Returns integer ``(x0, y0, x1, y1)`` inside the image, ``x1``/``y1``
    exclusive, with width/height == ``aspect`` up to rounding.
    """
    height, width = image_size
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box {list(box)} is empty (need x0 < x1 and y0 < y1)")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if aspect <= 0:
        raise ValueError(f"aspect must be > 0, got {aspect}")
    longer = max(x1 - x0, y1 - y0)
    # Smallest crop of the wanted aspect holding the grown face box, then fit into the image.
    need_w = x1 - x0 + 2 * margin * longer
    need_h = y1 - y0 + 2 * margin * longer
    crop_h = max(need_h, need_w / aspect)
    crop_h = min(crop_h, height, width / aspect)
    crop_w = crop_h * aspect
    w = max(1, min(width, int(round(crop_w))))
    h = max(1, min(height, int(round(crop_h))))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(cx - w / 2))
    top = int(round(cy - h / 2))
    left = min(max(left, 0), width - w)
    top = min(max(top, 0), height - h)
    return left, top, left + w, top + h


def choose_box(
    detector: FaceDetector,
    load_frame: Callable[[int], np.ndarray],
    num_frames: int,
    onset: int,
    apex: int,
    offset: int,
    *,
    clip_id: str,
    method: str = "median",
    margin: float = DEFAULT_MARGIN,
    detect_frames: int = DEFAULT_DETECT_FRAMES,
    aspect: float = 1.0,
    frame_names: Sequence[object] | None = None,
) -> FaceBox:
    """Choose the clip's crop box.

    ``load_frame(i)`` returns clip frame ``i`` as RGB uint8 ``[H, W, 3]``; ``onset``/``apex``/
    ``offset`` are clip-relative indices; ``frame_names[i]`` names frame ``i`` in a
    :class:`NoFaceError` (default: the index). Raises :class:`NoFaceError` when no tried frame
    shows a face.
    """
    _check_method(method)
    tried = sample_frames(num_frames, onset, apex, offset, method=method, detect_frames=detect_frames)
    images = [load_frame(i) for i in tried]
    detections = detector.detect(images)
    used = [(i, d) for i, d in zip(tried, detections) if d is not None]
    if not used:
        names = [frame_names[i] if frame_names is not None else i for i in tried]
        raise NoFaceError(clip_id, names)
    face = median_box([d.box for _, d in used])
    prob = float(np.median([d.prob for _, d in used]))
    height, width = images[0].shape[:2]
    box = expand_box(face, (height, width), margin=margin, aspect=aspect)
    return FaceBox(
        box=box,
        face_box=tuple(float(v) for v in face),
        prob=prob,
        method=method,
        frames_tried=tuple(tried),
        frames_with_face=tuple(i for i, _ in used),
    )


def _check_method(method: str) -> None:
    if method not in BOX_METHODS:
        raise ValueError(f"box_method must be one of {', '.join(BOX_METHODS)}; got {method!r}")
