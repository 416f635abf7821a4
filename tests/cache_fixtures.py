"""A small frame cache made directly from generated clips with known keyframes.

Every clip is a fixed random texture (uint8 ``[T, size, size, 3]``) on which a Gaussian blob
brightens linearly from the true onset to the true apex and fades linearly to the true
offset, so the true apex is the frame farthest from the onset. Annotations are the truth plus
integer errors, as a human annotator's would be. Frame numbers are the dataset's own: they
start at a clip-specific number (``100 * (clip + 1) + 7``), so index and frame number differ.

Use::

    cache = make_cache(tmp_path / "cache", n_clips=4)
    fixture_truth(cache)["sub01/EP00"]   # true (onset, apex, offset), clip-relative
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gamdss.data.cache import CacheEntry, CacheWriter, FrameCache, write_clip_file
from gamdss.data.synthetic.profile import intensity_profile

FPS = {
    "casme": 60.0,
    "casme2": 200.0,
    "samm": 200.0,
    "casme_sq": 30.0,
    "casme3": 30.0,
    "mmew": 90.0,
    "4dme": 60.0,
    "synthetic": 100.0,
}


def annotate_with_errors(
    truth: tuple[int, int, int], error: int, frames: int, rng: np.random.Generator
) -> tuple[int, int, int]:
    """The true (onset, apex, offset) plus integer errors in ``[-error, error]``, as a human
    annotator's, kept ordered and inside ``[0, frames - 1]``."""
    err = rng.integers(-error, error + 1, size=3)
    onset = int(np.clip(truth[0] + err[0], 0, frames - 1))
    apex = int(np.clip(truth[1] + err[1], onset, frames - 1))
    offset = int(np.clip(truth[2] + err[2], apex, frames - 1))
    return onset, apex, offset


def first_frame_number(clip: int) -> int:
    """Dataset frame number of clip ``clip``'s first cached frame."""
    return 100 * (clip + 1) + 7


def make_cache(
    root: str | Path,
    *,
    n_clips: int = 6,
    n_subjects: int = 3,
    frames: int = 30,
    size: int = 32,
    dataset: str = "casme2",
    annotation_error: int = 2,
    seed: int = 0,
    meta: Mapping[str, Mapping[str, str]] | None = None,
    amplitude: float = 60.0,
    fps: float | None = None,
    noise_sd: float = 0.0,
) -> FrameCache:
    """Write a cache of ``n_clips`` generated clips into ``root`` and open it.

    Clips go round-robin to subjects ``sub01`` .. ``sub{n_subjects}``; clip ids are
    ``<subject>/EP<clip:02d>``. True onset in [2, 4], apex 8-12 frames later, offset 6-10
    frames after the apex (needs ``frames >= 27``). Annotated keyframes are the truth plus
    errors in ``[-annotation_error, annotation_error]``, kept ordered and inside the clip.
    ``meta`` maps a subject to its entry ``meta`` (e.g. ``{"sub01": {"ethnicity": "A"}}``).
    ``fps`` defaults to the dataset's (:data:`FPS`). The true indices are stored in the
    header (read them with :func:`fixture_truth`). ``noise_sd``: grey levels of Gaussian
    sensor noise per pixel and frame (0: neutral frames repeat exactly, which the noise-aware
    correction takes for repeated frames). Deterministic from ``seed``.
    """
    if frames < 27:
        raise ValueError(f"frames={frames}: the fixture needs at least 27 frames per clip")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    rate = FPS.get(dataset, 100.0) if fps is None else float(fps)
    specs = []
    for _ in range(n_clips):
        onset = int(rng.integers(2, 5))
        apex = onset + int(rng.integers(8, 13))
        offset = min(frames - 1, apex + int(rng.integers(6, 11)))
        profile = intensity_profile(frames, onset, apex, offset, shape="linear")
        cy, cx = (rng.random(2) * 0.5 + 0.25) * size
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 6) ** 2))
        texture = 60 + 120 * rng.random((size, size, 3))
        clip = texture[None] + amplitude * profile[:, None, None, None] * blob[None, :, :, None]
        if noise_sd > 0:
            clip = clip + rng.normal(0.0, noise_sd, clip.shape)
        pixels = np.clip(np.rint(clip), 0, 255).astype(np.uint8)
        specs.append(
            (pixels, (onset, apex, offset), annotate_with_errors((onset, apex, offset), annotation_error, frames, rng))
        )

    subjects = [f"sub{s + 1:02d}" for s in range(n_subjects)]
    header = {
        "dataset": dataset,
        "size": [size, size],
        "box_method": "fixture",
        "source": "tests/cache_fixtures.py",
        "fixture_truth": {},
    }
    ids = []
    for c, (_, truth, _) in enumerate(specs):
        clip_id = f"{subjects[c % n_subjects]}/EP{c:02d}"
        ids.append(clip_id)
        header["fixture_truth"][clip_id] = list(truth)
    writer = CacheWriter(root, header)
    for c, (pixels, _, ann) in enumerate(specs):
        subject = subjects[c % n_subjects]
        first = first_frame_number(c)
        add_fixture_clip(
            writer,
            ids[c],
            pixels,
            ann,
            rate,
            c + 2,
            first_number=first,
            emotion=("happiness", "disgust", "surprise")[c % 3],
            aus=["4", "L10"][: 1 + c % 2],
            sources=[f"{subject}/EP{c:02d}/img{n}.jpg" for n in range(first, first + frames)],
            meta=(meta or {}).get(subject, {}),
        )
    return FrameCache(root)


def add_fixture_clip(
    writer: CacheWriter,
    clip_id: str,
    pixels: np.ndarray,
    keyframes: tuple[int, int, int],
    fps: float,
    row: int,
    *,
    first_number: int = 1,
    emotion: str = "x",
    aus: Sequence[str] = (),
    sources: Sequence[str] = (),
    meta: Mapping[str, str] | None = None,
) -> None:
    """Write ``pixels`` (uint8 ``[T, H, W, 3]``) as clip ``clip_id`` (``<subject>/<video>``) of
    ``writer``'s cache: frames numbered from ``first_number``, the clip-relative ``keyframes``
    as its annotation, no face box."""
    subject, video = clip_id.split("/")
    numbers = list(range(first_number, first_number + pixels.shape[0]))
    rel, digest = write_clip_file(writer.root, clip_id, pixels)
    writer.add(
        CacheEntry(
            clip_id=clip_id,
            dataset=writer.header["dataset"],
            subject=subject,
            video=video,
            emotion=emotion,
            aus=list(aus),
            fps=fps,
            row=row,
            frame_numbers=numbers,
            onset=numbers[keyframes[0]],
            apex=numbers[keyframes[1]],
            offset=numbers[keyframes[2]],
            file=rel,
            shape=list(pixels.shape),
            sha256=digest,
            sources=list(sources),
            box=None,
            face_prob=None,
            box_method="fixture",
            meta=dict(meta or {}),
        )
    )


def fixture_truth(cache: FrameCache) -> dict[str, tuple[int, int, int]]:
    """True (onset, apex, offset) indices per clip id of a :func:`make_cache` cache."""
    return {k: tuple(v) for k, v in cache.header["fixture_truth"].items()}
