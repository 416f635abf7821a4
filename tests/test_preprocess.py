"""Face preprocessing into the frame cache (gamdss.data.preprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gamdss.data.preprocess as preprocess_module
from face_frames import blank_frame, face_frame, face_location, write_frames
from gamdss.data.cache import FrameCache
from gamdss.data.preprocess import PreprocessConfig, crop_resize, preprocess_clips
from gamdss.data.records import AnnotationRecord, ClipRecord, Correction

SIZE = (160, 160)
OUT = 64


def make_clip(
    root: Path,
    name: str,
    frames: list[np.ndarray],
    *,
    first: int = 40,
    keys=(0, 1, 2),
    grey: bool = False,
    corrections=(),
) -> ClipRecord:
    """A clip over PNG files (lossless: exact pixel comparisons) numbered from ``first``."""
    paths = write_frames(root / "frames" / name, frames, first=first, pattern="img{n}.png", grey=grey)
    numbers = tuple(range(first, first + len(frames)))
    onset, apex, offset = (numbers[k] for k in keys)
    ann = AnnotationRecord(
        dataset="synthetic",
        subject="sub01",
        clip_id=f"sub01/{name}",
        video=name,
        onset=onset,
        apex=apex,
        offset=offset,
        emotion="surprise",
        aus=("1", "L2"),
        fps=200.0,
        row=7,
        meta={"ethnicity": "x"},
        corrections=tuple(corrections),
    )
    return ClipRecord(ann, tuple(paths), numbers)


def face_clip(root: Path, name: str, n: int = 3, seed: int = 0, **kw) -> ClipRecord:
    return make_clip(
        root, name, [face_frame(seed + k, SIZE) for k in range(n)], keys=kw.pop("keys", (0, n // 2, n - 1)), **kw
    )


def expected_frames(entry, grey: bool = False) -> np.ndarray:
    """Crop + resize of the source files computed here, with Pillow, from the recorded box."""
    out = []
    for src in entry.sources:
        img = Image.open(src).convert("RGB")
        if entry.box is not None:
            img = img.crop(tuple(entry.box))
        out.append(np.asarray(img.resize((entry.shape[2], entry.shape[1]), Image.Resampling.BILINEAR)))
    return np.stack(out)


def file_stamp(cache: FrameCache, clip_id: str):
    st = (cache.root / cache[clip_id].file).stat()
    return st.st_ino, st.st_mtime_ns


def test_round_trip_exact_with_metadata(tmp_path):
    fix = Correction(field="apex", original=99, corrected=41, reason="typo", source="synthetic-corrections v1")
    clips = [face_clip(tmp_path, "EP01", n=4, corrections=[fix]), face_clip(tmp_path, "EP02", n=3, seed=10)]
    report = preprocess_clips(clips, tmp_path / "cache", dataset="synthetic", size=OUT, workers=1, progress=False)
    assert report.done == ["sub01/EP01", "sub01/EP02"] and not report.failed and not report.already_done

    cache = FrameCache(tmp_path / "cache")
    assert cache.header["size"] == [OUT, OUT] and cache.header["box_method"] == "median"
    assert cache.header["detector"] == "facenet-pytorch MTCNN 2.5.3"
    e = cache["sub01/EP01"]
    assert e.shape == [4, OUT, OUT, 3]
    assert e.frame_numbers == [40, 41, 42, 43] and (e.onset, e.apex, e.offset) == (40, 42, 43)
    assert (e.onset_index, e.apex_index, e.offset_index) == (0, 2, 3)
    assert e.sources == [str(p) for p in clips[0].frame_paths]
    assert e.aus == ["1", "L2"] and e.emotion == "surprise" and e.meta == {"ethnicity": "x"} and e.fps == 200.0
    assert e.corrections == [
        {"field": "apex", "original": 99, "corrected": 41, "reason": "typo", "source": "synthetic-corrections v1"}
    ]
    assert e.box_method == "median" and e.face_prob > 0.99
    # The square box holds the known face location (margin 0.2 of the face on each side).
    x0, y0, x1, y1 = e.box
    fx0, fy0, fx1, fy1 = face_location(SIZE)
    assert x1 - x0 == y1 - y0 and x0 < fx0 < fx1 < x1 and y0 < fy0 < fy1 < y1
    assert 1.3 < (x1 - x0) / max(fx1 - fx0, fy1 - fy0) < 1.5
    for entry in cache:
        frames = cache.frames(entry)
        assert frames.dtype == np.uint8
        np.testing.assert_array_equal(frames, expected_frames(entry))
        assert cache.verify(entry)
    # The config used is saved next to the cache and loads back.
    assert PreprocessConfig.from_yaml(tmp_path / "cache" / "preprocess.yaml").size == (OUT, OUT)


def test_crop_without_resize_is_the_exact_pixels():
    # Independent of Pillow's filter: a crop resized to its own size is a plain slice.
    img = face_frame(3, SIZE)
    got = crop_resize(Image.fromarray(img), (30, 12, 90, 52), (40, 60))
    np.testing.assert_array_equal(got, img[12:52, 30:90])
    np.testing.assert_array_equal(crop_resize(Image.fromarray(img), None, SIZE), img)


def test_no_face_fails_that_clip_only_then_full_frame_fallback(tmp_path):
    clips = [face_clip(tmp_path, "face"), make_clip(tmp_path, "empty", [blank_frame(k, SIZE) for k in range(3)])]
    out = tmp_path / "cache"
    report = preprocess_clips(clips, out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert report.done == ["sub01/face"]
    assert [f.clip_id for f in report.failed] == ["sub01/empty"]
    reason = report.failed[0].reason
    # the clip is named by the failure (FAILED <clip>: <reason>), not again in its reason
    assert reason.startswith("NoFaceError: no face found") and "sub01/empty" not in reason and "img42.png" in reason
    assert "sub01/empty" not in FrameCache(out)

    stamp = file_stamp(FrameCache(out), "sub01/face")
    again = preprocess_clips(
        clips, out, dataset="synthetic", size=OUT, workers=1, progress=False, full_frame_fallback=True
    )
    assert again.already_done == ["sub01/face"] and again.done == ["sub01/empty"]
    assert again.full_frame == ["sub01/empty"] and not again.failed
    cache = FrameCache(out)
    assert file_stamp(cache, "sub01/face") == stamp
    e = cache["sub01/empty"]
    assert e.box is None and e.box_method == "full-frame" and e.face_prob is None
    np.testing.assert_array_equal(cache.frames(e), expected_frames(e))


def test_interrupted_run_resumes_without_redoing_finished_clips(tmp_path, monkeypatch):
    clips = [face_clip(tmp_path, f"EP0{k}", n=3, seed=10 * k) for k in range(4)]
    out = tmp_path / "cache"
    real = preprocess_module.process_clip
    calls = []

    def interrupted_on_third(clip, *args, **kwargs):
        calls.append(clip.clip_id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during the third clip
        return real(clip, *args, **kwargs)

    monkeypatch.setattr(preprocess_module, "process_clip", interrupted_on_third)
    with pytest.raises(KeyboardInterrupt):
        preprocess_clips(clips, out, dataset="synthetic", size=OUT, workers=1, progress=False)
    monkeypatch.setattr(preprocess_module, "process_clip", real)

    cache = FrameCache(out)
    assert [e.clip_id for e in cache] == ["sub01/EP00", "sub01/EP01"]
    stamps = {c: file_stamp(cache, c) for c in ("sub01/EP00", "sub01/EP01")}
    created = cache.header["created"]

    report = preprocess_clips(clips, out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert report.already_done == ["sub01/EP00", "sub01/EP01"]
    assert report.done == ["sub01/EP02", "sub01/EP03"]
    cache = FrameCache(out)
    assert [e.clip_id for e in cache] == [c.clip_id for c in clips]
    assert {c: file_stamp(cache, c) for c in stamps} == stamps
    assert cache.header["created"] == created
    for entry in cache:
        assert cache.verify(entry)


def test_other_settings_refuse_unless_overwrite(tmp_path):
    clips = [face_clip(tmp_path, "EP01")]
    out = tmp_path / "cache"
    preprocess_clips(clips, out, dataset="synthetic", size=OUT, workers=1, progress=False)
    with pytest.raises(ValueError, match=r"size: \[64, 64\] -> \[48, 48\]"):
        preprocess_clips(clips, out, dataset="synthetic", size=48, workers=1, progress=False)
    with pytest.raises(ValueError, match="box_method"):
        preprocess_clips(clips, out, dataset="synthetic", size=OUT, box_method="onset", workers=1, progress=False)
    report = preprocess_clips(clips, out, dataset="synthetic", size=48, workers=1, progress=False, overwrite=True)
    assert report.done == ["sub01/EP01"]
    cache = FrameCache(out)
    assert cache.header["size"] == [48, 48] and cache["sub01/EP01"].shape == [3, 48, 48, 3]
    np.testing.assert_array_equal(cache.frames("sub01/EP01"), expected_frames(cache["sub01/EP01"]))


def test_refuses_a_non_empty_folder_that_is_not_a_cache(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        preprocess_clips([face_clip(tmp_path, "EP01")], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_grey_source_images_become_three_equal_channels(tmp_path):
    clip = face_clip(tmp_path, "grey", grey=True)
    assert Image.open(clip.frame_paths[0]).mode == "L"
    report = preprocess_clips([clip], tmp_path / "cache", dataset="synthetic", size=OUT, workers=1, progress=False)
    assert report.done == ["sub01/grey"]
    cache = FrameCache(tmp_path / "cache")
    frames = cache.frames("sub01/grey")
    assert frames.shape == (3, OUT, OUT, 3)
    np.testing.assert_array_equal(frames[..., 0], frames[..., 1])
    np.testing.assert_array_equal(frames[..., 0], frames[..., 2])
    np.testing.assert_array_equal(frames, expected_frames(cache["sub01/grey"]))


def test_bad_frames_are_reported_per_clip(tmp_path):
    good = face_clip(tmp_path, "good")
    sizes = make_clip(tmp_path, "sizes", [face_frame(0, SIZE), face_frame(1, (150, 160)), face_frame(2, SIZE)])
    broken = face_clip(tmp_path, "broken")
    broken.frame_paths[1].write_bytes(b"not an image")
    report = preprocess_clips(
        [good, sizes, broken], tmp_path / "cache", dataset="synthetic", size=OUT, workers=1, progress=False
    )
    assert report.done == ["sub01/good"]
    reasons = {f.clip_id: f.reason for f in report.failed}
    assert "img41.png is 160x150 pixels" in reasons["sub01/sizes"] and "one size" in reasons["sub01/sizes"]
    assert "cannot read image" in reasons["sub01/broken"] and "img41.png" in reasons["sub01/broken"]
    assert [e.clip_id for e in FrameCache(tmp_path / "cache")] == ["sub01/good"]


def test_changed_source_frames_are_not_silently_reused(tmp_path):
    out = tmp_path / "cache"
    preprocess_clips([face_clip(tmp_path, "EP01", n=3)], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    longer = face_clip(tmp_path, "EP01", n=4)
    report = preprocess_clips([longer], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert not report.done and "other source frames" in report.failed[0].reason
    redone = preprocess_clips([longer], out, dataset="synthetic", size=OUT, workers=1, progress=False, overwrite=True)
    assert redone.done == ["sub01/EP01"] and FrameCache(out)["sub01/EP01"].shape[0] == 4


def test_a_changed_label_rewrites_the_entry_without_redoing_the_pixels(tmp_path):
    import dataclasses

    out = tmp_path / "cache"
    clip = face_clip(tmp_path, "EP01", n=3)
    preprocess_clips([clip], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    stamp = file_stamp(FrameCache(out), "sub01/EP01")
    relabelled = dataclasses.replace(clip, annotation=dataclasses.replace(clip.annotation, emotion="disgust"))
    report = preprocess_clips([relabelled], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert not report.done and not report.already_done
    assert [u.clip_id for u in report.updated] == ["sub01/EP01"] and "emotion" in report.updated[0].reason
    cache = FrameCache(out)
    assert cache["sub01/EP01"].emotion == "disgust" and file_stamp(cache, "sub01/EP01") == stamp


def test_changed_keyframes_redo_the_clip(tmp_path):
    out = tmp_path / "cache"
    preprocess_clips(
        [face_clip(tmp_path, "EP01", n=4, keys=(0, 1, 3))],
        out,
        dataset="synthetic",
        size=OUT,
        workers=1,
        progress=False,
    )
    moved = face_clip(tmp_path, "EP01", n=4, keys=(0, 2, 3))
    report = preprocess_clips([moved], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert report.done == ["sub01/EP01"] and "apex" in report.updated[0].reason
    entry = FrameCache(out)["sub01/EP01"]
    assert entry.apex == moved.apex and entry.apex_index == 2
    again = preprocess_clips([moved], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert again.already_done == ["sub01/EP01"] and not again.updated


def test_a_repaired_source_frame_replaced_by_the_user_redoes_the_clip(tmp_path):
    """A frame stood in for by its neighbour (repeat) and then restored is read again, not kept."""
    out = tmp_path / "cache"
    clip = face_clip(tmp_path, "EP01", n=4)
    damaged = Path(clip.frame_paths[2])
    good = damaged.read_bytes()
    damaged.write_bytes(good[: len(good) // 3])
    first = preprocess_clips(
        [clip], out, dataset="synthetic", size=OUT, workers=1, damaged_frames="repeat", progress=False
    )
    assert first.repaired and FrameCache(out)["sub01/EP01"].repaired_frames

    damaged.write_bytes(good)
    report = preprocess_clips(
        [clip], out, dataset="synthetic", size=OUT, workers=1, damaged_frames="repeat", progress=False
    )
    assert report.done == ["sub01/EP01"] and not report.already_done
    assert "source frames changed" in report.updated[0].reason and damaged.name in report.updated[0].reason
    cache = FrameCache(out)
    entry = cache["sub01/EP01"]
    assert not entry.repaired_frames
    np.testing.assert_array_equal(cache.frames(entry), expected_frames(entry))  # the restored frame's own pixels
    again = preprocess_clips([clip], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert again.already_done == ["sub01/EP01"] and not again.updated


def test_a_failed_redo_removes_the_entry_it_no_longer_matches(tmp_path):
    """Keyframes corrected onto a frame without a face: the redo fails, and the old entry (old
    onset) does not stay in the cache for training to read."""
    import dataclasses

    frames = [blank_frame(0, SIZE)] + [face_frame(k, SIZE) for k in range(1, 4)]
    clip = make_clip(tmp_path, "EP01", frames, keys=(1, 2, 3))
    other = face_clip(tmp_path, "EP02", n=3)
    out = tmp_path / "cache"
    kw = dict(dataset="synthetic", size=OUT, workers=1, box_method="onset", progress=False)
    preprocess_clips([clip, other], out, **kw)
    assert FrameCache(out)["sub01/EP01"].onset == 41

    corrected = dataclasses.replace(clip, annotation=dataclasses.replace(clip.annotation, onset=40))
    report = preprocess_clips([corrected, other], out, **kw)
    assert [f.clip_id for f in report.failed] == ["sub01/EP01"]
    assert "earlier cache entry was removed" in report.failed[0].reason
    cache = FrameCache(out)
    assert "sub01/EP01" not in cache and "sub01/EP02" in cache
    assert "nothing new was cached" not in report.failure_summary()  # EP02 is cached


def test_sources_touched_or_copied_without_their_times_are_not_redone(tmp_path):
    """Other stamps but the same bytes (a `cp` without -p, a backup restored): kept, stamps updated."""
    import os

    out = tmp_path / "cache"
    clip = face_clip(tmp_path, "EP01", n=3)
    preprocess_clips([clip], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    before = FrameCache(out)["sub01/EP01"]
    os.utime(clip.frame_paths[1], ns=(1, 1))
    report = preprocess_clips([clip], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert report.already_done == ["sub01/EP01"] and not report.done and not report.updated
    after = FrameCache(out)["sub01/EP01"]
    assert after.source_stamps[1][1] == 1 and after.source_sha256 == before.source_sha256
    assert after.sha256 == before.sha256


def test_a_clip_redone_with_overwrite_keeps_its_entry_when_the_redo_fails(tmp_path, monkeypatch):
    """Only an entry that no longer matches is dropped; a passing failure keeps a good one."""
    out = tmp_path / "cache"
    clips = [face_clip(tmp_path, "EP01", n=3), face_clip(tmp_path, "EP02", n=3, seed=5)]
    preprocess_clips(clips, out, dataset="synthetic", size=OUT, workers=1, progress=False)

    real = preprocess_module.process_clip

    def flaky(clip, *a, **kw):
        if clip.clip_id == "sub01/EP01":
            raise RuntimeError("CUDA out of memory (transient)")
        return real(clip, *a, **kw)

    monkeypatch.setattr(preprocess_module, "process_clip", flaky)
    report = preprocess_clips(clips, out, dataset="synthetic", size=OUT, workers=1, progress=False, overwrite=True)
    assert [f.clip_id for f in report.failed] == ["sub01/EP01"] and "removed" not in report.failed[0].reason
    assert "sub01/EP01" in FrameCache(out) and FrameCache(out).verify("sub01/EP01")


def test_a_failed_overwrite_of_a_changed_clip_removes_its_old_entry(tmp_path):
    """--overwrite redoes every clip; one whose keyframes changed and whose redo fails must not
    keep its old onset in the cache."""
    import dataclasses

    frames = [blank_frame(0, SIZE)] + [face_frame(k, SIZE) for k in range(1, 4)]
    clip = make_clip(tmp_path, "EP01", frames, keys=(1, 2, 3))
    out = tmp_path / "cache"
    kw = dict(dataset="synthetic", size=OUT, workers=1, box_method="onset", progress=False)
    preprocess_clips([clip], out, **kw)
    corrected = dataclasses.replace(clip, annotation=dataclasses.replace(clip.annotation, onset=40))
    report = preprocess_clips([corrected], out, overwrite=True, **kw)
    assert [f.clip_id for f in report.failed] == ["sub01/EP01"] and "removed" in report.failed[0].reason
    assert "sub01/EP01" not in FrameCache(out)


def test_a_failed_redo_of_a_clip_whose_file_is_gone_removes_its_entry(tmp_path):
    import os

    clip = face_clip(tmp_path, "EP01", n=3)
    out = tmp_path / "cache"
    preprocess_clips([clip], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    (out / FrameCache(out)["sub01/EP01"].file).unlink()
    os.unlink(clip.frame_paths[1])
    report = preprocess_clips([clip], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert [f.clip_id for f in report.failed] == ["sub01/EP01"] and "removed" in report.failed[0].reason
    assert "sub01/EP01" not in FrameCache(out)


def test_a_relabelled_clip_counts_as_cached_in_the_failure_summary(tmp_path):
    import dataclasses

    frames = [blank_frame(0, SIZE)] + [face_frame(k, SIZE) for k in range(1, 4)]
    bad = make_clip(tmp_path, "EP02", frames, keys=(0, 1, 3))  # no face on its onset: fails
    good = face_clip(tmp_path, "EP01", n=3)
    out = tmp_path / "cache"
    kw = dict(dataset="synthetic", size=OUT, workers=1, box_method="onset", progress=False)
    preprocess_clips([good], out, **kw)
    relabelled = dataclasses.replace(good, annotation=dataclasses.replace(good.annotation, emotion="disgust"))
    report = preprocess_clips([relabelled, bad], out, **kw)
    assert [f.clip_id for f in report.failed] == ["sub01/EP02"]
    assert "1 of 2 clips failed" in report.failure_summary() and "the others are cached" in report.failure_summary()


def test_a_manifest_with_sources_that_do_not_match_its_frames_is_named(tmp_path):
    out = tmp_path / "cache"
    preprocess_clips([face_clip(tmp_path, "EP01", n=3)], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    manifest = out / "manifest.json"
    data = json.loads(manifest.read_text())
    data["clips"][0]["sources"].pop()
    data["clips"][0]["source_stamps"].pop()
    manifest.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"clip 0 \(sub01/EP01\) is not a valid entry \(2 sources for 3 frame numbers"):
        FrameCache(out)


def test_a_cache_made_before_source_stamps_takes_them_on_resume(tmp_path):
    out = tmp_path / "cache"
    clip = face_clip(tmp_path, "EP01", n=3)
    preprocess_clips([clip], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    manifest = out / "manifest.json"
    data = json.loads(manifest.read_text())
    data["version"] = 2
    stamps = data["clips"][0].pop("source_stamps")
    digest = data["clips"][0].pop("source_sha256")
    manifest.write_text(json.dumps(data))
    assert FrameCache(out)["sub01/EP01"].source_stamps is None
    report = preprocess_clips([clip], out, dataset="synthetic", size=OUT, workers=1, progress=False)
    assert report.already_done == ["sub01/EP01"] and not report.updated
    assert FrameCache(out)["sub01/EP01"].source_stamps == stamps
    assert FrameCache(out)["sub01/EP01"].source_sha256 == digest


def test_two_worker_processes_give_the_same_cache(tmp_path):
    clips = [face_clip(tmp_path, f"EP0{k}", n=3, seed=5 * k) for k in range(3)]
    report = preprocess_clips(clips, tmp_path / "cache", dataset="synthetic", size=OUT, workers=2, progress=False)
    assert report.done == [c.clip_id for c in clips]
    cache = FrameCache(tmp_path / "cache")
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert [c["clip_id"] for c in manifest["clips"]] and len(manifest["clips"]) == 3
    for entry in cache:
        np.testing.assert_array_equal(cache.frames(entry), expected_frames(entry))


def test_bad_arguments_name_the_argument(tmp_path):
    clip = face_clip(tmp_path, "EP01")
    with pytest.raises(ValueError, match="box_method"):
        preprocess_clips([clip], tmp_path / "c", dataset="synthetic", box_method="largest")
    with pytest.raises(ValueError, match="size"):
        preprocess_clips([clip], tmp_path / "c", dataset="synthetic", size=(0, 10))
    with pytest.raises(ValueError, match="repeated: sub01/EP01"):
        preprocess_clips([clip, clip], tmp_path / "c", dataset="synthetic")
