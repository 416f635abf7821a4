"""A training run never takes a foreign folder for its own, never deletes a user's files, never
reuses folds or checkpoints of another config, stops where the released protocol stops, and
reports a fold that fails as a failed run naming the fold."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch

from gamdss.cli import main
from gamdss.train import load_config
from gamdss.train.config import ConfigError, config_digest
from gamdss.train.loso import ConfigChangedError, _payload, _prepare_output, is_run, prepare_run, run_loso
from train_fixtures import make_toy_cache, toy_overrides

SMALL = ("optim.epochs=1", "data.image_size=16")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A 2-subject toy cache (6 clips, 16 px)."""
    root = tmp_path_factory.mktemp("safety") / "cache"
    make_toy_cache(root, n_subjects=2, clips_per_class=1, frames=16, size=16, seed=0)
    return root


@pytest.fixture(scope="module")
def finished(cache, tmp_path_factory) -> Path:
    """A finished 1-epoch run with t-SNE files (copy it before changing it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    run_loso(load_config("tiny-cpu", toy_overrides(cache, out, *SMALL)), progress=False)
    return out


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def _train(cache: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "tiny-cpu", *toy_overrides(cache, out, *SMALL, *extra), "--quiet"]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gamdss")]
    assert len(err) == 1, err
    return err[0]


# ------------------------------------------------------------------------------ 1: foreign folders
FOREIGN = {
    "terraform": {
        "plan.json": json.dumps({"format_version": "1.2", "terraform_version": "1.5.7", "planned_values": {}}),
        "main.tf": 'resource "null_resource" "x" {}\n',
    },
    "server": {
        "config.yaml": "server: {port: 8080}\n",
        "table.md": "| my | table |\n",
        "results.json": '{"mine": true}',
    },
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_foreign_folder_is_refused_with_or_without_overwrite(cache, tmp_path, capsys, kind, overwrite):
    out = tmp_path / kind
    out.mkdir()
    for name, text in FOREIGN[kind].items():
        (out / name).write_text(text)
    before = _files(out)
    assert not is_run(out)
    assert main(_train(cache, out) + (["--overwrite"] if overwrite else [])) == 2
    line = _one_error_line(capsys)
    assert "not a gamdss training folder" in line and str(out) in line
    assert _files(out) == before  # nothing replaced, nothing deleted


def test_a_run_is_known_by_its_tagged_plan_or_its_loadable_config(finished, tmp_path):
    assert is_run(finished)
    only_plan = tmp_path / "only_plan"
    only_plan.mkdir()
    shutil.copy(finished / "plan.json", only_plan / "plan.json")
    assert is_run(only_plan)
    only_config = tmp_path / "only_config"  # a run stopped before its plan, or an older one
    only_config.mkdir()
    shutil.copy(finished / "config.yaml", only_config / "config.yaml")
    assert is_run(only_config)


# ------------------------------------------------------------------------------ 2: user files
def test_overwrite_deletes_only_the_exact_files_a_run_writes(cache, finished, tmp_path):
    out = _copy(finished, tmp_path / "run")
    mine = {
        "confusion_baseline_paper.png": b"my figure",
        "tsne_notes.csv": b"my notes",
        "per_class_old.csv": b"mine",
        "folds/my_split_notes.json": b"{}",
        "folds/casme2_sub01.json": b"{}",  # the subject's name, but not the run's (hashed) file name
    }
    for name, data in mine.items():
        (out / name).write_bytes(data)
    own_fold_files = sorted(p.name for p in (out / "folds").iterdir() if p.name not in {"my_split_notes.json"})
    assert len(own_fold_files) == 2 * 2 + 1  # json + features of 2 subjects, and the user's look-alike
    # another config: only --overwrite may replace the run
    assert run_loso(
        load_config("tiny-cpu", toy_overrides(cache, out, *SMALL, "optim.lr=1e-3")), progress=False, overwrite=True
    )
    after = _files(out)
    assert {k: after[k] for k in mine} == mine
    assert json.loads((out / "results.json").read_text())["config"]["optim"]["lr"] == 1e-3


# ------------------------------------------------------------------------------ 3 and 6: fold config
def test_a_fold_of_another_config_is_not_reused_even_without_config_yaml(cache, finished, tmp_path, capsys):
    out = _copy(finished, tmp_path / "run")
    (out / "config.yaml").unlink()  # copied without its config
    record = json.loads(next((out / "folds").glob("*.json")).read_text())
    assert record["config_digest"] == config_digest(load_config("tiny-cpu", toy_overrides(cache, out, *SMALL)))
    before = (out / "predictions.csv").read_text()
    with pytest.raises(ConfigChangedError, match="fold casme2_sub0. was trained with another config"):
        run_loso(load_config("tiny-cpu", toy_overrides(cache, out, *SMALL, "optim.epochs=2")), progress=False)
    assert main(_train(cache, out, "optim.epochs=2")) == 2
    line = _one_error_line(capsys)
    assert "trained with another config" in line and "--overwrite" in line
    assert (out / "predictions.csv").read_text() == before
    # a result-neutral change (t-SNE off, another name) still resumes: nothing trained again
    trained: list[str] = []
    cfg = load_config("tiny-cpu", toy_overrides(cache, out, *SMALL, "run.tsne=false", "name=renamed"))
    run_loso(cfg, progress=False, on_fold_done=lambda s, r: trained.append(s))
    assert trained == [] and (out / "predictions.csv").read_text() == before
    # --overwrite trains the new config
    assert main(_train(cache, out, "optim.epochs=2") + ["--overwrite"]) == 0
    assert all(json.loads(p.read_text())["epochs_run"] == 2 for p in (out / "folds").glob("*.json"))


def test_num_threads_changes_results_so_it_is_part_of_the_compared_config(cache, finished, tmp_path):
    one = load_config("tiny-cpu", toy_overrides(cache, finished, *SMALL))  # the finished run's: 1 thread
    two = load_config("tiny-cpu", toy_overrides(cache, finished, *SMALL, "run.num_threads=2"))
    assert config_digest(one) != config_digest(two)
    other_folds = load_config("tiny-cpu", toy_overrides(cache, tmp_path, *SMALL, "run.folds=[casme2_sub01]"))
    assert config_digest(one) == config_digest(other_folds)  # volatile: where the run goes, not what it gives
    with pytest.raises(FileExistsError, match=r"run\.num_threads: 1 -> 2"):
        _prepare_output(finished, two, overwrite=False)


# ------------------------------------------------------------------------------ 4 and 5: checkpoints
def _fold_payload(cache: Path, out: Path, *extra: str):
    cfg = load_config("tiny-cpu", toy_overrides(cache, out, "data.image_size=16", "run.epoch_checkpoints=true", *extra))
    plan = prepare_run(cfg, progress=False)
    (out / "folds").mkdir(parents=True, exist_ok=True)
    return _payload(plan, plan.folds[0], out, progress=False)


def _same(a: dict, b: dict) -> bool:
    keys = ("history", "test", "epochs_run", "selected", "released")
    return {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}


def test_a_released_fold_resumed_after_its_stop_does_not_train_past_it(cache, tmp_path, monkeypatch):
    from gamdss.train import fold as fold_module

    payload = _fold_payload(cache, tmp_path / "run", "optim.epochs=12", "evaluation.protocol=released")
    uninterrupted = fold_module.run_fold(payload).result
    assert uninterrupted["epochs_run"] < 12  # the held-out subject was classified perfectly: it stopped
    Path(payload.checkpoint).unlink()

    real_final = fold_module._final_predictions

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("Ctrl-C after the stopping epoch's checkpoint, before the fold is saved")

    monkeypatch.setattr(fold_module, "_final_predictions", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fold_module.run_fold(payload)
    assert Path(payload.checkpoint).is_file()
    monkeypatch.setattr(fold_module, "_final_predictions", real_final)
    saved: list[int] = []
    real_save = fold_module._save_checkpoint
    monkeypatch.setattr(fold_module, "_save_checkpoint", lambda p, s: (saved.append(s["epoch"]), real_save(p, s)))
    resumed = fold_module.run_fold(payload).result
    assert saved == []  # no epoch trained after the stop
    assert _same(resumed, uninterrupted)


def _kill_after(monkeypatch, payload, epoch: int):
    from gamdss.train import fold as fold_module

    real_save = fold_module._save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        if state["epoch"] == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(fold_module, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fold_module.run_fold(payload)
    saved: list[int] = []
    monkeypatch.setattr(fold_module, "_save_checkpoint", lambda p, s: (saved.append(s["epoch"]), real_save(p, s)))
    return saved


def _with_config(payload, **changes: dict):
    config = json.loads(json.dumps(payload.config))
    for section, values in changes.items():
        config[section].update(values) if isinstance(values, dict) else config.__setitem__(section, values)
    return dataclasses.replace(payload, config=config)


def test_a_checkpoint_survives_result_neutral_changes_and_a_skipped_one_is_reported(
    cache, tmp_path, monkeypatch, capsys
):
    from gamdss.train import fold as fold_module

    payload = _fold_payload(cache, tmp_path / "run", "optim.epochs=2")
    reference = fold_module.run_fold(dataclasses.replace(payload, checkpoint=None)).result
    saved = _kill_after(monkeypatch, payload, 1)
    capsys.readouterr()
    neutral = _with_config(payload, run={"tsne": False, "folds": ["casme2_sub01"], "output_dir": "elsewhere"}, name="x")
    assert _same(fold_module.run_fold(neutral).result, reference)
    assert saved == [2] and capsys.readouterr().err == ""  # continued from epoch 1's checkpoint

    Path(payload.checkpoint).unlink()  # the finished fold's last checkpoint
    saved = _kill_after(monkeypatch, payload, 1)
    capsys.readouterr()
    fold_module.run_fold(_with_config(payload, optim={"lr": 1e-3}))
    assert saved == [1, 2]  # trained from epoch 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and payload.checkpoint in err[0] and "another config" in err[0], err


# ------------------------------------------------------------------------------ 7: stale t-SNE
def test_a_rerun_without_tsne_removes_the_earlier_tsne_files(cache, finished, tmp_path):
    out = _copy(finished, tmp_path / "run")
    assert (out / "tsne_rise.png").is_file() and (out / "tsne_fall.csv").is_file()
    (out / "tsne_notes.csv").write_text("mine")
    run_loso(load_config("tiny-cpu", toy_overrides(cache, out, *SMALL, "run.tsne=false")), progress=False)
    assert sorted(p.name for p in out.glob("tsne_*")) == ["tsne_notes.csv"]


# ------------------------------------------------------------------------------ 8: a failing fold
def test_a_fold_that_fails_while_training_is_a_failed_run_naming_it(cache, tmp_path, monkeypatch, capsys):
    from gamdss.train import loso

    def broken(payload):
        raise ValueError(
            f"\x1b[31mTraceback (most recent call last):\x1b[0m\n  ...\nshape [{payload.subject}] is wrong"
        )

    monkeypatch.setattr(loso, "run_fold", broken)
    assert main(_train(cache, tmp_path / "run")) == 1
    line = _one_error_line(capsys)
    assert "fold casme2_sub01 failed" in line and "ValueError: shape [casme2_sub01] is wrong" in line
    assert "\x1b" not in line and "Traceback" not in line


def test_a_ray_fold_failure_names_the_fold_and_the_cause(cache, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed")
    from gamdss.train.executors import FoldFailedError, RayExecutor

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - any start failure means: cannot test here
        pytest.skip(f"a local Ray instance cannot start here: {exc}")
    try:
        payloads = [_Payload("casme2_sub01"), _Payload("casme2_sub02")]
        with pytest.raises(FoldFailedError) as info:
            RayExecutor(num_gpus_per_fold=0).run(_fail_on_sub02, payloads, lambda p, o: None)
    finally:
        ray.shutdown()
    assert info.value.subject == "casme2_sub02"
    assert str(info.value) == "fold casme2_sub02 failed while training: RuntimeError: size mismatch 3 != 5"


@dataclasses.dataclass
class _Payload:
    subject: str


def _fail_on_sub02(payload: _Payload) -> str:
    if payload.subject == "casme2_sub02":
        raise RuntimeError("size mismatch 3 != 5")
    return payload.subject


# ------------------------------------------------------------------------------ 9: model checkpoints
def _state_dict(num_classes: int, path: Path) -> Path:
    from gamdss.models import build_model

    torch.manual_seed(0)
    model = build_model("gamdss_tiny", num_classes, phases=("rise", "fall"), in_chans=3, img_size=16)
    torch.save(model.state_dict(), path)
    return path


def test_a_model_checkpoint_is_checked_with_the_protocols_classes_and_named(cache, tmp_path):
    from gamdss.train.fold import check_model_config, configured_model

    three = _state_dict(3, tmp_path / "three.pt")  # casme2-3: 3 classes
    cfg = load_config("tiny-cpu", toy_overrides(cache, tmp_path / "run", *SMALL, f"model.kwargs.checkpoint={three}"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loading into a meta model warned once per tensor
        assert prepare_run(cfg, progress=False).num_classes == 3
    expected = torch.load(three, weights_only=True)
    loaded = configured_model(cfg, 3)  # what each fold builds: the file's weights
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())

    five = _state_dict(5, tmp_path / "five.pt")
    (tmp_path / "trunc.pt").write_bytes(three.read_bytes()[:100])
    for path, why in (
        (five, r"does not fit the model: .*: \[5, 256\] in the file, \[3, 256\] in the model"),
        (tmp_path / "missing.pt", "does not exist"),
        (tmp_path / "trunc.pt", "does not load"),
    ):
        bad = load_config("tiny-cpu", toy_overrides(cache, tmp_path / "run", *SMALL, f"model.kwargs.checkpoint={path}"))
        with pytest.raises(ConfigError, match=rf"checkpoint {path} {why}"):
            check_model_config(bad, 3)


# ------------------------------------------------------------------------------ second review
def test_overwrite_over_a_run_made_before_the_plan_tag_removes_its_other_subjects_folds(cache, finished, tmp_path):
    """A run from before the format tag (plan.json without it) planned a subject the new run
    does not: --overwrite removes that subject's fold files too (they would be stale)."""
    out = _copy(finished, tmp_path / "run")
    plan = json.loads((out / "plan.json").read_text())
    plan.pop("format")
    plan["folds"] = [*plan["folds"], {**plan["folds"][0], "subject": "casme2_sub09"}]
    (out / "plan.json").write_text(json.dumps(plan))
    from gamdss.train.layout import fold_paths

    stale = fold_paths(out, "casme2_sub09")["json"]
    stale.write_text("{}")
    assert is_run(out)
    run_loso(
        load_config("tiny-cpu", toy_overrides(cache, out, *SMALL, "optim.lr=1e-3")), progress=False, overwrite=True
    )
    assert not stale.exists()


