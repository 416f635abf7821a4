"""Face photographs shipped inside installed packages, cropped and resized for synthetic clips.

Photographs used (nothing is downloaded):

- ``astronaut``: ``skimage.data.astronaut()`` (scikit-image), Eileen Collins, NASA photograph;
  scikit-image documents it as public domain ("no known copyright restrictions"). 512x512 RGB.
- ``grace_hopper``: ``mpl-data/sample_data/grace_hopper.jpg`` (matplotlib, via
  ``matplotlib.cbook.get_sample_data``), Rear Admiral Grace Hopper, US Navy official photograph
  (a work of the US government, public domain). 512x600 RGB.
- ``lfw_NNN``: 16 of the 100 faces in ``skimage.data.lfw_subset()`` (scikit-image), 25x25
  grey crops from Labeled Faces in the Wild (Huang et al.; news photographs collected from the
  web, distributed by LFW for research use without a formal licence; scikit-image
  redistributes the crops). We use the 16 most frontal ones (eyes level, nose and mouth
  centred between the eyes). They are tiny: upscaled to e.g. 160 px they are blurry grey faces.

The five landmarks of each photograph (image-left eye, image-right eye, nose tip, image-left
and image-right mouth corner; pixel coordinates with the image spanning ``[0, W] x [0, H]``)
were measured once with facenet-pytorch's MTCNN (the two photographs at full size, the LFW
crops on a 10x PIL-bicubic upscale) and are stored below; no detector runs at generation time.
Repeating that measurement reproduces every row to 0.05 px, and every other LFW face's row is
at least 0.58 px away, so each row belongs to the face it is listed under (all LFW indices are
below 100: ``lfw_subset()`` holds 100 faces, then 100 non-faces). On the crops
:func:`make_face` produces (subjects 0-53 at 64, 96, 128, 160 and 224 px) MTCNN finds the face
with p > 0.99 and its landmarks agree with the stored ones to 0.09 inter-ocular distances for
the two photographs and to 0.38 (worst; MTCNN's own scatter on blurry upscales, 0.11 for
subjects 0-17 at 128 px) for the LFW crops. The tests re-check every photograph at 128 px and
the LFW rows against their measurement.

Subjects: subject ``s`` uses photograph ``s % n`` (``n = len(PHOTOS)``, 18). Subjects
``n .. 2n - 1``, ``2n ..`` reuse the same people with a deterministic variation per cycle
(horizontal flip on odd cycles, crop zoom 0.9-1.1, per-channel tint 0.9-1.1, gamma 0.85-1.15).
These are NOT new identities: a model that recognises faces could tell they are the same
person, so leave-one-subject-out results over more than 18 subjects are optimistic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

#: landmarks (x, y) in the photograph's pixels: left eye, right eye, nose, left and right mouth corners.
_LANDMARKS: dict[str, tuple[float, ...]] = {
    "astronaut": (205.0, 101.7, 246.8, 103.7, 224.7, 129.0, 201.7, 139.2, 245.3, 141.9),
    "grace_hopper": (221.7, 192.2, 309.8, 186.1, 269.4, 239.2, 232.7, 279.6, 306.6, 275.9),
    "lfw_055": (4.1, 6.0, 14.8, 6.0, 9.6, 13.2, 5.7, 18.0, 13.6, 18.2),
    "lfw_012": (7.0, 9.8, 15.0, 9.8, 10.7, 13.4, 7.7, 18.4, 14.2, 18.5),
    "lfw_008": (5.6, 8.1, 14.9, 7.9, 10.2, 13.0, 6.2, 17.1, 14.8, 17.2),
    "lfw_095": (4.4, 7.0, 14.9, 6.7, 9.6, 12.7, 5.6, 18.1, 14.1, 17.9),
    "lfw_086": (5.9, 8.2, 15.3, 8.3, 10.3, 15.2, 6.2, 17.8, 14.8, 18.1),
    "lfw_006": (3.2, 9.3, 13.6, 9.1, 8.1, 15.3, 4.2, 19.7, 12.7, 19.5),
    "lfw_060": (4.1, 8.3, 14.7, 8.0, 9.5, 13.1, 5.4, 19.4, 13.8, 19.3),
    "lfw_011": (7.7, 9.9, 16.6, 9.8, 12.5, 15.4, 8.0, 18.8, 16.2, 18.9),
    "lfw_050": (3.9, 7.2, 14.0, 7.0, 8.7, 13.6, 4.6, 17.2, 13.7, 17.1),
    "lfw_069": (5.7, 8.8, 15.2, 8.5, 10.6, 13.9, 5.6, 17.6, 15.6, 17.3),
    "lfw_072": (5.6, 8.3, 15.4, 8.0, 10.5, 14.0, 6.6, 18.3, 14.8, 18.3),
    "lfw_041": (5.0, 8.3, 13.9, 8.2, 9.1, 13.9, 5.4, 17.5, 13.8, 17.5),
    "lfw_017": (8.6, 9.0, 16.3, 8.8, 12.7, 12.7, 9.4, 16.8, 15.7, 16.8),
    "lfw_032": (4.9, 8.6, 13.5, 8.4, 8.8, 13.7, 6.1, 18.3, 12.3, 18.3),
    "lfw_023": (7.8, 8.9, 16.5, 8.6, 12.5, 14.1, 7.9, 16.9, 16.5, 16.9),
    "lfw_024": (6.0, 8.6, 14.9, 8.6, 11.1, 13.7, 6.6, 18.6, 14.6, 18.4),
}

#: names of the photographs, in subject order.
PHOTOS: tuple[str, ...] = tuple(_LANDMARKS)

#: crop side as a multiple of the inter-ocular distance (limited by the photograph's size).
DEFAULT_CROP_SCALE = 3.6


@dataclass(frozen=True)
class FaceImage:
    """A face crop ready to animate.

    Attributes:
        image: uint8 ``[H, W, 3]`` RGB.
        landmarks: float64 ``[5, 2]`` (x, y) output pixels: image-left eye, image-right eye, nose,
            image-left mouth corner, image-right mouth corner (after any flip, still in image
            terms).
        photo: photograph name (see :data:`PHOTOS`).
        subject: subject number it was made for.
        variation: description of the subject variation (``"none"`` for the first cycle).
    """

    image: np.ndarray
    landmarks: np.ndarray
    photo: str
    subject: int
    variation: str

    @property
    def interocular_px(self) -> float:
        """Distance between the two eye landmarks, output pixels."""
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))


@cache
def load_photo(name: str) -> np.ndarray:
    """The photograph ``name`` as uint8 ``[H, W, 3]`` RGB (read-only, cached)."""
    if name not in _LANDMARKS:
        raise ValueError(f"unknown face photograph {name!r}; available: {', '.join(PHOTOS)}")
    if name == "astronaut":
        from skimage import data

        img = data.astronaut()
    elif name == "grace_hopper":
        import matplotlib.cbook as cbook
        from PIL import Image

        with cbook.get_sample_data("grace_hopper.jpg") as fh:
            img = np.asarray(Image.open(fh).convert("RGB"))
    else:
        from skimage import data

        grey = data.lfw_subset()[int(name.split("_")[1])]
        grey = np.rint(np.clip(grey, 0.0, 1.0) * 255.0).astype(np.uint8)
        img = np.repeat(grey[..., None], 3, axis=2)
    img = np.ascontiguousarray(img, dtype=np.uint8)
    img.setflags(write=False)
    return img


def photo_landmarks(name: str) -> np.ndarray:
    """The stored landmarks of photograph ``name``, float64 ``[5, 2]`` in its pixels."""
    if name not in _LANDMARKS:
        raise ValueError(f"unknown face photograph {name!r}; available: {', '.join(PHOTOS)}")
    return np.asarray(_LANDMARKS[name], dtype=np.float64).reshape(5, 2)


def _crop_box(
    lm: np.ndarray, img_hw: tuple[int, int], out_hw: tuple[int, int], crop_scale: float
) -> tuple[int, int, int, int]:
    """Integer crop (x0, y0, x1, y1) around the face with the output's aspect ratio, inside the image."""
    h_img, w_img = img_hw
    out_h, out_w = out_hw
    d = np.linalg.norm(lm[1] - lm[0])
    centre = 0.5 * (lm[:2].mean(axis=0) + lm[3:].mean(axis=0))
    ch = crop_scale * d
    cw = ch * out_w / out_h
    shrink = min(1.0, h_img / ch, w_img / cw)
    ch, cw = int(round(ch * shrink)), int(round(cw * shrink))
    ch, cw = max(1, min(ch, h_img)), max(1, min(cw, w_img))
    x0 = int(round(centre[0] - cw / 2))
    y0 = int(round(centre[1] - ch / 2))
    x0 = min(max(x0, 0), w_img - cw)
    y0 = min(max(y0, 0), h_img - ch)
    return x0, y0, x0 + cw, y0 + ch


