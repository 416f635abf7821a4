"""The frame cache's reading side on damaged caches, and the mode of atomically written files."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from gamdss.data.cache import CacheEntry, CacheWriter, FrameCache, write_clip_file
from gamdss.util import atomic


def _cache(root):
    frames = np.arange(3 * 4 * 4 * 3, dtype=np.uint8).reshape(3, 4, 4, 3)
    rel, digest = write_clip_file(root, "sub01/EP01", frames)
    with CacheWriter(root, {"dataset": "casme2", "size": [4, 4]}) as writer:
        writer.add(
            CacheEntry(
                "sub01/EP01",
                "casme2",
                "sub01",
                "EP01",
                "happiness",
                ["12"],
                200.0,
                2,
                [10, 11, 12],
                10,
                11,
                12,
                rel,
                [3, 4, 4, 3],
                digest,
                ["a", "b", "c"],
                None,
                None,
                "full-frame",
            )
        )
    return frames


def test_round_trip_and_digest(tmp_path):
    frames = _cache(tmp_path)
    cache = FrameCache(tmp_path)
    assert np.array_equal(cache.frames("sub01/EP01"), frames) and cache.verify("sub01/EP01")
    assert cache["sub01/EP01"].apex_index == 1


def test_a_truncated_clip_file_names_the_clip(tmp_path):
    _cache(tmp_path)
    path = tmp_path / FrameCache(tmp_path)["sub01/EP01"].file
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"clip sub01/EP01: .* truncated or not a \.npy file"):
        FrameCache(tmp_path).frames("sub01/EP01")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda m: [1, 2], "a JSON list, expected an object"),
        (lambda m: {**m, "clips": {}}, "'clips' list"),
        (
            lambda m: {**m, "clips": [{k: v for k, v in m["clips"][0].items() if k != "onset"}]},
            r"clip 0 \(sub01/EP01\) is not a valid entry",
        ),
        (
            lambda m: {**m, "clips": [{**m["clips"][0], "onset": 1}]},
            r"clip 0 \(sub01/EP01\) is not a valid entry \(onset 1 is not one of its frame numbers \(10\.\.12, 3",
        ),
        (
            lambda m: {**m, "clips": [{**m["clips"][0], "offset": 13}]},
            r"\(sub01/EP01\) is not a valid entry \(offset 13 is not one of its frame numbers",
        ),
        (
            lambda m: {**m, "clips": [{**m["clips"][0], "shape": [4, 4, 4, 3]}]},
            r"\(sub01/EP01\) is not a valid entry \(shape \[4, 4, 4, 3\] is not \[T, H, W, 3\] with T = its 3",
        ),
        (
            lambda m: {**m, "clips": [{**m["clips"][0], "shape": [3, 4, 4]}]},
            r"\(sub01/EP01\) is not a valid entry \(shape \[3, 4, 4\] is not",
        ),
        (
            lambda m: {**m, "clips": [{**m["clips"][0], "fps": 0}]},
            r"\(sub01/EP01\) is not a valid entry \(fps 0 is not a positive frame rate",
        ),
        (
            lambda m: {**m, "clips": [{**m["clips"][0], "fps": -200.0}]},
            r"\(sub01/EP01\) is not a valid entry \(fps -200.0 is not a positive frame rate",
        ),
        (
            lambda m: {**m, "clips": [{**m["clips"][0], "frame_numbers": [10, 12, 11]}]},
            r"\(sub01/EP01\) is not a valid entry \(its frame numbers do not increase",
        ),
        (
            lambda m: {**m, "clips": [{**m["clips"][0], "frame_numbers": [10, 11, 11], "offset": 11}]},
            r"\(sub01/EP01\) is not a valid entry \(its frame numbers do not increase",
        ),
        (
            lambda m: {**m, "clips": [m["clips"][0], m["clips"][0]]},
            r"clip 1 \(sub01/EP01\) is listed twice",
        ),
    ],
)
def test_a_damaged_manifest_is_named(tmp_path, damage, message):
    _cache(tmp_path)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(damage(json.loads(manifest.read_text()))))
    with pytest.raises(ValueError, match=message):
        FrameCache(tmp_path)


def test_atomic_files_get_the_umask_mode_and_keep_an_existing_mode(tmp_path):
    old = os.umask(0o027)
    try:
        new_file = atomic.write_text(tmp_path / "a.txt", "x")
        assert stat.S_IMODE(new_file.stat().st_mode) == 0o640
        existing = tmp_path / "b.txt"
        existing.write_text("old")
        existing.chmod(0o604)
        atomic.write_text(existing, "new")
        assert stat.S_IMODE(existing.stat().st_mode) == 0o604 and existing.read_text() == "new"
    finally:
        os.umask(old)


def test_a_manifest_that_is_not_utf8_is_named(tmp_path):
    _cache(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=rf"^{str(tmp_path / 'manifest.json')}: not valid JSON"):
        FrameCache(tmp_path)


def _entry_for(root, clip_id):
    frames = np.full((3, 4, 4, 3), len(clip_id), dtype=np.uint8)
    rel, digest = write_clip_file(root, clip_id, frames)
    return CacheEntry(
        clip_id, "casme2", clip_id.split("/")[0], clip_id.split("/")[1], "happiness", [], 200.0, 2,
        [10, 11, 12], 10, 11, 12, rel, [3, 4, 4, 3], digest, ["a", "b", "c"], None, None, "full-frame",
    )  # fmt: skip


def test_the_manifest_lists_clips_in_clip_id_order_whatever_order_they_finished(tmp_path):
    """Workers finish clips in any order and a run may be resumed: the same clips must give
    the same manifest (and so the same training order for a seed)."""
    ids = ["sub02/EP01", "sub01/EP03", "sub10/EP00", "sub01/EP02"]
    manifests = []
    for k, order in enumerate((ids, ids[::-1], [ids[2], ids[0], ids[3], ids[1]])):
        root = tmp_path / f"c{k}"
        entries = {c: _entry_for(root, c) for c in ids}
        with CacheWriter(root, {"dataset": "casme2", "size": [4, 4]}) as writer:
            for c in order:
                writer.add(entries[c])
        manifests.append([e["clip_id"] for e in json.loads((root / "manifest.json").read_text())["clips"]])
        assert [e.clip_id for e in FrameCache(root).entries] == sorted(ids)
    assert manifests == [sorted(ids)] * 3