def test_the_compared_config_holds_what_changes_results_and_nothing_else(cache, tmp_path):
    """The digest: a model checkpoint counts by its bytes (another file at the same path is
    another config; the same bytes elsewhere are not); with run.num_threads 0 the executor
    counts (a Ray task runs one thread), with it set it does not; DataLoader workers and
    epoch checkpoints do not change results (a fold trains the same with them) and do not
    count."""

    def digest(*extra: str) -> str:
        return config_digest(load_config("tiny-cpu", toy_overrides(cache, tmp_path / "out", *SMALL, *extra)))

    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"weights one")
    b.write_bytes(b"weights one")
    assert digest(f"model.kwargs={{checkpoint: {a}}}") == digest(f"model.kwargs={{checkpoint: {b}}}")
    first = digest(f"model.kwargs={{checkpoint: {a}}}")
    a.write_bytes(b"weights two")
    assert digest(f"model.kwargs={{checkpoint: {a}}}") != first
    assert digest("run.num_threads=0", "run.executor=local") != digest("run.num_threads=0", "run.executor=ray")
    assert digest("run.num_threads=2", "run.executor=local") == digest("run.num_threads=2", "run.executor=ray")
    assert digest("data.num_workers=0", "run.epoch_checkpoints=false") == digest(
        "data.num_workers=2", "run.epoch_checkpoints=true"
    )