def make_face(subject: int, size: tuple[int, int], *, crop_scale: float = DEFAULT_CROP_SCALE) -> FaceImage:
    """The face crop of ``subject`` at ``size = (H, W)`` pixels.

    The crop is centred between the eyes and the mouth, ``crop_scale`` inter-ocular distances
    high (less when the photograph is smaller, as for the 25 px LFW crops, which are then used
    whole), with the output's aspect ratio; it is resized with area averaging when shrinking and
    bicubic interpolation when enlarging. See the module docstring for the subject variation.

    Raises:
        ValueError: negative subject, size below 16 px.
    """
    if int(subject) != subject or subject < 0:
        raise ValueError(f"subject must be an integer >= 0, got {subject!r}")
    out_h, out_w = (int(v) for v in size)
    if out_h < 16 or out_w < 16:
        raise ValueError(f"face size must be at least 16x16 px, got {size!r}")
    cycle, index = divmod(int(subject), len(PHOTOS))
    name = PHOTOS[index]
    img = load_photo(name)
    lm = photo_landmarks(name)
    zoom, gains, gamma, flip = 1.0, np.ones(3), 1.0, False
    if cycle > 0:
        rng = np.random.default_rng([cycle, index, 20261125])
        zoom = float(rng.uniform(0.9, 1.1))
        gains = rng.uniform(0.9, 1.1, size=3)
        gamma = float(rng.uniform(0.85, 1.15))
        flip = cycle % 2 == 1
    x0, y0, x1, y1 = _crop_box(lm, img.shape[:2], (out_h, out_w), crop_scale / zoom)
    crop = img[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if (x1 - x0) > out_w else cv2.INTER_CUBIC
    face = cv2.resize(crop, (out_w, out_h), interpolation=interp)
    lm_out = (lm - np.array([x0, y0])) * np.array([out_w / (x1 - x0), out_h / (y1 - y0)])
    if cycle > 0:
        f = face.astype(np.float64) / 255.0
        f = np.clip(f * gains, 0.0, 1.0) ** gamma
        face = np.rint(f * 255.0).astype(np.uint8)
    if flip:
        face = np.ascontiguousarray(face[:, ::-1])
        lm_out = lm_out.copy()
        lm_out[:, 0] = out_w - lm_out[:, 0]
        lm_out = lm_out[[1, 0, 2, 4, 3]]  # image-left stays first after mirroring
    variation = (
        "none"
        if cycle == 0
        else (f"cycle {cycle}: flip={flip}, zoom={zoom:.3f}, gains={np.round(gains, 3).tolist()}, gamma={gamma:.3f}")
    )
    return FaceImage(face, lm_out, name, int(subject), variation)
