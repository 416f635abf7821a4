"""``gamdss reselect CACHE``: results CSV, dataset-schema annotation file, settings, and
refusal to overwrite."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import yaml

from cache_fixtures import first_frame_number, make_cache
from gamdss.cli import main
from gamdss.data.reselection_files import load_reselection
from gamdss.reselection.export import ORIGINAL_COLUMNS
from gamdss.reselection.run import reselect_cache
from gamdss.settings.reselection import ReselectionSettings


@pytest.fixture()
def cache(tmp_path):
    return make_cache(tmp_path / "cache", n_clips=5, seed=2)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_writes_csv_settings_and_dataset_file(cache, capsys):
    assert main(["reselect", str(cache.root), "--preset", "paper", "--lam-rise", "0.3", "--lam-fall", "0.3"]) == 0
    out = cache.root / "reselection" / "paper-r0.3-f0.3-l2"
    expected = reselect_cache(cache, ReselectionSettings(lam_rise=0.3, lam_fall=0.3), progress=False)
    assert load_reselection(out / "reselection.csv") == expected
    rows = _rows(out / "reselection.csv")
    assert [row["clip_id"] for row in rows] == sorted(e.clip_id for e in cache.entries)
    for row, r in zip(rows, expected):
        c = int(row["clip_id"].split("/EP")[1])  # the fixture's clip number (ids <subject>/EP<c:02d>)
        first = first_frame_number(c)  # clip c's frame numbers start here
        assert row["dataset"] == "casme2" and row["subject"] == f"sub0{c % 3 + 1}"
        for j, k in enumerate(("onset", "apex", "offset")):
            shift = r.reselected[j] - r.annotated[j]
            assert int(row[f"annotated_{k}_frame"]) == first + r.annotated[j]
            assert int(row[f"reselected_{k}_frame"]) == first + r.reselected[j]
            assert int(row[f"shift_{k}_frames"]) == shift
            assert float(row[f"shift_{k}_ms"]) == pytest.approx(shift * 5.0)  # 200 fps: 5 ms per frame
            assert float(row[f"shift_{k}_percent"]) == pytest.approx(abs(shift) / 30 * 100)
        assert (row["window"], row["lam_rise"], row["distance"]) == ("paper", "0.3", "l2")
    settings = yaml.safe_load((out / "settings.yaml").read_text())
    assert ReselectionSettings.from_dict(settings["reselection"]) == ReselectionSettings(
        method="max_distance", window="paper", lam_rise=0.3, lam_fall=0.3, distance="l2"
    )
    assert settings["clips"] == 5
    printed = capsys.readouterr().out
    moved = sum(1 for r in expected if r.reselected[1] != r.annotated[1])
    assert f"apex  : {moved:>5} of 5 moved" in printed


def test_dataset_file_rereads_to_reselected_frames(cache):
    datasets = pytest.importorskip("gamdss.data.datasets")
    import openpyxl

    assert (
        main(
            [
                "reselect",
                str(cache.root),
                "--preset",
                "paper",
                "--lam-rise",
                "0.3",
                "--lam-fall",
                "0.3",
                "--out",
                str(cache.root / "run"),
            ]
        )
        == 0
    )
    files = list((cache.root / "run").glob("*_reselected.xlsx"))
    assert len(files) == 1
    report = datasets.read_annotations(files[0], "casme2")
    assert report.skipped == []
    rows = {r["clip_id"]: r for r in _rows(cache.root / "run" / "reselection.csv")}
    assert len(report.records) == len(rows)
    for rec in report.records:
        row = rows[rec.clip_id]
        assert (rec.onset, rec.apex, rec.offset) == tuple(
            int(row[f"reselected_{k}_frame"]) for k in ("onset", "apex", "offset")
        )
    sheet = openpyxl.load_workbook(files[0]).active
    values = list(sheet.values)
    header = list(values[0])
    for name, k in zip(ORIGINAL_COLUMNS, ("onset", "apex", "offset")):
        col = header.index(name)
        assert sorted(v[col] for v in values[1:]) == sorted(int(r[f"annotated_{k}_frame"]) for r in rows.values())


def test_refuses_to_overwrite(cache, capsys):
    args = ["reselect", str(cache.root), "--preset", "paper", "--window", "symmetric", "--distance", "centered"]
    assert main(args) == 0
    out = cache.root / "reselection" / "symmetric-r0.1-f0.1-centered"
    (out / "reselection.csv").write_text("mine\n")
    assert main(args) == 2  # outputs that exist without --overwrite: bad input (was 1)
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "reselection.csv").read_text() == "mine\n"
    assert main(args + ["--overwrite"]) == 0
    assert len(load_reselection(out / "reselection.csv")) == 5


def test_not_a_cache(tmp_path, capsys):
    assert main(["reselect", str(tmp_path)]) == 2
    assert "manifest.json is missing" in capsys.readouterr().err


def test_a_cache_without_clips_is_refused(cache, tmp_path, capsys):
    """An empty manifest (every clip failed in preprocessing, say): bad input naming the
    cache, and no output folder (it used to end with exit 0 and a summary of nan)."""
    import json
    import shutil

    empty = tmp_path / "empty"
    shutil.copytree(cache.root, empty)
    manifest = empty / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "clips": []}))
    assert main(["reselect", str(empty), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gamdss reselect: nothing to reselect: the cache {empty} holds no clips"]
    assert not (tmp_path / "out").exists()


def test_default_is_the_recommended_preset_with_confidences_that_reread(cache):
    """``gamdss reselect CACHE`` runs the noise-aware preset; its CSV carries a confidence per
    keyframe (apex and offset assessed, onset not), the exported file has the confidence
    columns and still re-reads through the reader to the reselected frames."""
    datasets = pytest.importorskip("gamdss.data.datasets")
    import openpyxl

    from gamdss.reselection.export import CONFIDENCE_COLUMNS
    from gamdss.settings.reselection import preset

    assert main(["reselect", str(cache.root), "--out", str(cache.root / "run")]) == 0
    rows = {r["clip_id"]: r for r in _rows(cache.root / "run" / "reselection.csv")}
    expected = reselect_cache(cache, preset("recommended"), progress=False)
    assert load_reselection(cache.root / "run" / "reselection.csv") == expected
    for r in expected:
        row = rows[r.clip_id]
        assert row["preset"] == "recommended" and row["method"] == "noise_aware"
        assert row["confidence_onset"] == "" and row["confidence_apex"] != ""
        assert r.reselected[0] == r.annotated[0]  # the onset is never moved
        assert r.reselected[2] >= r.annotated[2]  # the offset only ever moves later
        if r.reselected[1] != r.annotated[1]:
            assert float(row["confidence_apex"]) > preset("recommended").move_z
    files = list((cache.root / "run").glob("*_reselected.xlsx"))
    report = datasets.read_annotations(files[0], "casme2")
    assert report.skipped == [] and len(report.records) == len(rows)
    for rec in report.records:
        assert (rec.onset, rec.apex, rec.offset) == tuple(
            int(rows[rec.clip_id][f"reselected_{k}_frame"]) for k in ("onset", "apex", "offset")
        )
    values = list(openpyxl.load_workbook(files[0]).active.values)
    header = list(values[0])
    apex_col = header.index(CONFIDENCE_COLUMNS[1])
    onset_col = header.index(CONFIDENCE_COLUMNS[0])
    assert all(v[onset_col] is None for v in values[1:])
    assert sorted(round(float(v[apex_col]), 2) for v in values[1:]) == sorted(
        round(float(r["confidence_apex"]), 2) for r in rows.values()
    )


def test_paper_flags_need_a_paper_style_preset(cache, capsys):
    assert main(["reselect", str(cache.root), "--lam-rise", "0.3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--lam-rise" in err and "--preset paper" in err
    assert not (cache.root / "reselection").exists()


def test_released_preset_reproduces_the_released_code_settings(cache):
    assert main(["reselect", str(cache.root), "--preset", "released", "--out", str(cache.root / "rel")]) == 0
    settings = ReselectionSettings(window="released", distance="released_uint8", ties="first_inserted")
    expected = reselect_cache(cache, settings, progress=False)
    assert load_reselection(cache.root / "rel" / "reselection.csv") == expected


def test_a_failed_export_leaves_no_partial_set(cache, monkeypatch, capsys):
    """A full disk while the spreadsheet is written: nothing reaches --out, and the rerun
    (no --overwrite needed) writes the whole set."""
    import errno

    from gamdss.data.datasets import get_dataset

    spec = type(get_dataset("casme2"))

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = cache.root / "run"
    with monkeypatch.context() as m:
        m.setattr(spec, "write_annotations", full_disk)
        assert main(["reselect", str(cache.root), "--preset", "paper", "--out", str(out)]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
    assert not list(cache.root.glob(".run.partial-*"))
    assert main(["reselect", str(cache.root), "--preset", "paper", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["reselection.csv", "settings.yaml", "CASME2-coding-20190701_reselected.xlsx"]
    )


def test_ties_flag_chooses_the_tie_rule(cache):
    out = cache.root / "rel-nearest"
    args = ["reselect", str(cache.root), "--preset", "released", "--ties", "nearest", "--out", str(out)]
    assert main(args) == 0
    saved = yaml.safe_load((out / "settings.yaml").read_text())
    assert saved["reselection"]["ties"] == "nearest" and saved["reselection"]["window"] == "released"
    settings = ReselectionSettings(window="released", distance="released_uint8", ties="nearest")
    assert load_reselection(out / "reselection.csv") == reselect_cache(cache, settings, progress=False)


def test_ties_flag_refused_where_it_does_not_apply(cache, capsys):
    # first_inserted needs the released windows: one line naming the setting, exit 2
    assert main(["reselect", str(cache.root), "--preset", "paper", "--ties", "first_inserted"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ties" in err and "window released" in err
    # the released preset's own tie rule with other windows: the line says which flag to add
    assert main(["reselect", str(cache.root), "--preset", "released", "--window", "paper"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--ties nearest" in err
    # the recommended preset has no tie rule to choose
    assert main(["reselect", str(cache.root), "--ties", "nearest"]) == 2
    assert "--ties" in capsys.readouterr().err
    assert not (cache.root / "reselection").exists()


def test_workers_change_nothing_in_the_files(cache):
    """``--workers`` only sets how many clips are corrected side by side: the results file is
    the same byte for byte."""
    for workers in ("1", "3"):
        assert main(["reselect", str(cache.root), "--out", str(cache.root / f"w{workers}"), "--workers", workers]) == 0
    one, three = ((cache.root / f"w{w}" / "reselection.csv").read_bytes() for w in ("1", "3"))
    assert one == three and one.count(b"\n") == len(cache.entries) + 1


def _modules_loaded_by_reselect(cache_root, preset_name: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after ``gamdss reselect CACHE --preset NAME``
    ran in a fresh interpreter (exit 0)."""
    script = (
        "import json, sys\n"
        "from gamdss.cli import main\n"
        "rc = main(['reselect', sys.argv[1], '--preset', sys.argv[2], '--no-progress'])\n"
        "print(json.dumps([rc, sorted({m.split('.')[0] for m in sys.modules})]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(cache_root), preset_name], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rc, modules = json.loads(proc.stdout.splitlines()[-1])
    assert rc == 0
    return set(modules)


def test_the_paper_preset_never_loads_the_face_detector(cache):
    """Property: the max-distance method reads no face, so facenet-pytorch (and torchvision,
    torch._dynamo with it: about 2.5 s) is not imported; the noise-aware method, which finds
    the eyes with MTCNN, does import it (so the check can fail)."""
    assert not {"facenet_pytorch", "torchvision"} & _modules_loaded_by_reselect(cache.root, "paper")
    assert "facenet_pytorch" in _modules_loaded_by_reselect(cache.root, "recommended")


def test_a_second_run_into_a_folder_being_written_is_refused_not_mixed(cache, tmp_path, capsys):
    """While one run writes an output folder (it holds the folder's lock), a second run into
    the same folder stops with exit 1 and names the holder, writing nothing there."""
    from gamdss.util import run_lock

    out = tmp_path / "out"
    with run_lock.hold(out, "gamdss reselect export"):
        rc = main(["reselect", str(cache.root), "--preset", "paper", "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 1 and f"{out} is in use by" in err and "gamdss reselect export" in err
        assert [p.name for p in out.iterdir()] == [run_lock.LOCK_NAME]
    assert main(["reselect", str(cache.root), "--preset", "paper", "--out", str(out), "--no-progress"]) == 0
    assert (out / "reselection.csv").is_file() and not (out / run_lock.LOCK_NAME).exists()