# ------------------------------------------------------------------------------ 10: CONFIG in the run folder
def _train_with(config: Path, out: Path, *overrides: str) -> list[str]:
    return ["train", str(config), *overrides, "--output", str(out), "--quiet"]


def test_the_runs_own_config_given_as_config_is_never_rewritten(cache, finished, tmp_path, capsys):
    out = _copy(finished, tmp_path / "moved")  # its config.yaml names the folder it was made in
    own = out / "config.yaml"
    before = own.read_bytes()
    assert main(_train_with(own, out)) == 0  # the README's resume: the run's own config, as it is
    assert own.read_bytes() == before
    results = (out / "results.json").read_text()
    # an override would have to be written into the run's record: refused, nothing written
    assert main(_train_with(own, out, "optim.epochs=2")) == 2
    line = _one_error_line(capsys)
    assert f"CONFIG {own} is the run's own record of its config" in line
    assert "optim.epochs: 1 -> 2" in line and "copy it elsewhere" in line
    assert own.read_bytes() == before and (out / "results.json").read_text() == results
    assert main(_train_with(own, out, "optim.epochs=2", "--overwrite")) == 2  # not even to replace the run
    assert own.read_bytes() == before and (out / "results.json").read_text() == results


def test_a_hand_written_config_in_the_run_folder_keeps_its_comments(cache, tmp_path, capsys):
    out = tmp_path / "myexp"
    out.mkdir()
    own = out / "config.yaml"
    cfg = load_config("tiny-cpu", toy_overrides(cache, out, *SMALL))
    own.write_text("# my experiment: lr sweep, see notes.md\n" + cfg.to_yaml())
    before = own.read_bytes()
    assert main(_train_with(own, out, "run.folds=[casme2_sub01]")) == 2
    assert "run.folds: [] -> ['casme2_sub01']" in _one_error_line(capsys)
    assert own.read_bytes() == before and not (out / "plan.json").exists()
    assert main(_train_with(own, out)) == 0
    assert own.read_bytes() == before and (out / "results.json").is_file()
    assert main(_train_with(own, out, "--overwrite")) == 0  # replaces the run, not its config file
    assert own.read_bytes() == before


