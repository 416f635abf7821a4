"""The toy clips used by fast tests, and the end-to-end demo in a reduced configuration."""

from __future__ import annotations

import json

import pytest
import torch

import gamdss
from gamdss.cli import main
from gamdss.demo import MARKER, STEPS, DemoConfig, _recording, keyframe_errors, prepare_output, run_demo
from gamdss.train.layout import PLAN_FORMAT
from toy_clips import make_toy_clips


def test_toy_clips_peak_at_the_true_apex_and_are_deterministic():
    toy = make_toy_clips(n_clips=3, length=50, size=32, seed=4, annotation_error=2)
    again = make_toy_clips(n_clips=3, length=50, size=32, seed=4, annotation_error=2)
    assert torch.equal(toy.frames, again.frames) and torch.equal(toy.annotated, again.annotated)
    for b in range(3):
        onset, apex, offset = toy.truth[b].tolist()
        change = (toy.frames[b].double() - toy.frames[b, onset].double()).abs().sum(dim=(1, 2, 3))
        assert int(change.argmax()) == apex
        assert (toy.annotated[b] - toy.truth[b]).abs().max() <= 2


def test_reselection_recovers_the_true_apex_of_toy_clips():
    toy = make_toy_clips(n_clips=4, length=60, size=48, seed=1, annotation_error=3)
    ann = toy.annotated
    out = gamdss.reselect(toy.frames, ann[:, 0], ann[:, 1], ann[:, 2], lam_rise=0.2)
    truth = toy.truth[:, 1]
    inside = (out.windows[:, 2] <= truth) & (truth <= out.windows[:, 3])
    assert bool(inside.any())
    # Where the apex window holds the true apex it is found; elsewhere the error shrinks.
    assert torch.equal(out.apex[inside], truth[inside])
    assert bool(((out.apex - truth).abs() <= (ann[:, 1] - truth).abs()).all())


