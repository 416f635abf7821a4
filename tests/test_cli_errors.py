"""Bad input to the ``gamdss`` subcommands: a one-line message on stderr naming the culprit, a
non-zero exit status, no traceback and no output written before the input was checked."""

from __future__ import annotations

import pytest

from cache_fixtures import make_cache
from gamdss.cli import main


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("errors") / "cache", n_clips=4, n_subjects=2, size=16)


def _error(capsys) -> str:
    """The captured stderr's one message line (progress bars aside), checked to come without a
    traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("gamdss ")]
    assert len(lines) == 1, err
    return lines[0]


def _usage_error(capsys, argv: list[str]) -> str:
    """Run ``argv``, expecting argparse to refuse it (exit status 2); its error line."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def _copy_cache(cache, dest):
    import shutil

    shutil.copytree(cache.root, dest)
    from gamdss.data.cache import FrameCache

    return FrameCache(dest)


# ------------------------------------------------------------------------------ reselect
@pytest.mark.parametrize(
    "flag, value",
    [
        ("--lam-rise", "nan"),
        ("--lam-rise", "-0.5"),
        ("--lam-fall", "inf"),
        ("--lam-fall", "x"),
        ("--max-batch-mb", "0"),
        ("--max-batch-mb", "-3"),
        ("--workers", "0"),
        ("--workers", "1.5"),
    ],
)
def test_reselect_refuses_bad_numbers(cache, tmp_path, capsys, flag, value):
    out = tmp_path / "out"
    line = _usage_error(capsys, ["reselect", str(cache.root), "--out", str(out), flag, value])
    assert flag in line and repr(value) in line
    assert not out.exists()