# ------------------------------------------------------------------------------ 11: run.folds subsets
def test_a_run_folds_subset_pools_every_finished_fold_of_the_folder_and_says_when_some_are_missing(
    cache, finished, tmp_path
):
    out = _copy(finished, tmp_path / "run")
    full = {name: (out / name).read_text() for name in ("table.md", "table.tex", "predictions.csv", "folds.csv")}
    trained: list[str] = []
    cfg = load_config("tiny-cpu", toy_overrides(cache, out, *SMALL, "run.folds=[casme2_sub01]"))
    results = run_loso(cfg, progress=False, on_fold_done=lambda s, r: trained.append(s))
    assert trained == []  # finished: nothing trained, and the pooled results still cover both folds
    assert results["num_folds"] == 2
    assert (results["num_folds"], results["num_planned_folds"], results["missing_folds"]) == (2, 2, [])
    assert {name: (out / name).read_text() for name in full} == full
    assert "of 2 folds" not in (out / "table.md").read_text()
    # without the other fold's record, the results say plainly that they cover one fold of two
    for path in (out / "folds").glob("casme2_sub02-*"):
        path.unlink()
    results = run_loso(cfg, progress=False)
    assert (results["num_folds"], results["num_planned_folds"], results["missing_folds"]) == (1, 2, ["casme2_sub02"])
    note = "pooled over 1 of 2 folds, not all of the LOSO; not finished: casme2_sub02."
    assert note in (out / "table.md").read_text() and note.replace("_", r"\_") in (out / "table.tex").read_text()
    assert [len(f["test"]) > 0 for f in json.loads((out / "plan.json").read_text())["folds"]] == [True, True]


