"""``gamdss preprocess`` end to end on a CASME II fixture with the astronaut's face."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from dataset_fixtures import make_fixture
from face_frames import blank_frame, face_frame
from gamdss.cli import main
from gamdss.commands.preprocess import _size
from gamdss.data.cache import FrameCache

FRAME = (120, 120)


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["preprocess", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def casme2(tmp_path_factory):
    root = tmp_path_factory.mktemp("casme2")
    return make_fixture("casme2", root, frame_image=lambda n: face_frame(n, FRAME))


def test_preprocess_a_dataset_then_resume_then_refuse_other_settings(casme2, tmp_path, capsys):
    cache_dir = tmp_path / "cache"
    common = [
        "--dataset",
        "casme2",
        "--out",
        cache_dir,
        "--workers",
        "1",
        "--clip-margin",
        "0",
        "--no-progress",
        "--detect-frames",
        "0",
    ]
    rc, out, err = run(capsys, casme2.root, *common, "--size", "48")
    assert rc == 0, err
    # The planted bad rows and the clip with a missing frame are reported.
    for row in list(casme2.skipped_rows) + list(casme2.missing_frames.values()):
        assert f"skipped row {row:>5}" in out
    assert f"{len(casme2.clip_ids)} clip(s) written, 0 already done, 0 failed" in out

    cache = FrameCache(cache_dir)
    assert sorted(e.clip_id for e in cache) == sorted(casme2.clip_ids)
    assert cache.header["dataset"] == "casme2" and cache.header["size"] == [48, 48]
    e = cache["sub01/EP02_01f"]
    # --clip-margin 0: frames onset..offset exactly (95..103), keyframes where the file puts them.
    assert e.frame_numbers == list(range(95, 104)) and (e.onset, e.apex, e.offset) == (95, 98, 103)
    assert e.apex_index == 3 and e.shape == [9, 48, 48, 3] and e.box_method == "median" and e.box is not None
    assert e.sources[0].endswith("img95.jpg")
    for entry in cache:
        assert cache.verify(entry)
        assert cache.frames(entry).shape[0] == entry.offset - entry.onset + 1

    rc, out, _ = run(capsys, casme2.root, *common, "--size", "48")
    assert rc == 0 and f"0 clip(s) written, {len(casme2.clip_ids)} already done, 0 failed" in out

    rc, _, err = run(capsys, casme2.root, *common, "--size", "32")
    # bad input (the same command fails until it changes): 2, the one exit rule of every command
    assert rc == 2 and "size: [48, 48] -> [32, 32]" in err and "--overwrite" in err
    assert FrameCache(cache_dir).header["size"] == [48, 48]


def test_every_clip_failing_exits_non_zero_with_reasons(tmp_path, capsys):
    info = make_fixture("casme2", tmp_path / "data", frame_image=lambda n: blank_frame(n, (64, 64)))
    cache_dir = tmp_path / "cache"
    rc, out, err = run(
        capsys,
        info.root,
        "--dataset",
        "casme2",
        "--out",
        cache_dir,
        "--workers",
        "1",
        "--clip-margin",
        "0",
        "--no-progress",
        "--size",
        "32",
        "--detect-frames",
        "0",
    )
    assert rc == 1 and "every clip failed" in err
    for clip_id in info.clip_ids:
        assert f"FAILED {clip_id}: NoFaceError" in err and "FAILED" not in out
    assert len(FrameCache(cache_dir)) == 0

    # With the fallback the same clips are cached as full frames.
    rc, out, _ = run(
        capsys,
        info.root,
        "--dataset",
        "casme2",
        "--out",
        cache_dir,
        "--workers",
        "1",
        "--clip-margin",
        "0",
        "--no-progress",
        "--size",
        "32",
        "--detect-frames",
        "0",
        "--full-frame-fallback",
    )
    assert rc == 0 and f"{len(info.clip_ids)} clip(s) written" in out and "full frame used" in out
    cache = FrameCache(cache_dir)
    assert all(e.box is None and e.box_method == "full-frame" for e in cache)
    assert np.ptp(cache.frames(cache.entries[0])[0].astype(int)) > 0


def test_cli_argument_errors(tmp_path, capsys):
    assert _size("224") == (224, 224) and _size("224x192") == (224, 192)
    with pytest.raises(argparse.ArgumentTypeError, match="--size"):
        _size("big")
    rc, _, err = run(capsys, tmp_path / "missing", "--dataset", "casme2", "--out", tmp_path / "c")
    assert rc == 2 and "missing" in err
    with pytest.raises(SystemExit):
        main(
            [
                "preprocess",
                str(tmp_path),
                "--dataset",
                "casme2",
                "--out",
                str(tmp_path / "c"),
                "--box-method",
                "largest",
            ]
        )


@pytest.mark.parametrize(
    "flag, value, culprit",
    [("--device", "gpu0", "gpu0"), ("--workers", "0", "workers"), ("--detect-frames", "-1", "--detect-frames")],
)
def test_bad_flags_exit_2_before_the_scan(tmp_path, capsys, flag, value, culprit):
    rc, out, err = run(capsys, tmp_path / "missing-root", "--dataset", "casme2", "--out", tmp_path / "c", flag, value)
    assert rc == 2 and culprit in err and len(err.strip().splitlines()) == 1
    assert "dataset" not in out  # nothing was scanned (the root does not even exist)


def test_a_relative_dataset_root_is_recorded_absolute_and_old_relative_caches_resume(
    casme2, tmp_path, capsys, monkeypatch
):
    """Source paths in the cache do not depend on the folder a later command runs from."""
    import json
    import os
    import shutil

    common = ["--dataset", "casme2", "--workers", "1", "--no-progress", "--detect-frames", "0", "--size", "32"]
    monkeypatch.chdir(casme2.root.parent)
    rc, _, err = run(capsys, casme2.root.name, "--out", tmp_path / "cache", *common)
    assert rc == 0, err
    manifest = tmp_path / "cache" / "manifest.json"
    data = json.loads(manifest.read_text())
    assert all(os.path.isabs(s) and os.path.isfile(s) for e in data["clips"] for s in e["sources"])

    # A cache made before paths were absolute: resumed from the same folder, it is the same files.
    for e in data["clips"]:
        e["sources"] = [os.path.relpath(s) for s in e["sources"]]
    manifest.write_text(json.dumps(data))
    rc, out, err = run(capsys, casme2.root, "--out", tmp_path / "cache", *common)
    assert rc == 0 and f"0 clip(s) written, {len(casme2.clip_ids)} already done, 0 failed" in out, err
    assert all(os.path.isabs(s) for e in FrameCache(tmp_path / "cache") for s in e.sources)

    # The dataset moved (a copy elsewhere, the same bytes): resumed, the paths updated.
    copy = tmp_path / "copy"
    shutil.copytree(casme2.root, copy)
    rc, out, err = run(capsys, copy, "--out", tmp_path / "cache", *common)
    assert rc == 0 and f"0 clip(s) written, {len(casme2.clip_ids)} already done, 0 failed" in out, err
    assert "source files moved (the same bytes)" in out
    assert all(s.startswith(str(copy)) for e in FrameCache(tmp_path / "cache") for s in e.sources)

    # Other files under other paths: refused, naming a file then and now.
    other = tmp_path / "other"
    shutil.copytree(casme2.root, other)
    first = FrameCache(tmp_path / "cache").entries[0].sources[0].replace(str(copy), str(other))
    Path(first).write_bytes(Path(first).read_bytes() + b"\0")
    rc, _, err = run(capsys, other, "--out", tmp_path / "cache", *common)
    assert rc == 1
    line = next(x for x in err.splitlines() if "FAILED" in x)
    assert "made from other source files (frame" in line and str(other) in line and str(copy) in line
