"""Faults of the dataset readers and ``gamdss data check`` on bad copies of a dataset: an absurd
frame number, damaged frame files, unreadable folders, a FIFO for a file, nothing usable.

Everything that could hang if the fault came back (a scan enumerating 10**15 frame numbers,
opening a FIFO) runs in a subprocess with a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gamdss
from dataset_fixtures import make_fixture, set_annotation_cell
from gamdss.cli import main
from gamdss.data import scan_dataset
from gamdss.data.datasets.frame_check import inspect_frame

REPO = Path(__file__).resolve().parents[1]
HUGE = 10**15
CLIP = "CASME2_RAW_selected/sub01/EP02_01f"  # casme2 fixture, row 2: onset 95, apex 98, offset 103


_LIMIT_MEMORY = """
import os, resource
import gamdss.cli, gamdss.data
if os.path.exists("/proc/self/status"):
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + (2 << 30), vm + (2 << 30)))
"""


def _run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter on the source tree, killed after ``timeout`` seconds;
    on Linux, once gamdss is imported, limited to 2 GiB more address space, so that a
    runaway loop fails instead of filling the machine's memory."""
    prelude = _LIMIT_MEMORY
    # The gamdss this test imported (installed, or the source tree with its extension linked).
    env = dict(
        os.environ,
        PYTHONPATH=str(Path(gamdss.__file__).resolve().parents[1]),
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(REPO),
        check=False,
    )


# ----- 1. an absurd frame number ------------------------------------------------------------
_SCAN = """
import json, sys
from gamdss.data import scan_dataset
rep = scan_dataset(sys.argv[1], sys.argv[2])
print(json.dumps({"clips": [c.clip_id for c in rep.clips],
                  "skipped": [[s.row, s.kind, s.reason] for s in rep.skipped]}))
"""


def test_absurd_offset_is_a_skipped_row_and_the_scan_finishes(tmp_path):
    info = make_fixture("casme2", tmp_path / "casme2")
    set_annotation_cell(info.annotation_path, "Sheet1", 2, 6, HUGE)  # row 2, OffsetFrame
    proc = _run_python(_SCAN, str(info.root), "casme2")  # TimeoutExpired: the scan hangs
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads(proc.stdout.splitlines()[-1])
    assert rep["clips"] == [c for c in info.clip_ids if c != "sub01/EP02_01f"]
    ((_, kind, reason),) = [s for s in rep["skipped"] if s[0] == 2]
    assert kind == "outside_frames"
    assert f"offset {HUGE} is after the last frame on disk (105)" in reason
    assert {s[0] for s in rep["skipped"]} == {2, 5, 8, 10}  # the planted rows are still reported


def test_keyframe_before_the_first_frame_names_the_value(tmp_path):
    info = make_fixture("samm", tmp_path / "samm")
    set_annotation_cell(info.annotation_path, "FACS_Movement_Only", 15, 4, 3)  # 006_1_2 onset 5562 -> 3
    rep = scan_dataset(info.root, "samm")
    skip = next(s for s in rep.skipped if s.row == 15)
    assert skip.kind == "outside_frames" and "onset 3 is before the first frame on disk (5560)" in skip.reason
    assert "006/006_1_2" not in [c.clip_id for c in rep.clips]


def test_gaps_are_listed_without_enumerating_the_numbers(tmp_path):
    info = make_fixture("casme3", tmp_path / "casme3")
    rep = scan_dataset(info.root, "casme3")
    skip = next(s for s in rep.skipped if s.clip == "spNO.2/c/50")
    assert skip.kind == "missing_frames"
    assert skip.reason.startswith("frames missing on disk: 55 (1 of the 8 frames onset..offset)")


