"""``reselect_cache`` with the noise-aware method in several threads: the same keyframes and
confidences as correcting each whole clip on its own, eyes found by one shared MTCNN, and a
failing or interrupted run that stops its threads and restores torch's thread count."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import gamdss.reselection.run as run
from cache_fixtures import add_fixture_clip
from face_frames import face_frame
from gamdss.data.cache import CacheWriter, FrameCache
from gamdss.reselection.noise_aware import correct_keyframes
from gamdss.settings.reselection import preset

FPS = 200.0
FRAMES = 48


def _clip(k: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Clip ``k``: the astronaut moved by a few pixels per clip, a bright patch on the mouth
    rising to a true apex and fading, and an annotation that misses the apex by k % 4 frames."""
    rng = np.random.default_rng(100 + k)
    onset, apex, offset = 6, 18 + k % 5, 34 + k % 3
    frames = np.stack([face_frame(1000 * k + t, shift=(k % 3, 2 * (k % 4))) for t in range(FRAMES)]).astype(np.float64)
    strength = np.interp(np.arange(FRAMES), [onset, apex, offset], [0.0, 1.0, 0.0], left=0.0, right=0.0)
    y0, x0 = 100 + int(rng.integers(0, 4)), 70 + int(rng.integers(0, 4))
    frames[:, y0 : y0 + 14, x0 : x0 + 24, :] += 40.0 * strength[:, None, None, None]
    annotated = (onset, max(onset, apex - k % 4), offset)
    return np.clip(frames, 0, 255).astype(np.uint8), annotated


@pytest.fixture(scope="module")
def face_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    writer = CacheWriter(root, {"dataset": "casme2"})
    for k in range(6):
        frames, keyframes = _clip(k)
        add_fixture_clip(writer, f"sub{k % 2 + 1:02d}/EP{k:02d}", frames, keyframes, FPS, row=k + 2)
    return FrameCache(root)


def _key(r) -> tuple:
    return r.reselected, tuple(None if math.isnan(c) else c for c in r.confidence)


def test_threads_give_what_each_whole_clip_gives_alone(face_cache):
    settings = preset("recommended")
    expected = {}
    found = []
    for e in face_cache.entries:
        clip = torch.from_numpy(np.array(face_cache.frames(e)))
        out = correct_keyframes([clip], [e.onset_index], [e.apex_index], [e.offset_index], e.fps, settings=settings)
        confidence = tuple(None if math.isnan(c) else c for c in out.confidence[0].tolist())
        expected[e.clip_id] = ((int(out.onset[0]), int(out.apex[0]), int(out.offset[0])), confidence)
        found.append(bool(out.eyes_found[0]))
    assert all(found)  # MTCNN ran on every clip and found its eyes
    assert any(k[0][1] != (e.onset_index, e.apex_index)[1] for k, e in zip(expected.values(), face_cache.entries))
    threads_before = torch.get_num_threads()
    for workers in (1, 2, 3):
        got = run.reselect_cache(face_cache, settings, workers=workers, progress=False)
        assert [r.clip_id for r in got] == [e.clip_id for e in face_cache.entries]
        assert {r.clip_id: _key(r) for r in got} == expected, workers
        assert torch.get_num_threads() == threads_before
    assert not [t for t in threading.enumerate() if t.name.startswith("gamdss-reselect")]


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_positive_integer(face_cache, workers):
    with pytest.raises(ValueError, match="workers"):
        run.reselect_cache(face_cache, workers=workers, progress=False)


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_failing_clip_stops_the_run_and_its_threads(face_cache, monkeypatch, error):
    """The first error (a damaged clip, or Ctrl-C reaching a thread) is raised; clips not yet
    started are never started, no thread is left and torch's thread count is restored.

    Two threads, six clips; clip 1 fails at once. Every other clip waits until the run has
    cancelled the queued clips, so clip 0 (and perhaps clip 2) is running then and clips 3-5
    are queued."""
    ids = [e.clip_id for e in face_cache.entries]
    started = []
    stopping = threading.Event()
    real = run._reselect_batch

    def reselect_batch(cache, entries, *args):
        started.append(entries[0].clip_id)
        if entries[0].clip_id == ids[1]:
            raise error(f"clip {ids[1]}: damaged")
        assert stopping.wait(timeout=60)
        return real(cache, entries, *args)

    class Pool(ThreadPoolExecutor):
        def shutdown(self, wait=True, *, cancel_futures=False):
            super().shutdown(wait=False, cancel_futures=cancel_futures)  # the queued clips go first
            stopping.set()
            super().shutdown(wait=wait)

    monkeypatch.setattr(run, "_reselect_batch", reselect_batch)
    monkeypatch.setattr(run, "ThreadPoolExecutor", Pool)
    threads_before = torch.get_num_threads()
    with pytest.raises(error, match=ids[1]):
        run.reselect_cache(face_cache, workers=2, progress=False)
    assert set(ids[:2]) <= set(started) <= set(ids[:3])
    assert torch.get_num_threads() == threads_before
    assert not [t for t in threading.enumerate() if t.name.startswith("gamdss-reselect")]
