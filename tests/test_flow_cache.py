"""Flow computed once: the methods against known motion, and the flow cache's keys and resumption.

Oracles: a smooth texture shifted by a known whole-pixel amount (its flow is that shift
everywhere away from the borders); a mirrored frame pair (its flow is the original flow
mirrored, with dx negated); file counts and modification times for cache hits and misses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cache_fixtures import make_cache
from gamdss.data.batch import AugmentParams, KeyframeBatch
from gamdss.data.batch_transform import KeyframeTransform, crop_padding
from gamdss.data.cache import CacheWriter, FrameCache, file_stamp, write_clip_file
from gamdss.data.flow import FLOW_METHODS, compute_flow, flow_params, rgb_to_grey, tvl1_available
from gamdss.data.flow_cache import FlowReport, FlowStore, flow_pairs
from gamdss.data.keyframes import KeyframeDataset, collate
from gamdss.data.protocols import get_protocol
from gamdss.data.samples import build_samples
from gamdss.util import run_lock
from process_helpers import alive, children, python_env, wait_until


def _texture(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur((rng.random((size, size)) * 255).astype(np.float32), (0, 0), 3)
    return (big - big.min()) / (big.max() - big.min()) * 255


def _shifted_pair(dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey uint8 [1, 64, 64] frames A, B with B(x, y) = A(x - dx, y - dy): content moves (dx, dy)."""
    big = _texture(96)
    a = big[16:80, 16:80]
    b = big[16 - dy : 80 - dy, 16 - dx : 80 - dx]
    as_t = lambda x: torch.from_numpy(np.round(x).astype(np.uint8))[None]  # noqa: E731
    return as_t(a), as_t(b)


def test_tvl1_is_available():
    assert tvl1_available(), "opencv-contrib-python-headless (cv2.optflow) is a dependency"


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_known_global_shift_gives_known_flow(method):
    a, b = _shifted_pair(2, 1)
    flow = compute_flow(a, b, method)[0, :, 12:-12, 12:-12]
    assert flow.shape[0] == 2
    assert float((flow[0] - 2).abs().mean()) < 0.05
    assert float((flow[1] - 1).abs().mean()) < 0.05


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_flipped_pair_gives_mirrored_negated_flow(method):
    a, b = _shifted_pair(2, -1)
    flow = compute_flow(a, b, method)[0]
    flipped = compute_flow(a.flip(-1), b.flip(-1), method)[0]
    want = flow.flip(-1)
    want[0] = -want[0]
    inner = (slice(None), slice(12, -12), slice(12, -12))
    assert float((flipped[inner] - want[inner]).abs().mean()) < 0.05
    assert float(flipped[0][inner[1:]].mean()) == pytest.approx(-2.0, abs=0.05)


def test_cached_flow_flipped_by_the_transform_is_mirrored_negated():
    """What the pipeline does to a cached field under a flip: exactly mirror + negate dx."""
    a, b = _shifted_pair(1, 2)
    field = compute_flow(a, b, "farneback").half()  # [1, 2, 64, 64]
    flow = torch.stack([field, field], 1)  # rise, fall
    p = crop_padding(64)
    params = AugmentParams(
        flip=torch.tensor([True]),
        angle=torch.tensor([0.0]),
        top=torch.tensor([p]),
        left=torch.tensor([p]),
        scale=torch.tensor([1.0]),
    )
    out = KeyframeTransform(64, "flow")(KeyframeBatch(torch.zeros(1, 3, 64, 64, 3, dtype=torch.uint8), params, flow))
    want = field.float().flip(-1)
    want[:, 0] = -want[:, 0]
    assert torch.equal(out.rise_flow, want)


def test_flow_params_refuse_unknown_names():
    assert flow_params("tvl1", {"warps": 3})["warps"] == 3
    with pytest.raises(ValueError, match="winsize"):
        flow_params("tvl1", {"winsize": 3})
    with pytest.raises(ValueError, match="flow method"):
        flow_params("lucas-kanade")


def _pairs(cache: FrameCache) -> list[tuple[str, int, int]]:
    return sorted(
        {(e.clip_id, s, d) for e in cache.entries for s, d in flow_pairs((e.onset_index, e.apex_index, e.offset_index))}
    )


