"""Faults of ``gamdss preprocess`` and of reading its cache: processes killed or stopped
(workers die with their parent, SIGTERM writes the manifest), two writers into one cache,
altered clip files (checksums), damaged source frames, failed clips and a full disk.

The process tests start ``gamdss preprocess`` in a subprocess of its own session, find its
workers through ``/proc`` (its child processes), and always kill what is left (by pid and by
the session's process group) with timeouts everywhere, so a failing test never hangs or
leaves processes behind.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_fixtures import _write_xlsx, make_fixture
from face_frames import face_frame, write_frames
from gamdss.cli import main
from gamdss.data.cache import CACHE_VERSION, MANIFEST, ChecksumError, FrameCache
from gamdss.data.preprocess import FAILURES_FILE, PreprocessInterrupted, preprocess_clips
from gamdss.data.records import AnnotationRecord, ClipRecord
from gamdss.util import atomic, run_lock
from process_helpers import TIMEOUT, alive, children, python_env, wait_until

FRAME = (120, 120)
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


# --- a dataset with many clips (slow enough to stop a run in the middle) ----------------------
def many_clip_dataset(root: Path, n_clips: int) -> tuple[Path, list[str]]:
    """A CASME II layout with ``n_clips`` clips of 5 face frames each (frames 10..14)."""
    header = [
        "Subject",
        "Filename",
        None,
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        None,
        "Action Units",
        "Estimated Emotion",
    ]
    rows, ids = [], []
    encoded = {}
    for n in range(10, 15):
        path = root / f"_frame{n}.jpg"
        root.mkdir(parents=True, exist_ok=True)
        Image.fromarray(face_frame(n, FRAME)).save(path, quality=90)
        encoded[n] = path.read_bytes()
        path.unlink()
    for k in range(n_clips):
        subject = 20 + k % 3
        name = f"EP{k:02d}_01"
        rows.append([subject, name, None, 10, 12, 14, None, "4", "disgust"])
        ids.append(f"sub{subject}/{name}")
        folder = root / "CASME2_RAW_selected" / f"sub{subject}" / name
        folder.mkdir(parents=True)
        for n, data in encoded.items():
            (folder / f"img{n}.jpg").write_bytes(data)
    _write_xlsx(root / "CASME2-coding-20190701.xlsx", {"Sheet1": [header] + rows})
    return root, ids


@pytest.fixture(scope="module")
def big_dataset(tmp_path_factory):
    return many_clip_dataset(tmp_path_factory.mktemp("many"), 40)


class Run:
    """``gamdss preprocess`` in a subprocess (own session); stderr is collected as it comes."""

    def __init__(self, *argv):
        env = python_env(HF_HUB_OFFLINE="1")
        code = "import sys; from gamdss.cli import main; sys.exit(main(sys.argv[1:]))"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "preprocess", *map(str, argv)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.err = b""
        self.out = b""
        self.known: dict[int, int] = {}
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stderr, "err"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stdout, "out"), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream, name):
        for chunk in iter(lambda: stream.read1(4096), b""):
            setattr(self, name, getattr(self, name) + chunk)

    def progress(self) -> int:
        """Clips the parent has finished, from its progress bar (0 before the first)."""
        counts = [int(m) for m in re.findall(rb"\|\s*(\d+)/\d+\s*\[", self.err)]
        return max(counts, default=0)

    def wait_for_progress(self, clips: int = 1) -> None:
        ok = wait_until(lambda: self.progress() >= clips or self.proc.poll() is not None)
        assert self.proc.poll() is None, f"the run ended early ({self.proc.returncode}): {self.text()[-2000:]}"
        assert ok, f"no clip finished in {TIMEOUT} s: {self.text()[-2000:]}"

    def children(self) -> dict[int, int]:
        kids = children(self.proc.pid)
        self.known.update(kids)
        return kids

    def finish(self, timeout: float = TIMEOUT) -> int:
        rc = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=10)
        return rc

    def text(self) -> str:
        return self.err.decode("utf-8", "replace")

    def cleanup(self) -> None:
        """Kill whatever this run left: its process group, the run, its known children."""
        for pid in alive(self.known):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


def preprocess_args(root: Path, out: Path, *extra) -> list:
    return [
        root,
        "--dataset",
        "casme2",
        "--out",
        out,
        "--clip-margin",
        "0",
        "--size",
        "32",
        "--detect-frames",
        "0",
        *extra,
    ]


# --- 1. workers die with their parent; SIGTERM flushes ---------------------------------------------
def test_kill_9_of_the_parent_kills_its_workers(big_dataset, tmp_path):
    root, _ = big_dataset
    out = tmp_path / "cache-kill9"
    run = Run(*preprocess_args(root, out, "--workers", "2"))
    try:
        run.wait_for_progress(1)
        workers = run.children()
        assert len(workers) >= 2, f"expected the 2 workers among the children, got {workers}"
        os.kill(run.proc.pid, signal.SIGKILL)
        assert run.finish() == -signal.SIGKILL
        gone = wait_until(lambda: not alive(workers), timeout=30)
        survivors = {
            pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200] for pid in alive(workers)
        }
        assert gone, f"child processes outlived the killed parent: {survivors}"
    finally:
        run.cleanup()


def test_sigterm_writes_the_manifest_and_exits_143_with_one_line(big_dataset, tmp_path):
    root, ids = big_dataset
    out = tmp_path / "cache-term"
    run = Run(*preprocess_args(root, out, "--workers", "2"))
    try:
        run.wait_for_progress(1)
        seen = run.progress()
        workers = run.children()
        run.proc.send_signal(signal.SIGTERM)
        rc = run.finish()
        assert rc == 143, run.text()[-2000:]
        last = run.text().rstrip("\n").split("\n")[-1]
        assert last.startswith("gamdss preprocess: stopped by SIGTERM; ") and "\r" not in last, last
        assert run.text().count("gamdss preprocess:") == 1
        cache = FrameCache(out, verify=True)
        listed = [e.clip_id for e in cache]
        # Every clip the parent had finished when it got the signal is recorded, and intact.
        assert len(listed) >= seen and set(listed) <= set(ids)
        assert f"; {len(listed)} of {len(ids)} clip(s) are in the cache ({len(listed)} finished by this run)" in last
        for entry in cache:
            assert cache.frames(entry).shape == (5, 32, 32, 3)
        assert wait_until(lambda: not alive(workers), timeout=30), f"workers left: {alive(workers)}"
        assert not (out / run_lock.LOCK_NAME).exists()
    finally:
        run.cleanup()


def test_a_resumed_run_removes_temporary_files_of_a_killed_one(tmp_path):
    clips = [jpeg_clip(tmp_path, "EP01")]
    out = tmp_path / "cache"
    preprocess_clips(clips, out, dataset="synthetic", size=32, workers=1, progress=False)
    leftover = out / "clips" / ".EP01-0123456789.abcd.tmp.npy"  # as atomic_path names them
    leftover.write_bytes(b"half a clip")
    report = preprocess_clips(clips, out, dataset="synthetic", size=32, workers=1, progress=False)
    assert report.already_done == ["sub01/EP01"] and not leftover.exists()


# --- 2. one writer per cache ---------------------------------------------------------------------
def test_a_second_writer_of_a_cache_is_refused_naming_the_first(big_dataset, tmp_path, capsys):
    root, ids = big_dataset
    out = tmp_path / "cache-lock"
    first = Run(*preprocess_args(root, out, "--workers", "1"))
    try:
        first.wait_for_progress(1)
        small = make_fixture("casme2", tmp_path / "small", frame_image=lambda n: face_frame(n, FRAME))
        rc = main(["preprocess", *map(str, preprocess_args(small.root, out, "--workers", "1", "--no-progress"))])
        err = capsys.readouterr().err
        assert rc == 1
        line = err.strip()
        assert "\n" not in line and line.startswith(
            f"gamdss preprocess: {out} is in use by gamdss preprocess (pid {first.proc.pid} on "
        ), line
        assert "started 20" in line
        first.proc.send_signal(signal.SIGTERM)
        assert first.finish() == 143
        from_first = [e.clip_id for e in FrameCache(out)]
        assert from_first and set(from_first) <= set(ids)  # the refused run wrote nothing

        # Once the first run has ended, the second one writes into the same cache.
        rc = main(["preprocess", *map(str, preprocess_args(small.root, out, "--workers", "1", "--no-progress"))])
        assert rc == 0, capsys.readouterr().err
        listed = [e.clip_id for e in FrameCache(out)]
        assert listed == sorted(set(from_first) | set(small.clip_ids))  # both runs' clips, in clip id order
    finally:
        first.cleanup()


# --- 3. checksums --------------------------------------------------------------------------------
def jpeg_clip(root: Path, name: str, n: int = 5, seed: int = 0) -> ClipRecord:
    """A clip of ``n`` JPEG face frames numbered from 40 (onset, apex, offset: first, middle, last)."""
    frames = [face_frame(seed + k, (160, 160)) for k in range(n)]
    paths = write_frames(root / "frames" / name, frames, first=40, pattern="img{n}.jpg")
    numbers = tuple(range(40, 40 + n))
    ann = AnnotationRecord(
        dataset="synthetic",
        subject="sub01",
        clip_id=f"sub01/{name}",
        video=name,
        onset=numbers[0],
        apex=numbers[n // 2],
        offset=numbers[-1],
        emotion="surprise",
        aus=("1",),
        fps=200.0,
        row=2,
    )
    return ClipRecord(ann, tuple(paths), numbers)


def alter_one_pixel(path: Path) -> None:
    arr = np.load(path, mmap_mode="r+")
    arr[1, 2, 3, 0] ^= 1
    arr.flush()
    del arr


@pytest.fixture
def two_clip_cache(tmp_path):
    out = tmp_path / "cache"
    clips = [jpeg_clip(tmp_path, "EP00"), jpeg_clip(tmp_path, "EP01", seed=10)]
    report = preprocess_clips(clips, out, dataset="synthetic", size=32, workers=1, progress=False)
    assert report.done == ["sub01/EP00", "sub01/EP01"]
    return out, clips


def test_an_altered_pixel_is_caught_when_the_clip_is_read(two_clip_cache):
    out, _ = two_clip_cache
    cache = FrameCache(out)
    entry = cache["sub01/EP00"]
    assert entry.file_size == (out / entry.file).stat().st_size and entry.file_mtime_ns is not None
    np.asarray(cache.frames("sub01/EP00"))  # an unaltered cache reads fine
    alter_one_pixel(out / entry.file)

    message = rf"^clip sub01/EP00: {re.escape(str(out / entry.file))} does not match its checksum; rerun"
    with pytest.raises(ChecksumError, match=message) as info:
        FrameCache(out).frames("sub01/EP00")
    assert "\n" not in str(info.value) and "restore the file" in str(info.value)
    with pytest.raises(ChecksumError, match=message):
        FrameCache(out, verify=True).frames("sub01/EP00", mmap=False)
    assert FrameCache(out).frames("sub01/EP01").shape == (5, 32, 32, 3)  # the other clip is fine
    assert not FrameCache(out).verify("sub01/EP00") and FrameCache(out).verify("sub01/EP01")
    # Checked once per clip per FrameCache: a reader that already checked the clip does not hash again.
    assert cache.frames("sub01/EP00").shape == (5, 32, 32, 3)


def test_an_old_cache_without_stamps_is_hashed_and_a_resumed_run_redoes_an_altered_clip(two_clip_cache):
    out, clips = two_clip_cache
    manifest = out / MANIFEST
    data = json.loads(manifest.read_text())
    data["version"] = 1
    for e in data["clips"]:
        for key in (
            "file_size",
            "file_mtime_ns",
            "source_modes",
            "mixed_mode_frames",
            "repaired_frames",
            "source_stamps",
            "source_sha256",
        ):
            e.pop(key)
    manifest.write_text(json.dumps(data))
    cache = FrameCache(out)
    assert cache["sub01/EP00"].file_size is None
    assert cache.frames("sub01/EP00").shape == (5, 32, 32, 3)  # full hash: matches

    alter_one_pixel(out / cache["sub01/EP01"].file)
    with pytest.raises(ChecksumError, match="clip sub01/EP01: .* does not match its checksum"):
        FrameCache(out).frames("sub01/EP01")

    report = preprocess_clips(clips, out, dataset="synthetic", size=32, workers=1, progress=False)
    assert report.already_done == ["sub01/EP00"] and report.done == ["sub01/EP01"]
    assert [u.clip_id for u in report.updated] == ["sub01/EP01"] and "checksum" in report.updated[0].reason
    upgraded = json.loads(manifest.read_text())
    assert upgraded["version"] == CACHE_VERSION and all(
        e["file_size"] and e["source_stamps"] for e in upgraded["clips"]
    )
    cache = FrameCache(out, verify=True)
    for entry in cache:
        cache.frames(entry)


def test_reselect_refuses_an_altered_clip(two_clip_cache, tmp_path, capsys):
    out, _ = two_clip_cache
    alter_one_pixel(out / FrameCache(out)["sub01/EP01"].file)
    rc = main(["reselect", str(out), "--out", str(tmp_path / "resel")])
    err = capsys.readouterr().err
    assert rc != 0 and "clip sub01/EP01: " in err and "does not match its checksum" in err


# --- 4. damaged frames ----------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {  # kind -> (damage the file, fragment of the reported problem)
    "truncated": (_truncate, "is truncated (cannot read image"),
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "text": (lambda p: p.write_text("this is not a JPEG\n"), "is not an image (cannot read image"),
    "size": (
        lambda p: Image.fromarray(face_frame(7, (150, 160))).save(p, quality=90),
        "is 160x150 pixels but the clip's other frames are 160x160",
    ),
}


def test_damaged_frames_fail_the_clip_or_are_repaired_and_recorded(tmp_path):
    clips, damaged = [], {}
    for kind, (damage, _) in DAMAGE.items():
        for index in (2, 0):  # a middle frame; the first frame (the onset keyframe)
            clip = jpeg_clip(tmp_path, f"{kind}{index}", seed=3)
            damage(clip.frame_paths[index])
            clips.append(clip)
            damaged[clip.clip_id] = (kind, index)
    report = preprocess_clips(clips, tmp_path / "fail", dataset="synthetic", size=32, workers=1, progress=False)
    assert not report.done
    reasons = {f.clip_id: f.reason for f in report.failed}
    for clip_id, (kind, index) in damaged.items():
        name = f"img{40 + index}.jpg"
        assert "1 damaged frame(s) in " in reasons[clip_id] and f"{name} {DAMAGE[kind][1]}" in reasons[clip_id]
        assert "--damaged-frames repeat" in reasons[clip_id] and "\n" not in reasons[clip_id]

    out = tmp_path / "repeat"
    report = preprocess_clips(
        clips, out, dataset="synthetic", size=32, workers=1, progress=False, damaged_frames="repeat"
    )
    assert not report.failed and sorted(report.done) == sorted(damaged)
    assert sorted(r.clip_id for r in report.repaired) == sorted(damaged)
    cache = FrameCache(out)
    for clip_id, (kind, index) in damaged.items():
        entry = cache[clip_id]
        used = index - 1 if index > 0 else 1  # the nearest good frame, the earlier one on a tie
        assert len(entry.repaired_frames) == 1
        repair = entry.repaired_frames[0]
        assert repair["frame"] == 40 + index and repair["file"] == f"img{40 + index}.jpg"
        assert repair["used_frame"] == 40 + used and repair["used"] == f"img{40 + used}.jpg"
        assert DAMAGE[kind][1] in repair["problem"]
        frames = cache.frames(entry)
        np.testing.assert_array_equal(frames[index], frames[used])
        assert entry.source_modes == {"RGB": 4}  # the frames used as they are


def test_every_damaged_frame_is_named_and_a_clip_without_good_frames_fails(tmp_path):
    two = jpeg_clip(tmp_path, "two")
    _truncate(two.frame_paths[1])
    two.frame_paths[3].write_text("not an image")
    none = jpeg_clip(tmp_path, "none", n=3)
    for path in none.frame_paths:
        path.write_bytes(b"")
    for policy in ("fail", "repeat"):
        report = preprocess_clips(
            [two, none],
            tmp_path / policy,
            dataset="synthetic",
            size=32,
            workers=1,
            progress=False,
            damaged_frames=policy,
        )
        reasons = {f.clip_id: f.reason for f in report.failed}
        expected = "3 damaged frame(s) in " if policy == "fail" else "no frame of the clip can be used; damaged in "
        assert expected in reasons["sub01/none"]
        assert all(f"img{n}.jpg is empty" in reasons["sub01/none"] for n in (40, 41, 42))
    fail = preprocess_clips([two], tmp_path / "fail2", dataset="synthetic", size=32, workers=1, progress=False)
    reason = fail.failed[0].reason
    assert (
        "2 damaged frame(s)" in reason and "img41.jpg is truncated" in reason and "img43.jpg is not an image" in reason
    )
    repeat = FrameCache(tmp_path / "repeat")["sub01/two"]
    assert [(r["file"], r["used"]) for r in repeat.repaired_frames] == [
        ("img41.jpg", "img40.jpg"),
        ("img43.jpg", "img42.jpg"),
    ]


def test_a_grey_frame_among_colour_frames_is_converted_and_recorded(tmp_path):
    clip = jpeg_clip(tmp_path, "mixed")
    Image.open(clip.frame_paths[2]).convert("L").save(clip.frame_paths[2], quality=90)
    out = tmp_path / "cache"
    report = preprocess_clips([clip], out, dataset="synthetic", size=32, workers=1, progress=False)
    assert report.done == ["sub01/mixed"] and not report.repaired
    assert [m.clip_id for m in report.mixed_modes] == ["sub01/mixed"]
    assert "img42.jpg is L among RGB frames" in report.mixed_modes[0].reason
    assert "converted to RGB sub01/mixed: img42.jpg is L" in report.summary()
    entry = FrameCache(out)["sub01/mixed"]
    assert entry.source_modes == {"L": 1, "RGB": 4} and not entry.repaired_frames
    assert entry.mixed_mode_frames == [{"frame": 42, "file": "img42.jpg", "mode": "L"}]
    frames = FrameCache(out).frames(entry)
    np.testing.assert_array_equal(frames[2, ..., 0], frames[2, ..., 1])
    np.testing.assert_array_equal(frames[2, ..., 0], frames[2, ..., 2])


# --- 5. failures are visible; a full disk is named ------------------------------------------------------
@pytest.fixture
def casme2_one_truncated(tmp_path):
    info = make_fixture("casme2", tmp_path / "data", frame_image=lambda n: face_frame(n, FRAME))
    _truncate(info.root / "CASME2_RAW_selected" / "sub01" / "EP02_01f" / "img97.jpg")
    return info


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_face_detector_that_cannot_be_imported_stops_the_run_once(tmp_path, workers):
    """facenet-pytorch is imported when the first detector is made, inside a clip's work: a
    broken installation is not that clip's fault, so the run stops with one line (exit 1)
    instead of failing every clip and writing an empty cache."""
    info = make_fixture("casme2", tmp_path / "data", frame_image=lambda n: face_frame(n, FRAME))
    stub = tmp_path / "stub" / "facenet_pytorch"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('facenet_pytorch is broken (test stub)')\n")
    out = tmp_path / "cache"
    env = python_env()
    env["PYTHONPATH"] = os.pathsep.join([str(stub.parent), env["PYTHONPATH"]])
    args = [str(a) for a in preprocess_args(info.root, out, "--workers", workers, "--no-progress")]
    proc = subprocess.run(
        [sys.executable, "-m", "gamdss.cli", "preprocess", *args], env=env, capture_output=True, text=True, timeout=300
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "FAILED" not in proc.stderr and lines[-1].startswith("gamdss preprocess: failed: ImportError: ")
    assert "facenet_pytorch is broken (test stub)" in lines[-1]
    assert not any((out / "clips").glob("*.npy"))


def test_failed_clips_exit_1_with_the_failures_on_stderr(casme2_one_truncated, tmp_path, capsys):
    info = casme2_one_truncated
    out = tmp_path / "cache"
    args = ["preprocess", *map(str, preprocess_args(info.root, out, "--workers", "1", "--no-progress"))]
    rc = main(args)
    captured = capsys.readouterr()
    assert rc == 1
    total = len(info.clip_ids)
    assert f"{total - 1} clip(s) written, 0 already done, 1 failed" in captured.out and "FAILED" not in captured.out
    err = captured.err.rstrip("\n").split("\n")
    assert err[0].startswith("  FAILED sub01/EP02_01f: FrameReadError: 1 damaged frame(s)")
    assert "img97.jpg is truncated" in err[0] and "clip sub01/EP02_01f:" not in err[0]
    assert err[-1] == (
        f"gamdss preprocess: 1 of {total} clips failed; see the FAILED lines above or "
        f"{out / FAILURES_FILE}; the others are cached, and a new run redoes only what is missing"
    )
    assert (out / FAILURES_FILE).read_text().startswith("sub01/EP02_01f\tFrameReadError: ")

    rc = main([*args, "--damaged-frames", "repeat"])
    captured = capsys.readouterr()
    assert rc == 0 and captured.err == "", captured.err
    assert "repaired sub01/EP02_01f: img97.jpg is truncated" in captured.out and "used img96.jpg" in captured.out
    assert not (out / FAILURES_FILE).exists()
    assert FrameCache(out)["sub01/EP02_01f"].repaired_frames[0]["used"] == "img96.jpg"


def test_a_full_disk_names_the_file_and_stops_the_run(tmp_path, capsys, monkeypatch):
    info = make_fixture("casme2", tmp_path / "data", frame_image=lambda n: face_frame(n, FRAME))
    out = tmp_path / "cache"
    real_save = np.save

    def full_disk_save(file, arr, *args, **kwargs):
        if str(file).endswith(".tmp.npy"):
            Path(file).write_bytes(b"\x93NUMPY partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(file, arr, *args, **kwargs)

    monkeypatch.setattr(np, "save", full_disk_save)
    rc = main(["preprocess", *map(str, preprocess_args(info.root, out, "--workers", "1", "--no-progress"))])
    captured = capsys.readouterr()
    assert rc == 1
    line = captured.err.strip()
    assert "\n" not in line, line  # one line, not one failure per clip
    assert re.match(
        rf"gamdss preprocess: cannot write {re.escape(str(out))}/clips/\S+\.npy: no space left on device; "
        r"free some space and run the same command again",
        line,
    ), line
    assert list((out / "clips").iterdir()) == []  # no partial clip file, no temporary file
    assert len(FrameCache(out)) == 0 and not (out / run_lock.LOCK_NAME).exists()


def test_atomic_writers_name_the_file_on_a_full_disk(tmp_path, monkeypatch):
    target = tmp_path / "a.npy"
    with pytest.raises(atomic.DiskFullError) as info:
        with atomic.atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(info.value) == f"cannot write {target}: no space left on device"
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)  # crosses process pools
    assert list(tmp_path.iterdir()) == []

    # numpy < 2 reports a short write without errno: a full file system makes it a DiskFullError...
    class Stat:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(atomic.os, "statvfs", lambda path: Stat)
    with pytest.raises(
        atomic.DiskFullError,
        match=rf"cannot write {re.escape(str(target))}: no space left on device "
        r"\(40960 bytes free; 1032192 requested and 1027968 written\)",
    ):
        with atomic.atomic_path(target):
            raise OSError("1032192 requested and 1027968 written")
    # ...but not when there is room (then it is some other failure, reported as it came).
    Stat.f_bavail = 10**9
    with pytest.raises(OSError, match="^1032192 requested and 1027968 written$") as info:
        with atomic.atomic_path(target):
            raise OSError("1032192 requested and 1027968 written")
    assert not isinstance(info.value, atomic.DiskFullError)


def test_interrupted_exception_reports_what_is_cached(tmp_path, monkeypatch):
    import gamdss.data.preprocess as preprocess_module

    clips = [jpeg_clip(tmp_path, f"EP0{k}", seed=k) for k in range(3)]
    real = preprocess_module.process_clip

    def stopped_on_second(clip, *args, **kwargs):
        if clip.clip_id == "sub01/EP01":
            os.kill(os.getpid(), signal.SIGTERM)  # handled in the main thread before the call returns
            time.sleep(5)  # never reached in full: the handler raises first
        return real(clip, *args, **kwargs)

    class Unhandled(Exception):
        pass

    def fallback(signum, frame):  # so that a run without its own handler fails this test, not pytest
        raise Unhandled

    monkeypatch.setattr(preprocess_module, "process_clip", stopped_on_second)
    before = signal.signal(signal.SIGTERM, fallback)
    out = tmp_path / "cache"
    try:
        with pytest.raises(PreprocessInterrupted) as info:
            preprocess_clips(clips, out, dataset="synthetic", size=32, workers=1, progress=False)
        assert signal.getsignal(signal.SIGTERM) is fallback  # the run's handler is gone again
    finally:
        signal.signal(signal.SIGTERM, before)
    assert info.value.exit_status == 143 and info.value.report.done == ["sub01/EP00"]
    assert str(info.value) == (
        f"stopped by SIGTERM; 1 of 3 clip(s) are in the cache (1 finished by this run), "
        f"recorded in {out / MANIFEST}; run the same command again to resume"
    )
    assert [e.clip_id for e in FrameCache(out)] == ["sub01/EP00"]
