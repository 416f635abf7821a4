"""``gamdss data check`` on the fixtures: every planted bad row appears with its reason."""

from __future__ import annotations

import json

import pytest

from dataset_fixtures import FIXTURE_NAMES, make_fixture
from gamdss.cli import main


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_datasets")
    return {n: make_fixture(n, base / n) for n in FIXTURE_NAMES}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_check_root_lists_planted_rows(fixtures, name, capsys):
    info = fixtures[name]
    assert main(["data", "check", str(info.root), "--dataset", name]) == 0
    out = capsys.readouterr().out
    assert f"annotation file: {info.annotation_path}" in out
    lines = out.splitlines()
    for row, reason in info.skipped_rows.items():
        assert any(line.strip().startswith(f"row {row} ") and reason in line for line in lines), (row, reason)
    for clip, row in info.missing_frames.items():
        assert any(line.strip().startswith(f"row {row} {clip}: frames missing on disk") for line in lines), clip
    assert f"{len(info.clip_ids)} clips found, {len(info.missing_frames)} with missing frames" in out
    for proto in info.counts:
        assert f"  {proto}: " in out


def test_check_reports_corrections_and_counts(fixtures, capsys):
    info = fixtures["casme3"]
    assert main(["data", "check", "--annotations", str(info.annotation_path), "--dataset", "casme3"]) == 0
    out = capsys.readouterr().out
    assert "spNO.216/d/2647: onset 3647 -> 2647" in out and "spNO.216/e/1: apex 0 -> 1" in out
    assert "frames under" not in out
    assert "casme3-3: 6 samples, 3 subjects; positive 1, surprise 1, negative 4; dropped: others 1" in out
    assert f"usable records: {len(info.record_clip_ids)}" in out


def test_check_json(fixtures, tmp_path, capsys):
    info = fixtures["samm"]
    out = tmp_path / "report.json"
    assert main(["data", "check", str(info.root), "--dataset", "samm", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert {s["row"] for s in rep["skipped_rows"]} == set(info.skipped_rows) - set(info.missing_frames.values())
    assert [s["clip"] for s in rep["frames"]["clips_missing_frames"]] == list(info.missing_frames)
    assert rep["protocols"]["samm-5"]["samples"] == 4  # 009_3_5 (surprise) has no frames: counted over clips
    assert rep["protocols"]["samm-5"]["classes"]["surprise"] == 0
    capsys.readouterr()
    assert main(["data", "check", str(info.root), "--dataset", "samm", "--json", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["data", "check", str(info.root), "--dataset", "samm", "--json", str(out), "--overwrite"]) == 0


def test_check_bad_input(tmp_path, capsys):
    bad = tmp_path / "broken.xlsx"
    bad.write_text("not a workbook")
    assert main(["data", "check", "--annotations", str(bad), "--dataset", "casme2"]) != 0
    assert "broken.xlsx" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path), "--dataset", "mmew"]) != 0
    assert "MMEW_Micro_Exp.xlsx" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path), "--dataset", "smic"]) != 0
    assert "known datasets" in capsys.readouterr().err
    assert main(["data", "check", "--dataset", "samm"]) == 2