def test_stored_flow_is_the_flow_of_the_frames(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=2, size=32)
    store = FlowStore(cache, "farneback")
    pairs = _pairs(cache)
    report = store.compute(pairs, workers=1, progress=False)
    assert sorted(report.done) == pairs and not report.failed
    clip_id, src, dst = pairs[0]
    frames = torch.from_numpy(np.ascontiguousarray(cache.frames(clip_id)[[src, dst]]))
    grey = rgb_to_grey(frames)
    want = compute_flow(grey[:1], grey[1:], "farneback")[0]
    got = store.read(clip_id, src, dst)
    assert got.dtype == np.float16 and got.shape == (2, 32, 32)
    np.testing.assert_allclose(got.astype(np.float32), want.numpy(), atol=2e-3, rtol=1e-3)


def test_cache_hit_miss_and_invalidation(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=3, size=32)
    store = FlowStore(cache, "farneback")
    pairs = _pairs(cache)
    store.compute(pairs, workers=1, progress=False)
    files = sorted(store.folder.rglob("*.npy"))
    assert len(files) == len(pairs)
    stamps = {f: f.stat().st_mtime_ns for f in files}

    again = store.compute(pairs, workers=1, progress=False)  # hit: nothing recomputed
    assert again.done == [] and sorted(again.already_done) == pairs
    assert {f: f.stat().st_mtime_ns for f in files} == stamps

    clip_id, src, dst = pairs[0]  # other keyframes (a reselection moved the apex): a miss
    moved = store.compute([(clip_id, src, dst + 1)], workers=1, progress=False)
    assert moved.done == [(clip_id, src, dst + 1)]
    assert store.path(clip_id, src, dst + 1) != store.path(clip_id, src, dst)

    other = FlowStore(cache, "farneback", params={"winsize": 9})  # other parameters: another folder
    assert other.folder != store.folder and other.missing(pairs) == pairs

    # The clip's pixels are redone (new sha256): its fields are looked up under a new key.
    entry = cache[clip_id]
    frames = np.array(cache.frames(clip_id))
    frames[0] = 255 - frames[0]
    rel, digest = write_clip_file(cache.root, clip_id, frames)
    writer = CacheWriter(cache.root, cache.header)
    writer.add(dataclasses.replace(entry, file=rel, sha256=digest, **file_stamp(cache.root / rel)))
    writer.flush()
    fresh = FlowStore(cache.root, "farneback")
    assert fresh.path(clip_id, src, dst) != store.path(clip_id, src, dst)
    assert (clip_id, src, dst) in fresh.missing(pairs)


def test_a_clip_redone_after_the_store_read_the_manifest_fails_instead_of_storing_stale_keys(tmp_path):
    """The store names the files from the manifest it read; when preprocessing redoes a clip
    after that (new pixels), the flow of the new pixels must not be stored under the old
    pixels' key: that clip fails with a reason, the others are stored."""
    cache = make_cache(tmp_path / "cache", n_clips=2, size=32)
    store = FlowStore(cache.root, "farneback")
    pairs = _pairs(cache)
    redone = pairs[0][0]
    stale_paths = {p: store.path(*p) for p in pairs}  # the store has read the manifest
    entry = cache[redone]
    frames = 255 - np.array(cache.frames(redone))
    rel, digest = write_clip_file(cache.root, redone, frames)
    writer = CacheWriter(cache.root, cache.header)
    writer.add(dataclasses.replace(entry, file=rel, sha256=digest, **file_stamp(cache.root / rel)))
    writer.flush()
    report = store.compute(pairs, workers=1, progress=False)
    assert len(report.failed) == 1 and report.failed[0].startswith(f"clip {redone}: ValueError: its frames")
    assert all(not stale_paths[p].exists() for p in pairs if p[0] == redone)
    assert all(store.complete(*p) for p in pairs if p[0] != redone)
    fresh = FlowStore(cache.root, "farneback")  # a new run keys the new pixels and stores them
    assert not fresh.compute(pairs, workers=1, progress=False).failed


