"""Action-unit-shaped deformation fields and the emotion classes they stand for.

An action unit (AU) here is a sum of Gaussian "blobs" of displacement placed relative to the
face's five landmarks: each blob moves the skin around one point in one direction, fading
with distance (sd ``sigma`` inter-ocular distances). It is a cartoon of the FACS action, not
a muscle model: the right regions move in roughly the right directions by a pixel or two,
which is what micro-expression methods (frame differences, optical flow) respond to.

Geometry: positions are offsets from an anchor landmark in units of the inter-ocular
distance ``d``, in a face frame whose x axis runs from the image-left eye to the image-right
eye and whose y axis points down (perpendicular). Bilateral AUs are defined for the image-left
side and mirrored; a prefix ``L``/``R`` (``R14``) keeps only one side, where ``R`` (the
subject's right) is the image-left side (also on the flipped subject variations of :mod:`.faces`). Anchors: ``eye`` (the
eye of the side), ``nose``, ``mouth`` (the mouth corner of the side), ``mouth_mid`` (the
midpoint of the mouth corners).

The combined field of an expression is normalised so that its largest displacement is
exactly 1 px; the generator scales it by the amplitude (px at apex) times the intensity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Blob:
    """One displacement blob: anchor, offset (u, v) and direction (du, dv) in face-frame units
    of ``d``, Gaussian sd ``sigma`` in ``d``."""

    anchor: str
    u: float
    v: float
    du: float
    dv: float
    sigma: float


#: AU number -> blobs on the image-left side (mirrored to the other side unless the AU is
#: centred: anchor ``nose``/``mouth_mid`` with ``u == 0``).
AU_BLOBS: dict[str, tuple[Blob, ...]] = {
    "1": (Blob("eye", 0.22, -0.45, 0.0, -1.0, 0.2),),  # inner brow raiser
    "2": (Blob("eye", -0.22, -0.42, 0.0, -1.0, 0.2),),  # outer brow raiser
    "4": (Blob("eye", 0.25, -0.4, 0.5, 0.85, 0.2),),  # brow lowerer (down, inward)
    "5": (Blob("eye", 0.0, -0.12, 0.0, -1.0, 0.1),),  # upper lid raiser
    "6": (Blob("eye", -0.05, 0.42, 0.0, -1.0, 0.22),),  # cheek raiser
    "7": (Blob("eye", 0.0, 0.1, 0.0, -1.0, 0.1),),  # lid tightener
    "9": (Blob("nose", -0.18, -0.3, 0.0, -1.0, 0.14),),  # nose wrinkler
    "10": (Blob("mouth", 0.25, -0.2, 0.0, -1.0, 0.16),),  # upper lip raiser
    "12": (Blob("mouth", 0.0, 0.0, -0.7, -0.7, 0.2),),  # lip corner puller
    "14": (Blob("mouth", 0.02, 0.0, 1.0, 0.0, 0.12),),  # dimpler (corner pulled in)
    "15": (Blob("mouth", 0.0, 0.05, 0.0, 1.0, 0.18),),  # lip corner depressor
    "17": (Blob("mouth_mid", 0.0, 0.45, 0.0, -1.0, 0.25),),  # chin raiser
    "20": (Blob("mouth", 0.0, 0.0, -1.0, 0.2, 0.22),),  # lip stretcher
    "23": (
        Blob("mouth_mid", 0.0, -0.1, 0.0, 1.0, 0.1),  # lip tightener
        Blob("mouth_mid", 0.0, 0.12, 0.0, -1.0, 0.1),
    ),
    "24": (
        Blob("mouth_mid", 0.0, -0.12, 0.0, 1.0, 0.14),  # lip pressor
        Blob("mouth_mid", 0.0, 0.16, 0.0, -1.0, 0.14),
    ),
    "26": (Blob("mouth_mid", 0.0, 0.45, 0.0, 1.0, 0.35),),  # jaw drop
}

#: CASME II's emotion classes.
CASME2_EMOTIONS = ("happiness", "disgust", "repression", "surprise", "others", "fear", "sadness")
#: SAMM's emotion classes.
SAMM_EMOTIONS = ("anger", "contempt", "happiness", "surprise", "other", "disgust", "fear", "sadness")

#: emotion -> AUs (as a coder would write them). Prototypes after FACS/EMFACS, simplified.
EMOTION_AUS: dict[str, tuple[str, ...]] = {
    "happiness": ("6", "12"),
    "disgust": ("4", "9", "10"),
    "repression": ("14", "17"),
    "surprise": ("1", "2", "5"),
    "others": ("7",),
    "other": ("7",),
    "fear": ("1", "4", "20"),
    "sadness": ("1", "4", "15"),
    "anger": ("4", "7", "24"),
    "contempt": ("R12", "R14"),
}

_TO_CASME2 = {"anger": "others", "contempt": "others", "other": "others"}
_TO_SAMM = {"repression": "other", "others": "other"}


def emotion_for_dataset(emotion: str, dataset: str) -> str:
    """``emotion`` in the vocabulary of ``dataset`` (``casme2``: anger, contempt, other ->
    others; ``samm``: repression, others -> other; ``synthetic``: unchanged)."""
    e = emotion.lower()
    if e not in EMOTION_AUS:
        raise ValueError(f"unknown emotion {emotion!r}; known: {', '.join(EMOTION_AUS)}")
    if dataset == "casme2":
        return _TO_CASME2.get(e, e)
    if dataset == "samm":
        return _TO_SAMM.get(e, e)
    if dataset == "synthetic":
        return e
    raise ValueError(f"no emotion vocabulary for dataset {dataset!r} (casme2, samm, synthetic)")


def _parse_au(au: str) -> tuple[str, str | None]:
    text = str(au).strip().upper()
    side = None
    if text[:1] in ("L", "R"):
        side, text = text[0], text[1:]
    text = text.lstrip("AU").lstrip("0") or "0"
    if text not in AU_BLOBS:
        raise ValueError(
            f"action unit {au!r} is not modelled; modelled AUs: {', '.join(AU_BLOBS)} "
            f"(optionally with an L or R prefix)"
        )
    return text, side


def _points(landmarks: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, float]:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.all(np.isfinite(lm)):
        raise ValueError(f"landmarks must be a finite [5, 2] array, got shape {lm.shape}")
    ex = lm[1] - lm[0]
    d = float(np.linalg.norm(ex))
    if d <= 0:
        raise ValueError("landmarks: the two eyes coincide")
    ex = ex / d
    ey = np.array([-ex[1], ex[0]])  # x right, y down (image axes), rotated with the eye line
    anchors = {
        "eye_L": lm[0],
        "eye_R": lm[1],
        "nose": lm[2],
        "mouth_L": lm[3],
        "mouth_R": lm[4],
        "mouth_mid": 0.5 * (lm[3] + lm[4]),
    }
    return anchors, ex, ey, d


def blob_list(aus: tuple[str, ...] | list[str], landmarks: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Blobs of ``aus`` on a face: list of (centre px [2], direction [2] (face units), sigma px)."""
    anchors, ex, ey, d = _points(landmarks)
    out = []
    for au in aus:
        number, side = _parse_au(au)
        for b in AU_BLOBS[number]:
            centred = b.anchor in ("nose", "mouth_mid") and b.u == 0.0
            sides = [("L", 1.0)] if centred else [("L", 1.0), ("R", -1.0)]
            if side is not None and not centred:
                # FACS sides are the subject's: the subject's right is the image-left side.
                image_side = "L" if side == "R" else "R"
                sides = [s for s in sides if s[0] == image_side]
            for tag, mirror in sides:  # tag: image side (L = image-left)
                key = b.anchor if b.anchor in ("nose", "mouth_mid") else f"{b.anchor}_{tag}"
                centre = anchors[key] + d * (mirror * b.u * ex + b.v * ey)
                direction = mirror * b.du * ex + b.dv * ey
                out.append((centre, direction, b.sigma * d))
    return out