def test_check_prints_unmatched_corrections_and_missing_datasets(fixtures, tmp_path, capsys):
    info = fixtures["casme2"]
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "dataset: mine\nversion: 1\ncorrections:\n"
        "  - {subject: 1, video: EP03_02, field: offset, original: 15, corrected: 14, reason: a}\n"
        "  - {subject: 1, video: EP99_99, field: offset, original: 15, corrected: 14, reason: b}\n",
        encoding="utf-8",
    )
    out_json = tmp_path / "r.json"
    assert (
        main(
            [
                "data",
                "check",
                "--annotations",
                str(info.annotation_path),
                "--dataset",
                "casme2",
                "--corrections",
                str(mine),
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "row 3 sub01/EP03_02: offset 15 -> 14" in out
    assert "corrections not applied (matched no row): 1" in out
    assert "sub01/EP99_99 offset 15 -> 14 (mine-corrections v1): no row with subject 'sub01'" in out
    assert "megc2019: " in out and "no records of: samm, smic" in out
    rep = json.loads(out_json.read_text())
    assert [u["video"] for u in rep["unmatched_corrections"]] == ["EP99_99"]
    assert rep["protocols"]["megc2019"]["missing_datasets"] == ["samm", "smic"]


def test_check_names_bad_paths_and_values(tmp_path, capsys):
    from dataset_fixtures import make_fixture
    from gamdss.cli import main

    root = tmp_path / "samm"
    make_fixture("samm", root)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("a: [\n")
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("x")
    cases = [
        (["--corrections", str(bad_yaml)], "is not valid YAML"),
        (["--json", str(a_file / "r.json")], f"--json's folder {a_file} is a file; give a folder"),
        (["--corrections", str(folder)], "is a folder, not a file"),
        (["--json", str(folder), "--overwrite"], "is a folder; give a file name"),
        (["--clip-margin", "-3"], "--clip-margin must be >= 0"),
    ]
    for extra, message in cases:
        assert main(["data", "check", str(root), "--dataset", "samm", *extra]) == 2
        cap = capsys.readouterr()
        assert message in cap.err and "Traceback" not in cap.err
        assert cap.out == ""  # refused before the check ran
    assert main(["data", "check", "--annotations", str(folder), "--dataset", "samm"]) != 0
    assert "is a folder, not a file" in capsys.readouterr().err


def test_a_root_of_another_dataset_gets_a_hint(fixtures, capsys):
    """ROOT holds CAS(ME)^3's annotation file but --dataset says casme2: bad input (exit 2), one
    line naming what was looked for, the flag to use and no API wording."""
    info = fixtures["casme3"]
    assert main(["data", "check", str(info.root), "--dataset", "casme2"]) == 2
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gamdss data check: no casme2 annotation file under")
    assert err[0].endswith(
        f"holds a casme3 annotation file ({info.annotation_path.name}): did you mean --dataset casme3?"
    )
    assert "give the file with --annotations" in err[0] and "annotations=" not in err[0]
    assert cap.out == ""


def test_an_annotation_file_of_another_dataset_exits_1_with_a_hint(fixtures, capsys):
    info = fixtures["casme3"]
    assert main(["data", "check", "--annotations", str(info.annotation_path), "--dataset", "samm"]) == 1
    cap = capsys.readouterr()
    assert "did you mean --dataset casme3?" in cap.err and len(cap.err.strip().splitlines()) == 1
    assert "protocols" not in cap.out and "usable records: 0" in cap.out


def test_a_file_named_for_another_dataset_gets_a_note_and_ties_go_to_it(fixtures, tmp_path, capsys):
    """CASME II's file read as SAMM or CAS(ME)^2: the report notes whose file it is, and when
    several readers find the same number of records the hint names the one the file is named for."""
    from gamdss.data.datasets import DATASETS, get_dataset

    info = fixtures["casme2"]
    counts = {}
    for name in DATASETS:
        try:
            counts[name] = len(get_dataset(name).read_annotations(info.annotation_path).records)
        except Exception:  # noqa: BLE001 - readers of other layouts fail on it
            counts[name] = 0
    report = tmp_path / "report.json"
    for other in ("samm", "casme_sq"):
        rc = main(
            [
                "data",
                "check",
                "--annotations",
                str(info.annotation_path),
                "--dataset",
                other,
                "--json",
                str(report),
                "--overwrite",
            ]
        )
        cap = capsys.readouterr()
        assert json.loads(report.read_text())["file_named_for"] == ["casme2"]
        assert f"note: its name is that of a casme2 annotation file, read here as {other}" in cap.out
        if rc == 1:  # nothing usable as `other`: the hint names the best reader, casme2 on a tie
            best = max(counts[n] for n in DATASETS if n != other)
            assert counts["casme2"] == best and "did you mean --dataset casme2?" in cap.err
    assert main(["data", "check", "--annotations", str(info.annotation_path), "--dataset", "casme2"]) == 0
    assert "note:" not in capsys.readouterr().out