def test_resume_after_partial_run_computes_only_what_is_missing(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=3, size=32)
    store = FlowStore(cache, "farneback")
    pairs = _pairs(cache)
    store.compute(pairs[:2], workers=1, progress=False)  # an interrupted run: two fields done
    truncated = store.path(*pairs[2])
    truncated.parent.mkdir(parents=True, exist_ok=True)
    truncated.write_bytes(b"\x93NUMPY")  # a half-written file (as if not written atomically)
    report = store.compute(pairs, workers=1, progress=False)
    assert sorted(report.already_done) == pairs[:2]
    assert sorted(report.done) == pairs[2:]
    assert all(store.complete(*p) for p in pairs)


def test_parallel_workers_write_the_same_fields(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=3, size=32)
    serial = FlowStore(cache, "farneback", root=tmp_path / "serial")
    parallel = FlowStore(cache, "farneback", root=tmp_path / "parallel")
    pairs = _pairs(cache)
    serial.compute(pairs, workers=1, progress=False)
    report = parallel.compute(pairs, workers=2, progress=False)
    assert sorted(report.done) == pairs and not report.failed
    for p in pairs:
        np.testing.assert_array_equal(serial.read(*p), parallel.read(*p))


def test_failed_clip_is_reported_and_the_others_are_stored(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=2, size=32)
    store = FlowStore(cache, "farneback")
    good = _pairs(cache)
    bad = (cache.entries[0].clip_id, 0, 10_000)
    report = store.compute(good + [bad], workers=1, progress=False)
    assert len(report.failed) == 1 and cache.entries[0].clip_id in report.failed[0]
    assert all(store.complete(*p) for p in good if p[0] != bad[0])


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_flow_dataset_reads_cached_fields(tmp_path, method):
    cache = make_cache(tmp_path / "cache", n_clips=2, size=32)
    samples, _ = build_samples([cache], get_protocol("casme2-5"))
    ds = KeyframeDataset(samples, [cache.root], image_size=32, input_kind="flow", flow=method, flow_workers=1)
    batch, _, _ = collate([ds[i] for i in range(len(ds))])
    assert batch.flow.dtype == torch.float16 and batch.flow.shape == (len(ds), 2, 2, 32, 32)
    store = FlowStore(cache, method)
    onset, apex, offset = ds.keyframes(0)
    np.testing.assert_array_equal(batch.flow[0, 0].numpy(), store.read(samples[0].clip_id, onset, apex))
    np.testing.assert_array_equal(batch.flow[0, 1].numpy(), store.read(samples[0].clip_id, offset, apex))
    x = ds.transform(batch, "cpu")
    assert x.rise_flow.shape == (len(ds), 2, 32, 32) and x.onset.shape == (len(ds), 3, 32, 32)
    assert os.path.isdir(cache.root / "flow")


# --- one writer per flow folder; what a killed run leaves ------------------------------------------
def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _stderr_until(capfd, text: str, timeout: float = 30.0) -> str:
    """What the process wrote to stderr until ``text`` appeared in it (or ``timeout`` s)."""
    seen: list[str] = []

    def found() -> bool:
        seen.append(capfd.readouterr().err)
        return text in "".join(seen)

    wait_until(found, timeout=timeout)
    return "".join(seen)


def test_a_run_removes_temporary_files_a_killed_run_left(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=2, size=32)
    store = FlowStore(cache, "farneback")
    pairs = _pairs(cache)
    store.compute(pairs[:1], workers=1, progress=False)
    clip_folder = store.path(*pairs[0]).parent
    leftovers = [
        clip_folder / ".00002-00010-0123456789ab.k3j_x9.tmp.npy",  # as atomic_path names them
        store.folder / ".settings.q1w2e3.tmp.json",
    ]
    for path in leftovers:
        path.write_bytes(b"half a file")
    report = store.compute(pairs, workers=1, progress=False)
    assert sorted(report.done) == pairs[1:] and report.already_done == pairs[:1]
    assert not any(path.exists() for path in leftovers)
    assert not (store.folder / run_lock.LOCK_NAME).exists()  # the lock is released


HOLDER = """
import json, sys
from gamdss.data.flow_cache import FlowReport, FlowStore
from gamdss.util import run_lock
store = FlowStore(sys.argv[1], "farneback")
with run_lock.hold(store.folder, "the other run"):
    print("held", flush=True)
    sys.stdin.readline()
    pairs = [tuple(p) for p in json.loads(sys.argv[2])]
    store._compute_locked(pairs, 1, False, FlowReport(folder=store.folder))
"""