# ----- 2. damaged frames --------------------------------------------------------------------
def _damage(path: Path, kind: str) -> None:
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not an image":
        path.write_text("this is not a picture\n", encoding="utf-8")
    elif kind == "resized":
        Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(path, quality=90)
    elif kind == "inconsistent mode":
        Image.fromarray(np.full((48, 64), 128, np.uint8)).save(path, quality=90)  # greyscale, same size
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, damaged",
    [("truncated", True), ("empty", True), ("not an image", True), ("resized", True), ("inconsistent mode", False)],
)
def test_check_reports_each_kind_of_bad_frame(tmp_path, capsys, kind, damaged):
    info = make_fixture("casme2", tmp_path / "casme2")
    _damage(info.root / CLIP / "img97.jpg", kind)
    out_json = tmp_path / "report.json"
    rc = main(["data", "check", str(info.root), "--dataset", "casme2", "--no-progress", "--json", str(out_json)])
    cap = capsys.readouterr()
    assert rc == (1 if damaged else 0), cap.err
    lines = cap.out.splitlines()
    counts = "1 damaged, 0 inconsistent" if damaged else "0 damaged, 1 inconsistent"
    assert f"  row 2 sub01/EP02_01f: {counts} in {info.root / CLIP}" in lines
    assert any(line.startswith(f"    img97.jpg: {kind}: ") for line in lines), cap.out
    assert sum(line.startswith("    img") for line in lines) == 1  # the good frames are not listed
    fc = json.loads(out_json.read_text())["frame_check"]
    assert fc["kinds"] == {kind: 1} and fc["damaged"] == int(damaged) and fc["frames_checked"] == 61
    if damaged:
        assert "1 damaged frame(s) in 1 clip(s)" in cap.err
    else:
        assert "greyscale (L) among RGB frames (preprocessing converts it to RGB)" in cap.out


def test_pil_verify_misses_a_truncated_jpeg_so_the_check_looks_further(tmp_path):
    good = tmp_path / "img1.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(good, quality=90)
    cut = tmp_path / "img2.jpg"
    cut.write_bytes(good.read_bytes()[:-200])
    with Image.open(cut) as img:
        img.verify()  # Pillow's verify() passes: it does not read JPEG data
    assert inspect_frame(good).kind is None
    info = inspect_frame(cut)
    assert info.kind == "truncated" and "truncated" in info.detail
    trailing = tmp_path / "img3.jpg"  # a complete image followed by extra bytes is fine
    trailing.write_bytes(good.read_bytes() + b"\0" * 100)
    assert inspect_frame(trailing).kind is None


def test_decode_catches_a_truncated_bmp_that_the_header_check_passes(tmp_path, capsys):
    info = make_fixture("casme2", tmp_path / "casme2")
    jpg = info.root / CLIP / "img100.jpg"
    with Image.open(jpg) as img:
        img.convert("RGB").save(jpg.with_suffix(".bmp"))
    jpg.unlink()
    bmp = jpg.with_suffix(".bmp")
    bmp.write_bytes(bmp.read_bytes()[:-500])
    assert main(["data", "check", str(info.root), "--dataset", "casme2", "--no-progress"]) == 0
    assert "0 damaged, 0 inconsistent" in capsys.readouterr().out
    assert main(["data", "check", str(info.root), "--dataset", "casme2", "--no-progress", "--decode"]) == 1
    out = capsys.readouterr().out
    assert "frame files checked (decoded): 61 in 6 clips, 1 damaged" in out
    assert any(line.startswith("    img100.bmp: truncated: ") for line in out.splitlines())


def test_decode_needs_a_root_and_progress_is_shown(tmp_path, capsys):
    info = make_fixture("casme2", tmp_path / "casme2")
    assert main(["data", "check", "--annotations", str(info.annotation_path), "--dataset", "casme2", "--decode"]) == 2
    assert "--decode checks the frames under ROOT" in capsys.readouterr().err
    assert main(["data", "check", str(info.root), "--dataset", "casme2"]) == 0
    assert "checking frames" in capsys.readouterr().err


# ----- 3. misleading messages ---------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any folder")
def test_unreadable_clip_folder_is_named_chmod(tmp_path, capsys):
    info = make_fixture("casme2", tmp_path / "casme2")
    folder = info.root / CLIP
    folder.chmod(0)
    try:
        rep = scan_dataset(info.root, "casme2")
        assert main(["data", "check", str(info.root), "--dataset", "casme2", "--no-progress"]) == 0
    finally:
        folder.chmod(0o755)
    skip = next(s for s in rep.skipped if s.row == 2)
    assert (skip.kind, skip.reason) == ("unreadable_folder", f"cannot read folder {folder}: permission denied")
    assert f"  row 2 sub01/EP02_01f: cannot read folder {folder}: permission denied" in capsys.readouterr().out