# ------------------------------------------------------------------------------ 12: run.device=auto
@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks what run.device=auto records on a machine without CUDA (cpu, no AMP)"
)
def test_a_resume_with_device_auto_never_mixes_cpu_folds_with_cuda_amp_folds(cache, tmp_path, monkeypatch, capsys):
    from gamdss.train.loso import load_fold

    out = tmp_path / "run"
    auto = ("run.device=auto", "run.amp=true", "run.folds=[casme2_sub01]")
    assert main(_train(cache, out, *auto)) == 0  # no CUDA here: cpu without AMP
    capsys.readouterr()
    path = next((out / "folds").glob("*.json"))
    record = json.loads(path.read_text())
    assert (record["device"], record["amp"]) == ("cpu", False)
    cfg = load_config("tiny-cpu", toy_overrides(cache, out, *SMALL, *auto))
    fold = prepare_run(cfg, progress=False).folds[0]
    assert load_fold(out, fold.subject, cfg, fold.fingerprint) is not None
    # resumed where auto gives CUDA with AMP: the finished CPU fold is not pooled with AMP ones
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigChangedError, match="trained on cpu without AMP and run.device=auto gives cuda with AMP"):
        load_fold(out, fold.subject, cfg, fold.fingerprint)
    monkeypatch.undo()
    # started on a CUDA machine with AMP, resumed on this one
    path.write_text(json.dumps({**record, "device": "cuda:0", "amp": True}))
    before = _files(out)
    assert main(_train(cache, out, *auto)) == 2
    line = _one_error_line(capsys)
    assert "trained on cuda with AMP and run.device=auto gives cpu without AMP here" in line
    assert "resume where auto gives cuda (a machine with CUDA)" in line and "--overwrite" in line
    assert _files(out) == before