def test_a_second_run_waits_for_the_folder_and_computes_only_what_is_left(tmp_path, capfd):
    cache = make_cache(tmp_path / "cache", n_clips=3, size=32)
    store = FlowStore(cache, "farneback")
    pairs = _pairs(cache)
    env = python_env()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(cache.root), json.dumps(pairs[:2])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    result: dict[str, FlowReport] = {}
    waiter = threading.Thread(target=lambda: result.setdefault("r", store.compute(pairs, workers=1, progress=False)))
    try:
        ready, _, _ = select.select([holder.stdout], [], [], 120)
        assert ready and holder.stdout.readline().strip() == "held"
        waiter.start()
        err = _stderr_until(capfd, "waiting")
        time.sleep(0.5)
        assert waiter.is_alive() and store.missing(pairs) == pairs  # it waits and writes nothing
        holder.stdin.write("go\n")  # the holder writes two of the fields, then ends
        holder.stdin.flush()
        assert holder.wait(timeout=120) == 0
        waiter.join(timeout=120)
        assert not waiter.is_alive()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=60)
        holder.stdin.close()
        holder.stdout.close()
    report = result["r"]
    assert sorted(report.already_done) == pairs[:2] and sorted(report.done) == pairs[2:]
    assert all(store.complete(*p) for p in pairs)
    lines = [line for line in (err + capfd.readouterr().err).splitlines() if "waiting" in line]
    assert len(lines) == 1, lines  # said once
    assert f"{store.folder} is being written by the other run (pid {holder.pid} on " in lines[0]


def test_a_lock_this_process_holds_outside_compute_fails_at_once(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=1, size=32)
    store = FlowStore(cache, "farneback")
    outcome: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            store.compute(_pairs(cache), workers=1, progress=False)
            outcome["error"] = None
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    caller = threading.Thread(target=run)
    with run_lock.hold(store.folder, "a script"):
        caller.start()
        caller.join(timeout=60)
        still_waiting = caller.is_alive()
    caller.join(timeout=60)  # released: a caller that waited ends now
    assert not still_waiting, "compute waited for a lock its own process holds outside compute"
    assert isinstance(outcome["error"], RuntimeError) and "locked by this process" in str(outcome["error"])
    assert store.missing(_pairs(cache)) == _pairs(cache)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_kill_9_of_a_flow_run_kills_its_workers_and_a_rerun_completes(tmp_path):
    cache = make_cache(tmp_path / "cache", n_clips=12, size=96)
    store = FlowStore(cache, "tvl1")
    pairs = _pairs(cache)
    script = (
        "import sys; from gamdss.data.flow_cache import FlowStore; "
        "from gamdss.data.cache import FrameCache; "
        "s = FlowStore(sys.argv[1], 'tvl1'); "
        "from gamdss.data.flow_cache import flow_pairs; "
        "c = FrameCache(sys.argv[1]); "
        "p = [(e.clip_id, a, b) for e in c.entries for a, b in flow_pairs((e.onset_index, e.apex_index, e.offset_index))]; "
        "s.compute(p, workers=2, progress=False)"
    )
    env = python_env()
    proc = subprocess.Popen([sys.executable, "-c", script, str(cache.root)], env=env, start_new_session=True)
    known: dict[int, int] = {}
    try:
        assert wait_until(lambda: bool(known.update(children(proc.pid)) or any(store.folder.rglob("*.npy")))), (
            "no field was written"
        )
        known.update(children(proc.pid))
        assert proc.poll() is None, "the run ended before it could be killed; make the fixture slower"
        workers = [pid for pid in alive(known) if b"spawn_main" in _cmdline(pid)]  # not the resource tracker
        assert len(workers) == 2, f"expected the 2 pool workers among the children, got {known}"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert wait_until(lambda: not alive(known), timeout=30), f"workers outlived the killed run: {alive(known)}"
    finally:
        for pid in alive(known):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    left = store.missing(pairs)
    assert left, "the killed run finished everything; make the fixture slower"
    report = store.compute(pairs, workers=1, progress=False)
    assert sorted(report.done) == sorted(left) and not report.failed
    assert all(store.complete(*p) for p in pairs)
    assert not list(store.folder.rglob("*.tmp.*")) and not (store.folder / run_lock.LOCK_NAME).exists()