def _deny(monkeypatch, denied: Path) -> None:
    """``os.scandir`` raises PermissionError for ``denied`` (what chmod 000 does for a user
    other than root), so that the message is tested whoever runs the tests."""
    real = os.scandir

    def scandir(path="."):
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_clip_folder_is_named(tmp_path, monkeypatch, capsys):
    info = make_fixture("casme2", tmp_path / "casme2")
    folder = info.root / CLIP
    _deny(monkeypatch, folder)
    rep = scan_dataset(info.root, "casme2")
    skip = next(s for s in rep.skipped if s.row == 2)
    assert (skip.kind, skip.reason) == ("unreadable_folder", f"cannot read folder {folder}: permission denied")
    assert main(["data", "check", str(info.root), "--dataset", "casme2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"  row 2 sub01/EP02_01f: cannot read folder {folder}: permission denied" in out.splitlines()


def test_unreadable_subject_folder_is_named(tmp_path, monkeypatch):
    info = make_fixture("casme2", tmp_path / "casme2")
    folder = info.root / "CASME2_RAW_selected" / "sub01"
    _deny(monkeypatch, folder)
    rep = scan_dataset(info.root, "casme2")
    for row in (2, 3):  # both clips of sub01
        skip = next(s for s in rep.skipped if s.row == row)
        assert skip.kind == "unreadable_folder"
        assert skip.reason.startswith(f"cannot read folder {folder}: permission denied; the clip folder may be")


def test_unreadable_root_is_named(tmp_path, monkeypatch, capsys):
    info = make_fixture("mmew", tmp_path / "mmew")
    _deny(monkeypatch, info.root)
    assert main(["data", "check", str(info.root), "--dataset", "mmew"]) == 2  # an unusable input: bad input
    assert f"cannot read folder {info.root}: permission denied" in capsys.readouterr().err


_FIFO_CLI = """
import contextlib, io, json, sys
from gamdss.cli import main
out = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(args)
    out.append([rc, err.getvalue().strip()])
print(json.dumps(out))
"""


def test_fifo_for_a_file_is_named_without_blocking(tmp_path):
    info = make_fixture("mmew", tmp_path / "mmew")
    fifo = tmp_path / "labels.xlsx"
    os.mkfifo(fifo)
    under_root = tmp_path / "root"
    under_root.mkdir()
    os.mkfifo(under_root / "MMEW_Micro_Exp.xlsx")  # found under ROOT by its name
    runs = [
        ["data", "check", "--annotations", str(fifo), "--dataset", "mmew"],
        ["data", "check", "--annotations", str(info.annotation_path), "--dataset", "mmew", "--corrections", str(fifo)],
        ["data", "check", str(under_root), "--dataset", "mmew"],
    ]
    proc = _run_python(_FIFO_CLI, json.dumps(runs))  # TimeoutExpired: something opened the FIFO
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rc1, err1), (rc2, err2), (rc3, err3) = json.loads(proc.stdout.splitlines()[-1])
    assert (rc1, err1) == (2, f"gamdss data check: annotation file {fifo} is not a regular file (a FIFO)")
    assert (rc2, err2) == (2, f"gamdss data check: corrections list {fifo} is not a regular file (a FIFO)")
    assert rc3 == 2 and err3.endswith("MMEW_Micro_Exp.xlsx is not a regular file (a FIFO)")


# ----- nothing usable -----------------------------------------------------------------------
def test_wrong_dataset_exits_1_with_a_short_summary_and_a_hint(tmp_path, capsys):
    info = make_fixture("casme3", tmp_path / "casme3")
    args = ["data", "check", "--annotations", str(info.annotation_path), "--dataset", "casme2"]
    assert main(args) == 1
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert "rows: 9, usable records: 0, skipped rows: 9" in lines
    assert sum(line.startswith("  row ") for line in lines) == 5
    assert "  ... and 4 more (the full list: --json FILE)" in lines
    assert len(lines) < 15 and "protocols" not in cap.out
    assert cap.err.strip().endswith("did you mean --dataset casme3? (that reader finds 7 usable records in it)")
    out_json = tmp_path / "r.json"
    assert main(args + ["--json", str(out_json)]) == 1
    assert f"  ... and 4 more (all in {out_json})" in capsys.readouterr().out
    rep = json.loads(out_json.read_text())
    assert len(rep["skipped_rows"]) == 9 and rep["usable"] is False


def test_no_frames_under_root_exits_1_with_a_hint(tmp_path, capsys):
    info = make_fixture("casme2", tmp_path / "casme2")
    root = tmp_path / "only-labels"
    root.mkdir()
    (root / info.annotation_path.name).write_bytes(info.annotation_path.read_bytes())
    assert main(["data", "check", str(root), "--dataset", "casme2", "--no-progress"]) == 1
    cap = capsys.readouterr()
    assert "frames under" in cap.out and "0 clips found, 7 with missing frames" in cap.out
    assert "  ... and 2 more (the full list: --json FILE)" in cap.out.splitlines()
    err = cap.err.strip()
    assert len(err.splitlines()) == 1
    assert f"annotation file found (7 usable records) but no frames under ROOT {root}" in err
    assert "no clip folder exists (e.g. CASME2_RAW_selected/sub01/EP02_01f)" in err