def test_demo_output_folder_policy(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not made by"):
        prepare_output(theirs, overwrite=False)
    assert (theirs / "notes.txt").read_text() == "keep me"
    ours = tmp_path / "ours"
    prepare_output(ours, overwrite=False)
    with _recording(ours, "cache", {}):  # as an earlier demo's step writes its outputs
        (ours / "cache" / "sub").mkdir(parents=True)
        (ours / "cache" / "sub" / "old.npy").write_text("from an earlier demo")
    (ours / "my-notes.txt").write_text("the user's")
    prepare_output(ours, overwrite=False)  # an earlier demo's outputs are replaced
    assert (ours / MARKER).is_file() and not (ours / "cache").exists()
    assert (ours / "my-notes.txt").read_text() == "the user's"


def _earlier_demo(out, interrupted_in: str | None = None) -> dict:
    """Outputs of an earlier demo run in ``out`` as its steps record them (a LOSO run folder in
    train); the step ``interrupted_in`` stops after writing. Returns the demo's files."""
    prepare_output(out, overwrite=False)
    recorded: dict = {}
    written = {}
    for name, files in (
        ("dataset", ["sub01/EP01/img1.jpg", "CASME2-coding.xlsx"]),
        ("cache", ["manifest.json"]),
        ("reselection", ["reselection.csv"]),
        ("audit", ["report.md"]),
        ("train", ["config.yaml", "plan.json", "results.json", "folds/s1.json"]),
    ):
        try:
            with _recording(out, name, recorded):
                for rel in files:
                    path = out / name / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    # a run's plan carries the format tag that makes its folder a run
                    text = json.dumps({"format": PLAN_FORMAT}) if rel == "plan.json" else "the demo's"
                    path.write_text(text)
                    written[path] = text
                if name == interrupted_in:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            break
    return written


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_demo_rerun_keeps_the_users_files_inside_its_folders(tmp_path, overwrite):
    out = tmp_path / "demo"
    demo_files = _earlier_demo(out)
    mine = {
        out / "train" / "my_analysis.txt": "precious",
        out / "cache" / "notes.txt": "mine",
        out / "dataset" / "sub01" / "EP01" / "my-labels.csv": "mine too",
        out / "thesis.tex": "mine",
    }
    for path, text in mine.items():
        path.write_text(text)
    prepare_output(out, overwrite=overwrite)
    assert {p: p.read_text() for p in mine} == mine
    gone = [p for p in demo_files if "train" not in p.relative_to(out).parts]
    assert gone and not any(p.exists() for p in gone)
    assert not (out / "reselection").exists() and not (out / "audit").exists()  # left empty: removed
    # the train folder is a LOSO run: run_loso(overwrite=True) replaces only the run's own files
    assert (out / "train" / "config.yaml").is_file()


def test_a_demo_step_interrupted_midway_has_its_partial_outputs_replaced(tmp_path):
    out = tmp_path / "demo"
    demo_files = _earlier_demo(out, interrupted_in="cache")  # Ctrl-C in the preprocessing step
    (out / "cache" / "after.txt").write_text("the user's")
    prepare_output(out, overwrite=False)
    assert not any(p.exists() for p in demo_files) and not (out / "train").exists()
    assert (out / "cache" / "after.txt").read_text() == "the user's"


def test_a_demo_step_killed_outright_has_its_outputs_replaced_but_not_older_files(tmp_path):
    out = tmp_path / "demo"
    prepare_output(out, overwrite=False)
    (out / "cache").mkdir()
    (out / "cache" / "before.txt").write_text("the user's, there before the step began")
    step = _recording(out, "cache", {})
    step.__enter__()  # killed inside: the step never records its end
    (out / "cache" / "clips").mkdir()
    (out / "cache" / "clips" / "0.npy").write_text("the demo's")
    prepare_output(out, overwrite=False)
    assert (out / "cache" / "before.txt").read_text() == "the user's, there before the step began"
    assert not (out / "cache" / "clips").exists()


def test_a_folder_the_demo_has_no_record_of_is_never_emptied(tmp_path):
    out = tmp_path / "demo"
    (out / "cache").mkdir(parents=True)
    (out / "cache" / "data.npy").write_text("the user's")
    for marker in (None, "made by `gamdss demo`; the next demo run replaces its folders\n"):  # none; an old one
        if marker is not None:
            (out / MARKER).write_text(marker)
        with pytest.raises(FileExistsError, match="cannot tell its own files"):
            prepare_output(out, overwrite=True)
        assert (out / "cache" / "data.npy").read_text() == "the user's"


def test_demo_refuses_a_train_folder_that_is_not_a_run(tmp_path):
    out = tmp_path / "demo"
    prepare_output(out, overwrite=False)
    (out / "train").mkdir()
    (out / "train" / "my_analysis.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="holds files but no training run"):
        prepare_output(out, overwrite=True)
    assert (out / "train" / "my_analysis.txt").read_text() == "precious"
    # a file merely named plan.json (someone else's) does not make it a run
    (out / "train" / "plan.json").write_text('{"resource": "terraform"}')
    with pytest.raises(FileExistsError, match="holds files but no training run"):
        prepare_output(out, overwrite=True)
    assert (out / "train" / "plan.json").read_text() == '{"resource": "terraform"}'


def test_demo_overwrite_never_deletes_the_users_files(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.csv").write_text("x")
    (tmp_path / "train").mkdir()  # a name the demo uses: replaced
    prepare_output(tmp_path, overwrite=True)
    assert (tmp_path / "thesis.tex").read_text() == "precious"
    assert (tmp_path / "sub" / "data.csv").read_text() == "x"
    assert not (tmp_path / "train").exists() and (tmp_path / MARKER).is_file()


@pytest.mark.parametrize(
    "change, culprit",
    [
        (dict(subjects=1), "subjects"),
        (dict(epochs=0), "epochs"),
        (dict(preset="best"), "preset"),
        (dict(device="tpu"), "device"),
    ],
)
def test_demo_settings_are_checked_before_anything_runs(tmp_path, change, culprit):
    with pytest.raises(ValueError, match=culprit):
        DemoConfig(out=tmp_path / "demo", **change)
    assert not (tmp_path / "demo").exists()


class _Row:
    def __init__(self, truth):
        self.truth = truth


class _Entry:
    def __init__(self, first, n):
        self.frame_numbers = list(range(first, first + n))


class _Result:
    def __init__(self, clip_id, annotated, reselected):
        self.clip_id, self.annotated, self.reselected = clip_id, annotated, reselected


def test_keyframe_errors_hand_computed():
    cache = {"a": _Entry(100, 30), "b": _Entry(7, 30)}
    truth = {"a": _Row((105, 112, 120)), "b": _Row((10, 20, 25))}
    results = [
        _Result("a", (5, 10, 20), (5, 12, 21)),  # frames 105,110,120 -> 105,112,121
        _Result("b", (1, 13, 20), (3, 13, 18)),
    ]  # frames 8,20,27 -> 10,20,25
    err = keyframe_errors(truth, cache, results)
    assert err["annotated"] == {"onset": 1.0, "apex": 1.0, "offset": 1.0}
    assert err["reselected"] == {"onset": 0.0, "apex": 0.0, "offset": 0.5}


def test_demo_runs_every_step_in_a_reduced_configuration(tmp_path, capsys):
    cfg = DemoConfig(
        out=tmp_path / "demo",
        subjects=2,
        clips_per_subject=3,
        frame_size=(128, 128),
        cache_size=(32, 32),
        epochs=1,
        seed=3,
    )
    result = run_demo(cfg, progress=False, log=lambda _: None)
    assert "warning" not in capsys.readouterr().err  # training names the preset its file records
    assert (result.dataset / "ground_truth.csv").is_file()
    manifest = json.loads((result.cache / "manifest.json").read_text())
    assert len(manifest["clips"]) == 6 and manifest["header"]["size"] == [32, 32]
    assert (result.reselection / "reselection.csv").is_file()
    # the corrected annotation file is the drop-in copy of the demo dataset's own file
    from gamdss.data.cache import FrameCache
    from gamdss.reselection.export import find_source_file

    source, why = find_source_file(FrameCache(result.cache), "casme2")
    assert source is not None and source.parent == result.dataset, why
    assert (result.reselection / f"{source.stem}_reselected.xlsx").is_file()
    assert result.audit_report.is_file()
    saved = json.loads((result.train_dir / "results.json").read_text())
    assert saved["protocol"] == "honest" and saved["num_folds"] == 2 and saved["num_samples"] == 6
    first_table = (result.train_dir / "table.md").read_text()
    # one reselection: training read the demo's reselection.csv (the one the audit read)
    plan = json.loads((result.train_dir / "plan.json").read_text())
    assert plan["reselection_sources"] == [str(result.reselection / "reselection.csv")]
    assert not (result.train_dir / "tsne_rise.png").exists()  # tiny-cpu: no t-SNE
    for kind in ("annotated", "reselected"):
        assert set(result.keyframe_errors[kind]) == {"onset", "apex", "offset"}
    # a rerun replaces the demo's outputs and keeps the user's files inside its folders
    mine = {
        result.train_dir / "my_analysis.txt": "precious",
        result.cache / "notes.txt": "mine",
        result.dataset / "labels-v2.csv": "mine",
        result.audit_report.parent / "comments.md": "mine",
    }
    for path, text in mine.items():
        path.write_text(text)
    again = run_demo(cfg, progress=False, log=lambda _: None)
    assert {p: p.read_text() for p in mine} == mine
    assert json.loads((again.train_dir / "results.json").read_text())["num_samples"] == 6
    # same seed, same machine: the same printed numbers (keyframe errors, every mode's metrics)
    assert again.keyframe_errors == result.keyframe_errors
    assert again.results["modes"] == result.results["modes"]
    assert (again.train_dir / "table.md").read_text() == first_table
    assert list(again.seconds) == list(STEPS) == ["generate", "preprocess", "reselect", "audit", "train"]
    assert len(json.loads((again.cache / "manifest.json").read_text())["clips"]) == 6


def test_demo_command_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "data.txt").write_text("user data")
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 2
    assert "not made by" in capsys.readouterr().err
    assert (tmp_path / "data.txt").read_text() == "user data"
    assert main(["demo", "--out", str(tmp_path / "new"), "--epochs", "0", "--quiet"]) == 2
    assert "epochs" in capsys.readouterr().err and not (tmp_path / "new").exists()


# ------------------------------------------------------------------ found by review (2026-12-02)
@pytest.mark.parametrize(
    "flag, value",
    [
        ("--seed", "-5"),  # was: banner, [1/5] and the folder, then status 1
        ("--clips-per-subject", "0"),
        ("--frame-size", "32"),
        ("--cache-size", "8"),
        ("--threads", "-1"),
        ("--subjects", "1"),
        ("--epochs", "0"),
        ("--device", "tpu"),  # was told after the banner said "running on tpu"
    ],
)
def test_demo_checks_its_flags_before_printing_or_writing(tmp_path, capsys, flag, value):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), flag, value, "--no-progress"]) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gamdss demo: {flag} ") and value in lines[0]
    assert "_" not in lines[0].split(":", 1)[1]  # flags, not DemoConfig field names
    assert cap.out == "" and not out.exists()


def test_demo_refuses_an_out_below_a_file_before_writing(tmp_path, capsys):
    a_file = tmp_path / "afile"
    a_file.write_text("mine")
    assert main(["demo", "--out", str(a_file / "x"), "--no-progress"]) == 2  # was Errno 20, status 1
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gamdss demo: --out ") and "is a file" in lines[0]
    assert cap.out == "" and a_file.read_text() == "mine"


def test_demo_config_refuses_a_negative_seed(tmp_path):
    with pytest.raises(ValueError, match="seed must be >= 0"):
        DemoConfig(out=tmp_path / "demo", seed=-1)
    assert not (tmp_path / "demo").exists()