def test_reselect_refuses_an_unknown_device_before_reading_frames(cache, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reselect", str(cache.root), "--out", str(out), "--device", "gpu0"]) == 2
    line = _error(capsys)
    assert line.startswith("gamdss reselect:") and "--device" in line and "gpu0" in line
    assert not out.exists()


def test_reselect_refuses_an_out_that_is_a_file(cache, tmp_path, capsys):
    out = tmp_path / "results.txt"
    out.write_text("mine")
    assert main(["reselect", str(cache.root), "--out", str(out)]) == 2
    line = _error(capsys)
    assert "--out" in line and str(out) in line and "file" in line
    assert out.read_text() == "mine"
    # a folder below a file cannot be made either
    assert main(["reselect", str(cache.root), "--out", str(out / "sub")]) == 2
    assert str(out) in _error(capsys)


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_reselect_names_a_damaged_clip_and_writes_nothing(cache, tmp_path, capsys, damage):
    broken = _copy_cache(cache, tmp_path / "broken")
    entry = broken.entries[1]
    path = broken.root / entry.file
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.unlink()
    out = tmp_path / "out"
    assert main(["reselect", str(broken.root), "--out", str(out)]) == 2
    line = _error(capsys)
    assert line.startswith("gamdss reselect:") and entry.clip_id in line
    assert not out.exists() or not any(out.iterdir())


# ------------------------------------------------------------------------------ audit
def test_audit_checks_clips_before_writing_and_the_corrected_rerun_runs(cache, tmp_path, capsys):
    out = tmp_path / "audit"
    assert main(["audit", str(cache.root), "--out", str(out), "--clips", "sub01/EP00", "nope/EP99"]) == 2
    line = _error(capsys)
    assert line.startswith("gamdss audit:") and "--clips" in line and "nope/EP99" in line
    assert "sub01/EP00" not in line.split("--clips", 1)[1]
    assert not out.exists()
    # the corrected command is not refused: nothing was left behind; an unknown group key warns
    assert main(["audit", str(cache.root), "--out", str(out), "--clips", "sub01/EP00", "--group-by", "handedness"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "handedness" in err and "Traceback" not in err
    assert (out / "report.md").is_file() and (out / "groups_handedness.csv").is_file()


def test_audit_refuses_a_missing_reselection_file(cache, tmp_path, capsys):
    out = tmp_path / "audit"
    missing = tmp_path / "nowhere" / "reselection.csv"
    assert main(["audit", str(cache.root), "--out", str(out), "--reselection", str(missing)]) == 2
    line = _error(capsys)
    assert "--reselection" in line and str(missing) in line and "does not exist" in line
    assert not out.exists()


def test_audit_refuses_clips_missing_from_the_reselection_file_before_writing(cache, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["reselect", str(cache.root), "--out", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "audit"
    assert (
        main(
            [
                "audit",
                str(cache.root),
                "--out",
                str(out),
                "--reselection",
                str(run / "reselection.csv"),
                "--clips",
                "sub09/EP00",
            ]
        )
        == 2  # a clip id not in the reselection file is bad input, told before anything runs (was 1)
    )
    assert "sub09/EP00" in _error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("device", ["tpu", "cuda:x"])
def test_audit_refuses_a_bad_device(cache, tmp_path, capsys, device):
    out = tmp_path / "audit"
    assert main(["audit", str(cache.root), "--out", str(out), "--device", device]) == 2
    assert "--device" in _error(capsys)
    assert not out.exists()


def test_audit_refuses_an_out_that_is_a_file(cache, tmp_path, capsys):
    out = tmp_path / "audit.md"
    out.write_text("mine")
    assert main(["audit", str(cache.root), "--out", str(out)]) == 2
    line = _error(capsys)
    assert str(out) in line and "17" != line.split(":", 1)[1].strip()
    assert out.read_text() == "mine"


def test_error_text_prints_the_whole_os_error_and_a_bare_key_error():
    from gamdss.commands._common import error_text

    assert error_text(FileExistsError(17, "File exists", "/x/y")) == "[Errno 17] File exists: '/x/y'"
    assert error_text(KeyError("clip 'a' is unknown")) == "clip 'a' is unknown"


# ------------------------------------------------------------------------------ train
def _train_args(cache, out) -> list[str]:
    return ["train", "tiny-cpu", f"data.caches=[{cache.root}]", "--output", str(out), "--quiet"]


def test_train_refuses_an_output_dir_that_is_a_file(cache, tmp_path, capsys):
    out = tmp_path / "run.txt"
    out.write_text("mine")
    assert main(_train_args(cache, out)) == 2
    line = _error(capsys)
    assert line.startswith("gamdss train:") and "run.output_dir" in line and str(out) in line
    assert out.read_text() == "mine"


def test_train_tells_a_config_folder_from_a_missing_config(tmp_path, capsys):
    assert main(["train", str(tmp_path), "--print-config"]) == 2
    assert "is a folder" in _error(capsys)
    missing = tmp_path / "none.yaml"
    assert main(["train", str(missing), "--print-config"]) == 2
    line = _error(capsys)
    assert str(missing) in line and "does not exist" in line


def test_train_refuses_an_empty_config_file(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert main(["train", str(empty), "--print-config"]) == 2
    line = _error(capsys)
    assert str(empty) in line and "empty config file" in line
    assert capsys.readouterr().out == ""


def test_train_config_errors_go_to_stderr(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {epochs: [1, 2}\n")
    assert main(["train", str(bad), "--print-config"]) == 2
    captured = capsys.readouterr()
    assert str(bad) in captured.err and captured.out == ""


def test_train_takes_overrides_after_flags(tmp_path, capsys):
    assert (
        main(["train", "tiny-cpu", "--print-config", "--output", str(tmp_path / "r"), "optim.epochs=7", "run.seed=11"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "epochs: 7" in printed and "seed: 11" in printed and str(tmp_path / "r") in printed
    # overrides after flags are checked like the others
    assert main(["train", "tiny-cpu", "--quiet", "optim.nope=1", "--print-config"]) == 2
    assert "optim.nope" in _error(capsys)
    # unknown flags, and extra positionals of commands that take none, are still refused
    assert "--bogus" in _usage_error(capsys, ["train", "tiny-cpu", "--bogus"])
    assert "extra" in _usage_error(capsys, ["reselect", str(tmp_path), "--overwrite", "extra"])


def test_train_overwrite_refuses_a_folder_that_is_not_a_run(cache, tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "folds").mkdir(parents=True)
    files = {
        out / "reselection.csv": "clip_id\nmy,data\n",
        out / "notes.txt": "keep me",
        out / "folds" / "a.json": "{}",
    }
    for path, text in files.items():
        path.write_text(text)
    assert main([*_train_args(cache, out), "--overwrite"]) == 2
    line = _error(capsys)
    assert str(out) in line and "not a gamdss training folder" in line
    assert {p: p.read_text() for p in files} == files
    assert sorted(p.name for p in out.rglob("*")) == ["a.json", "folds", "notes.txt", "reselection.csv"]


# ------------------------------------------------------------------------------ bench keyframes
def test_bench_refuses_zero_clips(tmp_path, capsys):
    out = tmp_path / "bench"
    assert "--clips" in _usage_error(capsys, ["bench", "keyframes", "--clips", "0", "--out", str(out)])
    assert not out.exists()


def test_bench_refuses_an_out_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "bench.txt"
    out.write_text("mine")
    assert main(["bench", "keyframes", "--quick", "--out", str(out)]) == 2
    line = _error(capsys)
    assert line.startswith("gamdss bench keyframes:") and str(out) in line
    assert out.read_text() == "mine"


@pytest.mark.parametrize("text", ["clips: [1\n", "bogus: 3\n", "clips: many\n", None])
def test_bench_names_a_bad_config(tmp_path, capsys, text):
    config = tmp_path / "bench.yaml"
    if text is not None:
        config.write_text(text)
    out = tmp_path / "bench"
    assert main(["bench", "keyframes", "--config", str(config), "--out", str(out)]) == 2
    line = _error(capsys)
    assert line.startswith("gamdss bench keyframes:") and str(config) in line
    assert not out.exists()


# ------------------------------------------------------------------ found by review (2026-12-01)
def test_train_refuses_an_unknown_model_argument_before_writing(cache, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*_train_args(cache, out), "model.kwargs.bogus=1"]) == 2
    line = _error(capsys)
    assert line.startswith("gamdss train:") and "model" in line and "bogus" in line
    assert not out.exists()


def test_train_warns_when_reselection_files_override_the_config_settings(cache, tmp_path, capsys):
    from gamdss.reselection.export import export_reselection
    from gamdss.reselection.run import reselect_cache
    from gamdss.settings.reselection import preset

    made = preset("paper")
    export_reselection(cache, reselect_cache(cache, made, progress=False), tmp_path / "resel", made)
    out = tmp_path / "run"
    args = [*_train_args(cache, out), f"reselection.files=[{tmp_path / 'resel' / 'reselection.csv'}]"]
    args += ["reselection.lam_rise=0.9", "optim.epochs=1", "run.folds=[casme2_sub01]"]
    assert main(args) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if line.startswith("warning: reselection.files")]
    assert len(warning) == 1 and "0.9" in warning[0] and "not used" in warning[0]


def test_audit_refuses_a_file_that_records_no_settings(cache, tmp_path, capsys):
    from gamdss.data.reselection_files import save_reselection
    from gamdss.reselection.run import reselect_cache
    from gamdss.settings.reselection import preset

    bare = tmp_path / "bare" / "reselection.csv"
    bare.parent.mkdir()
    save_reselection(reselect_cache(cache, preset("paper"), progress=False), bare)  # no settings recorded
    out = tmp_path / "audit"
    assert main(["audit", str(cache.root), "--out", str(out), "--reselection", str(bare), "--no-progress"]) == 2
    line = _error(capsys)
    assert str(bare) in line and "records no reselection settings" in line


def test_audit_refuses_a_csv_that_is_not_a_reselection_file_with_status_2(cache, tmp_path, capsys):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert main(["audit", str(cache.root), "--out", str(tmp_path / "audit"), "--reselection", str(other)]) == 2
    line = _error(capsys)
    assert str(other) in line and "not a reselection results file" in line


def test_duplicate_rows_of_one_clip_are_refused(cache):
    from gamdss.data.reselection_files import check_against_cache
    from gamdss.reselection.run import reselect_cache
    from gamdss.settings.reselection import preset

    results = reselect_cache(cache, preset("paper"), progress=False)
    check_against_cache(results, cache)  # a complete, unique set passes
    with pytest.raises(ValueError, match="more than one row"):
        check_against_cache([*results, results[0]], cache)


def test_an_unanticipated_failure_is_one_line_and_status_1(monkeypatch, capsys):
    import argparse

    def parse_then_fail(argv, parsed):
        parsed.append(argparse.Namespace(command="data"))
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr("gamdss.cli._main", parse_then_fail)
    assert main(["data"]) == 1
    line = _error(capsys)
    assert line.startswith("gamdss data: failed:") and "ZeroDivisionError" in line and "simulated bug" in line
    assert "GAMDSS_TRACEBACK" in line


# ------------------------------------------------------------------ found by review (2026-12-02)
@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
@pytest.mark.parametrize(
    "flag, told",
    [
        # preprocess has both: a bad --clip-margin is told under its own flag, not as --margin
        ("--clip-margin", "gamdss preprocess: --clip-margin "),
        ("--margin", "gamdss preprocess: --margin must be a finite number >= 0"),
    ],
)
def test_preprocess_names_each_bad_margin_by_its_flag_before_reading_the_dataset(tmp_path, capsys, flag, told, value):
    (tmp_path / "dataset").mkdir()
    out = tmp_path / "cache"
    argv = ["preprocess", str(tmp_path / "dataset"), "--dataset", "casme2", "--out", str(out)]
    assert main([*argv, flag, value]) == 2
    line = _error(capsys)
    assert line.startswith(told) and value in line
    assert not out.exists()


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_data_check_refuses_every_bad_clip_margin(tmp_path, capsys, value):
    assert main(["data", "check", str(tmp_path), "--dataset", "casme2", "--clip-margin", value]) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("gamdss data check: --clip-margin ") and value in lines[0]
    assert cap.out == ""  # refused before the check ran


def test_preprocess_refuses_an_out_below_a_file_before_reading_the_dataset(tmp_path, capsys):
    a_file = tmp_path / "afile"
    a_file.write_text("mine")
    out = a_file / "cache"
    assert main(["preprocess", str(tmp_path / "dataset"), "--dataset", "casme2", "--out", str(out)]) == 2
    line = _error(capsys)
    assert line.startswith("gamdss preprocess: --out ") and str(a_file) in line and "is a file" in line
    assert a_file.read_text() == "mine"


@pytest.fixture(scope="module")
def reselection_file(cache, tmp_path_factory):
    """A ``gamdss reselect`` run of ``cache`` with the paper preset: its reselection.csv."""
    from gamdss.reselection.export import export_reselection
    from gamdss.reselection.run import reselect_cache
    from gamdss.settings.reselection import preset

    made = preset("paper")
    out = tmp_path_factory.mktemp("resel") / "run"
    export_reselection(cache, reselect_cache(cache, made, progress=False), out, made)
    return out / "reselection.csv"


@pytest.mark.parametrize(
    "flags",
    [
        ["--preset", "paper", "--lam-rise", "0.3"],
        ["--preset", "recommended"],  # the default preset, given: still a setting the file overrides
        ["--window", "released"],
        ["--lam-fall", "0.2"],
        ["--distance", "centered", "--ties", "nearest"],
    ],
)
def test_audit_refuses_settings_flags_with_a_reselection_file(cache, reselection_file, tmp_path, capsys, flags):
    """The file records its settings; flags that choose others were silently ignored (exit 0)."""
    out = tmp_path / "audit"
    argv = ["audit", str(cache.root), "--out", str(out), "--reselection", str(reselection_file), "--no-progress"]
    assert main([*argv, *flags]) == 2
    line = _error(capsys)
    given = [f for f in flags if f.startswith("--")]
    assert line.startswith("gamdss audit: " + ", ".join(given)) and "--reselection" in line
    assert "drop" in line and "file" in line
    assert not out.exists()


def test_audit_of_a_reselection_file_without_settings_flags_runs(cache, reselection_file, tmp_path, capsys):
    out = tmp_path / "audit"
    argv = ["audit", str(cache.root), "--out", str(out), "--reselection", str(reselection_file), "--no-progress"]
    assert main(argv) == 0
    assert (out / "report.md").is_file()


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "null\n", "0\n", "- clips: 1\n"])
def test_bench_refuses_an_empty_or_non_mapping_config(tmp_path, capsys, text):
    """An empty config ran the whole default benchmark (exit 0); the flags keep a run short
    should it start."""
    config = tmp_path / "bench.yaml"
    config.write_text(text)
    out = tmp_path / "bench"
    small = ["--clips", "1", "--fps", "200", "--confounders", "clean", "--no-progress"]
    assert main(["bench", "keyframes", "--config", str(config), "--out", str(out), *small]) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gamdss bench keyframes: --config {config}: ")
    assert ("empty config file" if text.strip() in ("", "# nothing yet", "null") else "mapping") in lines[0]
    assert cap.out == "" and not out.exists()  # refused before the banner and the first clip


def test_train_refuses_a_config_that_is_not_a_mapping(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("0\n")
    assert main(["train", str(config), "--print-config"]) == 2
    line = _error(capsys)
    assert line.startswith(f"gamdss train: {config}: ") and "mapping" in line
