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


def _no_nan(values) -> tuple:
    """``values`` with NaN (not assessed) as None, so that equal results compare equal."""
    return tuple(None if math.isnan(c) else c for c in values)


def _key(r) -> tuple:
    return r.reselected, _no_nan(r.confidence)


@pytest.fixture()
def three_torch_threads():
    """torch at 3 intra-op threads during the test (so that a run that leaves 1 is seen)."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


def test_threads_give_what_each_whole_clip_gives_alone(face_cache, three_torch_threads):
    settings = preset("recommended")
    expected = {}
    found = []
    for e in face_cache.entries:
        clip = torch.from_numpy(np.array(face_cache.frames(e)))
        out = correct_keyframes([clip], [e.onset_index], [e.apex_index], [e.offset_index], e.fps, settings=settings)
        keyframes = (int(out.onset[0]), int(out.apex[0]), int(out.offset[0]))
        expected[e.clip_id] = (keyframes, _no_nan(out.confidence[0].tolist()))
        found.append(bool(out.eyes_found[0]))
    assert all(found)  # MTCNN ran on every clip and found its eyes
    assert any(k[0][1] != e.apex_index for k, e in zip(expected.values(), face_cache.entries))  # apexes moved
    for workers in (1, 2, 3, np.int64(2)):
        got = run.reselect_cache(face_cache, settings, workers=workers, progress=False)
        assert [r.clip_id for r in got] == [e.clip_id for e in face_cache.entries]
        assert {r.clip_id: _key(r) for r in got} == expected, workers
        assert torch.get_num_threads() == three_torch_threads
    assert not [t for t in threading.enumerate() if t.name.startswith("gamdss-reselect")]


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_positive_integer(face_cache, workers):
    with pytest.raises(ValueError, match="workers"):
        run.reselect_cache(face_cache, workers=workers, progress=False)


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_failing_clip_stops_the_run_and_its_threads(face_cache, monkeypatch, error, three_torch_threads):
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
    with pytest.raises(error, match=ids[1]):
        run.reselect_cache(face_cache, workers=2, progress=False)
    assert set(ids[:2]) <= set(started) <= set(ids[:3])
    assert torch.get_num_threads() == three_torch_threads
    assert not [t for t in threading.enumerate() if t.name.startswith("gamdss-reselect")]


def test_each_clip_is_counted_as_it_ends_with_torch_on_one_thread(face_cache, monkeypatch, three_torch_threads):
    """The progress bar moves as clips end, not when all have: the last clip waits until the
    bar has counted another one. Every clip runs with torch on one intra-op thread."""
    counted = threading.Event()
    torch_threads = []
    last = face_cache.entries[-1].clip_id
    real = run._reselect_batch

    class Bar:
        def __init__(self, *args, **kwargs):
            pass

        def update(self, n):
            counted.set()

        def close(self):
            pass

    def reselect_batch(cache, entries, *args):
        torch_threads.append(torch.get_num_threads())
        if entries[0].clip_id == last:
            assert counted.wait(timeout=60), "no clip was counted before the last one ended"
        return real(cache, entries, *args)

    monkeypatch.setattr(run, "tqdm", Bar)
    monkeypatch.setattr(run, "_reselect_batch", reselect_batch)
    assert len(run.reselect_cache(face_cache, workers=2)) == len(face_cache.entries)
    assert torch_threads == [1] * len(face_cache.entries)


def test_the_max_distance_op_runs_its_batches_in_the_calling_thread(face_cache, monkeypatch):
    """``workers`` is for the noise-aware method: the op has threads of its own."""
    threads = []
    real = run._reselect_batch

    def reselect_batch(*args):
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(run, "_reselect_batch", reselect_batch)
    frame = int(np.prod(face_cache.entries[0].shape[1:]))
    run.reselect_cache(face_cache, preset("paper"), workers=3, max_batch_bytes=frame, progress=False)
    assert len(threads) == len(face_cache.entries) and set(threads) == {threading.main_thread()}
