"""A learnable toy frame cache for the LOSO trainer tests.

Three classes (CASME II emotions happiness, surprise, disgust -> ``casme2-3`` classes 0, 1, 2),
each a different motion between onset and apex: a brightening square (happiness), a darkening
square (surprise), a brightening full-width horizontal bar (disgust). They differ in sign and
shape, not in position, so the flip and crop augmentation keeps them apart. Every subject has
its own background texture, so a model must learn the motion,
not the subject. Annotations are the truth plus errors of up to ``annotation_error`` frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cache_fixtures import add_fixture_clip, annotate_with_errors
from gamdss.data.cache import CacheWriter, FrameCache
from gamdss.data.synthetic.profile import intensity_profile

EMOTIONS = ("happiness", "surprise", "disgust")


def make_toy_cache(
    root: str | Path,
    *,
    n_subjects: int = 3,
    clips_per_class: int = 3,
    frames: int = 24,
    size: int = 32,
    annotation_error: int = 2,
    amplitude: float = 90.0,
    seed: int = 0,
) -> FrameCache:
    """Write the toy cache into ``root`` (subjects ``sub01``..; clip ids ``subNN/EPkk``)."""
    rng = np.random.default_rng(seed)
    writer = CacheWriter(
        root, {"dataset": "casme2", "size": [size, size], "box_method": "fixture", "source": "tests/train_fixtures.py"}
    )
    s4, s2 = size // 4, size // 2
    masks = np.zeros((3, size, size), dtype=np.float64)
    masks[0, s2 - s4 // 2 : s2 + s4 // 2 + 1, s2 - s4 // 2 : s2 + s4 // 2 + 1] = 1.0
    masks[1] = -masks[0]
    masks[2, s2 - 2 : s2 + 2, :] = 1.0
    clip = 0
    for s in range(n_subjects):
        subject = f"sub{s + 1:02d}"
        texture = 70 + 100 * rng.random((size, size, 3))
        for _k in range(clips_per_class):
            for label, emotion in enumerate(EMOTIONS):
                onset = int(rng.integers(3, 6))
                apex = onset + int(rng.integers(6, 9))
                offset = min(frames - 1, apex + int(rng.integers(5, 8)))
                profile = intensity_profile(frames, onset, apex, offset, shape="linear")
                video = texture[None] + amplitude * profile[:, None, None, None] * masks[label][None, :, :, None]
                video = video + rng.normal(0, 3, video.shape)
                pixels = np.clip(np.rint(video), 0, 255).astype(np.uint8)
                a_on, a_apex, a_off = annotate_with_errors((onset, apex, offset), annotation_error, frames, rng)
                clip_id = f"{subject}/EP{clip:02d}"
                add_fixture_clip(
                    writer,
                    clip_id,
                    pixels,
                    (a_on, a_apex, a_off),
                    200.0,
                    clip + 2,
                    first_number=1000 + 50 * clip,
                    emotion=emotion,
                    aus=["12"],
                )
                clip += 1
    writer.flush()
    return FrameCache(root)


def toy_overrides(cache_root: str | Path, out: str | Path, *extra: str) -> list[str]:
    """Overrides of the ``tiny-cpu`` preset for a fast LOSO on the toy cache."""
    return [
        f"data.caches=[{cache_root}]",
        f"run.output_dir={out}",
        "data.image_size=32",
        "optim.epochs=12",  # with the released q/k/v init (std 0.02) 6-8 epochs left fall at 25-26 of 27; 12 reach 27
        "optim.batch_size=8",
        "run.device=cpu",
        "run.num_threads=1",
        "reselection.lam_rise=0.3",
        "reselection.lam_fall=0.3",
        "run.tsne=true",  # tiny-cpu skips t-SNE (a quick-run preset); the tests check its files
        *extra,
    ]