def deformation_field(aus: tuple[str, ...] | list[str], landmarks: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Displacement field of an expression, float32 ``[H, W, 2]`` (dx, dy) in px, largest
    displacement exactly 1 px; evaluated at pixel centres ``(x + 0.5, y + 0.5)`` in the
    landmarks' coordinates.

    Raises:
        ValueError: no AUs, an AU that is not modelled, bad landmarks.
    """
    if len(aus) == 0:
        raise ValueError("deformation_field: no action units given")
    h, w = (int(v) for v in size)
    blobs = blob_list(aus, landmarks)
    ys = np.arange(h, dtype=np.float64) + 0.5
    xs = np.arange(w, dtype=np.float64) + 0.5
    field = np.zeros((h, w, 2))
    for centre, direction, sigma in blobs:
        gy = np.exp(-((ys - centre[1]) ** 2) / (2 * sigma * sigma))
        gx = np.exp(-((xs - centre[0]) ** 2) / (2 * sigma * sigma))
        weight = np.outer(gy, gx)
        field[..., 0] += direction[0] * weight
        field[..., 1] += direction[1] * weight
    peak = np.sqrt((field**2).sum(axis=-1)).max()
    if not peak > 0:
        raise ValueError(f"deformation_field: the AUs {tuple(aus)} fall outside the {h}x{w} image")
    return torch.from_numpy((field / peak).astype(np.float32))


def region_mask(field: torch.Tensor, fraction: float = 0.25) -> torch.Tensor:
    """bool ``[H, W]``: pixels whose displacement is at least ``fraction`` of the largest one
    (the AU region)."""
    mag = field.norm(dim=-1)
    return mag >= fraction * mag.max()
