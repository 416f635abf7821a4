"""The LOSO trainer on a learnable toy cache: learning, no leakage, resume, seeds, protocols."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gamdss.train import load_config
from gamdss.train.config import RELEASED_NOTE
from gamdss.train.dataset import KeyframeDataset, build_samples
from gamdss.train.loso import prepare_run, run_loso
from gamdss.train.seeds import fold_seed
from train_fixtures import make_toy_cache, toy_overrides

SUBJECTS = ["casme2_sub01", "casme2_sub02", "casme2_sub03"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("loso")
    cache = make_toy_cache(root / "cache")
    cfg = load_config("tiny-cpu", toy_overrides(root / "cache", root / "run"))
    results = run_loso(cfg, progress=False)
    return {"root": root, "cache": cache, "cfg": cfg, "results": results, "out": root / "run"}


def _folds(out: Path) -> dict[str, dict]:
    return {json.loads(p.read_text())["subject"]: json.loads(p.read_text()) for p in (out / "folds").glob("*.json")}


def _kill_after_epoch(monkeypatch, payload, epoch: int):
    """Run the fold until its checkpoint of ``epoch`` is saved, then simulate a kill; returns
    the real checkpoint writer (restore it with monkeypatch to go on)."""
    from gamdss.train import fold as fold_module

    real_save = fold_module._save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        if state["epoch"] == epoch:
            raise KeyboardInterrupt(f"simulated kill after epoch {epoch}")

    monkeypatch.setattr(fold_module, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fold_module.run_fold(payload)
    return real_save


def test_learns_a_separable_toy_problem(toy):
    res = toy["results"]
    assert res["protocol"] == "honest" and not res["optimistic"]
    assert res["num_folds"] == 3 and res["num_samples"] == 27
    for mode in ("rise", "fall", "fused"):
        assert res["modes"][mode]["acc"] >= 0.95, (mode, res["modes"][mode]["acc"])
    for name in (
        "results.json",
        "predictions.csv",
        "folds.csv",
        "table.md",
        "table.tex",
        "per_class_fused.csv",
        "confusion_fused.png",
        "tsne_rise.png",
        "tsne_rise.csv",
        "config.yaml",
        "reselection.csv",
    ):
        assert (toy["out"] / name).is_file(), name
    assert "honest protocol" in (toy["out"] / "table.md").read_text()
    assert RELEASED_NOTE not in (toy["out"] / "table.md").read_text()


def test_no_test_sample_is_in_its_folds_training_set(toy):
    folds = _folds(toy["out"])
    assert sorted(folds) == SUBJECTS
    all_keys = [f"casme2:{e.clip_id}" for e in toy["cache"].entries]
    tested = []
    for subject, rec in folds.items():
        test_keys = {t["key"] for t in rec["test"]}
        assert test_keys.isdisjoint(rec["train_keys"])
        assert {t["subject"] for t in rec["test"]} == {subject}
        # no clip of the held-out subject is trained on
        assert not any(k.startswith(f"casme2:{subject.split('_')[1]}/") for k in rec["train_keys"])
        assert len(rec["train_keys"]) + len(test_keys) == len(all_keys)
        tested += test_keys
    assert sorted(tested) == sorted(all_keys)  # every sample tested exactly once


def test_reselection_applies_to_training_subjects_only_by_default(toy):
    cache = toy["cache"]
    with open(toy["out"] / "reselection.csv") as fh:
        reselected = {
            r["clip_id"]: tuple(int(r[f"reselected_{k}"]) for k in ("onset", "apex", "offset"))
            for r in csv.DictReader(fh)
        }
    annotated = {e.clip_id: (e.onset_index, e.apex_index, e.offset_index) for e in cache.entries}
    assert any(reselected[c] != annotated[c] for c in annotated)  # the toy annotations are off
    for rec in _folds(toy["out"]).values():
        for key, kf in zip(rec["train_keys"], rec["train_keyframes"]):
            assert tuple(kf) == reselected[key.split(":", 1)[1]]
        for t in rec["test"]:
            assert tuple(t["keyframes"]) == annotated[t["key"].split(":", 1)[1]]


def test_apply_to_test_uses_reselected_keyframes_for_held_out_clips(toy):
    cfg = load_config(
        "tiny-cpu", toy_overrides(toy["root"] / "cache", toy["root"] / "unused", "reselection.apply_to_test=true")
    )
    plan = prepare_run(cfg, progress=False)
    test = [plan.samples[i] for i in plan.folds[0].test]
    ds = KeyframeDataset(test, cfg.data.caches, image_size=32, use_reselected=True)
    assert [ds.keyframes(i) for i in range(len(ds))] == [s.reselected for s in test]


def test_resume_after_a_kill_gives_identical_pooled_results(toy, tmp_path):
    cfg = load_config("tiny-cpu", toy_overrides(toy["root"] / "cache", tmp_path / "run"))

    def killed(subject, record):
        raise KeyboardInterrupt(f"simulated kill after fold {subject}")

    with pytest.raises(KeyboardInterrupt):
        run_loso(cfg, progress=False, on_fold_done=killed)
    assert len(_folds(tmp_path / "run")) == 1
    first = next(iter(_folds(tmp_path / "run")))
    trained = []
    resumed = run_loso(cfg, progress=False, on_fold_done=lambda s, r: trained.append(s))
    assert first not in trained and len(trained) == 2  # the finished fold is not redone
    assert resumed["modes"] == toy["results"]["modes"]
    assert (tmp_path / "run" / "predictions.csv").read_text() == (toy["out"] / "predictions.csv").read_text()


def test_a_folds_result_does_not_depend_on_fold_order(toy, tmp_path):
    assert fold_seed(2, "casme2_sub03") == fold_seed(2, "casme2_sub03") != fold_seed(2, "casme2_sub01")
    assert fold_seed(2, "casme2_sub03") != fold_seed(3, "casme2_sub03")
    cfg = load_config("tiny-cpu", toy_overrides(toy["root"] / "cache", tmp_path / "alone", "run.folds=[casme2_sub03]"))
    run_loso(cfg, progress=False)
    alone = _folds(tmp_path / "alone")["casme2_sub03"]
    in_full_run = _folds(toy["out"])["casme2_sub03"]  # trained third there, first here
    assert alone["test"] == in_full_run["test"]
    assert alone["history"] == in_full_run["history"]


def test_an_existing_run_with_another_config_is_not_overwritten(toy):
    cfg = load_config("tiny-cpu", toy_overrides(toy["root"] / "cache", toy["out"], "optim.epochs=2"))
    before = (toy["out"] / "results.json").read_text()
    with pytest.raises(FileExistsError, match="optim.epochs: 6 -> 2"):
        run_loso(cfg, progress=False)
    assert (toy["out"] / "results.json").read_text() == before


def test_released_protocol_is_flagged_in_every_file(toy, tmp_path):
    cfg = load_config(
        "tiny-cpu",
        toy_overrides(
            toy["root"] / "cache",
            tmp_path / "rel",
            "optim.epochs=2",
            "evaluation.protocol=released",
            "run.folds=[casme2_sub01]",
        ),
    )
    res = run_loso(cfg, progress=False)
    out = tmp_path / "rel"
    assert res["optimistic"] and res["warning"] == RELEASED_NOTE
    for name in ("results.json", "table.md", "table.tex"):
        assert RELEASED_NOTE in (out / name).read_text(), name
    for name in ("predictions.csv", "folds.csv", "per_class_fused.csv", "tsne_rise.csv"):
        with open(out / name) as fh:
            assert {r["protocol"] for r in csv.DictReader(fh)} == {"released"}, name
    rec = _folds(out)["casme2_sub01"]
    assert rec["protocol_note"] == RELEASED_NOTE
    assert 1 <= rec["released"]["acc_epoch"]["rise"] <= rec["epochs_run"] <= 2


def test_inner_validation_selects_on_training_subjects(toy, tmp_path):
    cfg = load_config(
        "tiny-cpu",
        toy_overrides(
            toy["root"] / "cache",
            tmp_path / "iv",
            "optim.epochs=2",
            "evaluation.protocol=inner_val",
            "run.folds=[casme2_sub02]",
        ),
    )
    run_loso(cfg, progress=False)
    rec = _folds(tmp_path / "iv")["casme2_sub02"]
    assert len(rec["val_subjects"]) == 1 and "casme2_sub02" not in rec["val_subjects"]
    assert set(rec["val_keys"]).isdisjoint(rec["train_keys"])
    assert not {t["key"] for t in rec["test"]} & (set(rec["val_keys"]) | set(rec["train_keys"]))
    assert 1 <= rec["selected"]["epoch"] <= 2


def test_gamdss_train_command_prints_the_summary(toy, tmp_path, capsys):
    from gamdss.cli import main

    status = main(
        [
            "train",
            "tiny-cpu",
            *toy_overrides(toy["root"] / "cache", tmp_path / "cli"),
            "optim.epochs=1",
            "run.folds=[casme2_sub01]",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "honest protocol" in out and "ACC" in out and "full" in out
    assert (tmp_path / "cli" / "table.md").is_file()
    # a second start with another config is refused with a clear message, not a traceback
    status = main(
        [
            "train",
            "tiny-cpu",
            *toy_overrides(toy["root"] / "cache", tmp_path / "cli"),
            "optim.epochs=2",
            "run.folds=[casme2_sub01]",
            "--quiet",
        ]
    )
    assert status == 2 and "--overwrite" in capsys.readouterr().err


def test_bad_cache_dataset_is_named(toy, tmp_path):
    from gamdss.data.protocols import get_protocol

    with pytest.raises(ValueError, match="not one of protocol 'samm-5'"):
        build_samples([toy["cache"]], get_protocol("samm-5"))


def test_flow_input_trains_and_predicts(toy, tmp_path):
    cfg = load_config(
        "tiny-cpu",
        toy_overrides(
            toy["root"] / "cache",
            tmp_path / "flow",
            "optim.epochs=1",
            "data.input_kind=flow",
            "run.folds=[casme2_sub01]",
        ),
    )
    res = run_loso(cfg, progress=False)
    assert res["num_samples"] == 9 and 0.0 <= res["modes"]["fused"]["acc"] <= 1.0


def test_a_fold_killed_mid_way_resumes_from_its_epoch_checkpoint(toy, tmp_path, monkeypatch):
    from gamdss.train import fold as fold_module
    from gamdss.train.loso import _payload

    cfg = load_config(
        "tiny-cpu",
        toy_overrides(toy["root"] / "cache", tmp_path / "ck", "optim.epochs=3", "run.epoch_checkpoints=true"),
    )
    plan = prepare_run(cfg, progress=False)
    payload = _payload(plan, plan.folds[0], tmp_path / "ck", progress=False)
    uninterrupted = fold_module.run_fold(payload)
    Path(payload.checkpoint).unlink()

    real_save = _kill_after_epoch(monkeypatch, payload, 2)
    monkeypatch.setattr(fold_module, "_save_checkpoint", real_save)
    epochs_seen = []
    monkeypatch.setattr(fold_module, "_save_checkpoint", lambda p, s: (epochs_seen.append(s["epoch"]), real_save(p, s)))
    resumed = fold_module.run_fold(payload)
    assert epochs_seen == [3]  # only the last epoch was trained again
    assert resumed.result["test"] == uninterrupted.result["test"]
    assert resumed.result["history"] == uninterrupted.result["history"]


def test_worker_processes_do_not_change_a_fold(toy, tmp_path):
    from gamdss.train import fold as fold_module
    from gamdss.train.loso import _payload

    results = []
    for workers in (0, 2):
        cfg = load_config(
            "tiny-cpu",
            toy_overrides(
                toy["root"] / "cache", tmp_path / f"w{workers}", "optim.epochs=1", f"data.num_workers={workers}"
            ),
        )
        plan = prepare_run(cfg, progress=False)
        results.append(fold_module.run_fold(_payload(plan, plan.folds[0], tmp_path / f"w{workers}", False)).result)
    assert results[0]["test"] == results[1]["test"] and results[0]["history"] == results[1]["history"]


def _small_run(tmp_path, *extra):
    """A 2-subject toy cache and a 1-epoch config writing to tmp_path/run."""
    make_toy_cache(tmp_path / "cache", n_subjects=2, clips_per_class=1, frames=16, size=16, seed=0)
    return load_config(
        "tiny-cpu", toy_overrides(tmp_path / "cache", tmp_path / "run", "optim.epochs=1", "data.image_size=16", *extra)
    )


def test_a_cache_rebuilt_with_other_clips_is_not_mixed_into_a_finished_run(tmp_path):
    import shutil

    from gamdss.train.loso import DataChangedError

    cfg = _small_run(tmp_path)
    first = run_loso(cfg, progress=False)
    assert first["num_samples"] == 6
    out = tmp_path / "run"
    saved = {name: (out / name).read_text() for name in ("results.json", "predictions.csv", "plan.json")}
    # the same path now holds another cache: more clips per subject, other pixels and annotations
    shutil.rmtree(tmp_path / "cache")
    make_toy_cache(tmp_path / "cache", n_subjects=2, clips_per_class=2, frames=16, size=16, seed=5)
    # clip ids number clips across subjects: before sub01/EP00-02, sub02/EP03-05; now sub01/EP00-05,
    # sub02/EP06-11 -> 9 added, 3 removed (sub02/EP03-05), 3 kept with other pixels (sub01/EP00-02)
    with pytest.raises(
        DataChangedError,
        match=r"changed since this run started: 9 samples added, 3 removed, "
        r"3 changed \(e\.g\. added casme2:sub01/EP03; removed "
        r"casme2:sub02/EP03; changed casme2:sub01/EP00: ",
    ) as info:
        run_loso(cfg, progress=False)
    assert "--overwrite" in str(info.value) and "sha256" in str(info.value)
    assert {name: (out / name).read_text() for name in saved} == saved  # nothing rewritten from mixed folds
    # overwrite=True starts afresh on the new cache
    assert run_loso(cfg, progress=False, overwrite=True)["num_samples"] == 12


def test_a_changed_keyframe_annotation_refuses_to_resume(tmp_path):
    from gamdss.train.loso import DataChangedError

    cfg = _small_run(tmp_path, "run.folds=[casme2_sub01]")
    run_loso(cfg, progress=False)
    out = tmp_path / "run"
    results = (out / "results.json").read_text()
    # unchanged data resumes: the finished fold is loaded, not trained again
    trained = []
    run_loso(cfg, progress=False, on_fold_done=lambda s, r: trained.append(s))
    assert trained == []
    # correct one apex annotation in the manifest (same pixels)
    manifest = tmp_path / "cache" / "manifest.json"
    data = json.loads(manifest.read_text())
    entry = next(e for e in data["clips"] if e["clip_id"] == "sub02/EP04")
    numbers = entry["frame_numbers"]
    i = numbers.index(entry["apex"])
    new_i = i + 1 if entry["apex"] != entry["offset"] else i - 1
    entry["apex"] = numbers[new_i]
    manifest.write_text(json.dumps(data))
    with pytest.raises(
        DataChangedError,
        match=rf"0 samples added, 0 removed, 1 changed \(e\.g\. changed "
        rf"casme2:sub02/EP04: annotated \[\d+, {i}, \d+\] -> "
        rf"\[\d+, {new_i}, \d+\]",
    ):
        run_loso(cfg, progress=False)
    assert (out / "results.json").read_text() == results
    # a plan.json without a fingerprint (an older run) still cannot mix: the fold record is checked
    plan = json.loads((out / "plan.json").read_text())
    del plan["fingerprint"]
    (out / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(DataChangedError, match="fold casme2_sub01 was trained on other clips"):
        run_loso(cfg, progress=False)
    assert (out / "results.json").read_text() == results


def test_an_epoch_checkpoint_of_other_data_is_not_continued(tmp_path, monkeypatch):
    import dataclasses

    from gamdss.train import fold as fold_module
    from gamdss.train.loso import _payload

    cfg = _small_run(tmp_path, "optim.epochs=3", "run.epoch_checkpoints=true")
    plan = prepare_run(cfg, progress=False)
    payload = _payload(plan, plan.folds[0], tmp_path / "run", progress=False)
    (tmp_path / "run" / "folds").mkdir(parents=True)
    real_save = _kill_after_epoch(monkeypatch, payload, 2)
    epochs_seen = []
    monkeypatch.setattr(fold_module, "_save_checkpoint", lambda p, s: (epochs_seen.append(s["epoch"]), real_save(p, s)))
    # one training clip's pixels changed (another digest) while the fold was down
    changed = dataclasses.replace(payload.train[0], sha256="0" * 64)
    other = dataclasses.replace(payload, train=[changed, *payload.train[1:]])
    with pytest.warns(UserWarning, match="data changed since it was written"):
        result = fold_module.run_fold(other)
    assert epochs_seen == [1, 2, 3]  # trained from scratch, not continued
    assert result.result["data_fingerprint"] != fold_module.fold_fingerprint(payload.train, payload.val, payload.test)


def _fake_run(out: Path, cfg) -> dict[Path, str]:
    """A run folder as an earlier run leaves it, plus files of the user's."""
    (out / "folds").mkdir(parents=True)
    cfg.save(out / "config.yaml")
    files = {
        out / "plan.json": "{}",
        out / "results.json": "{}",
        out / "table.md": "t",
        out / "folds" / "s1-0.json": "{}",
        out / "folds" / "s1-0.features.npz": "npz",
        out / "notes.txt": "mine",
        out / "folds" / "notes.txt": "mine too",
    }
    for path, text in files.items():
        path.write_text(text)
    return files


def test_overwrite_keeps_the_old_run_when_the_new_one_cannot_start(tmp_path):
    out = tmp_path / "run"
    cfg = load_config("tiny-cpu", toy_overrides(tmp_path / "cache", out))
    files = _fake_run(out, cfg)
    bad = load_config("tiny-cpu", toy_overrides(tmp_path / "no-such-cache", out))
    with pytest.raises(FileNotFoundError):
        run_loso(bad, overwrite=True, progress=False)
    assert all(p.read_text() == t for p, t in files.items()) and (out / "config.yaml").is_file()


def test_remove_outputs_deletes_only_the_runs_own_files(tmp_path):
    from gamdss.train.loso import _remove_outputs

    out = tmp_path / "run"
    _fake_run(out, load_config("tiny-cpu", toy_overrides(tmp_path / "cache", out)))
    _remove_outputs(out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["folds", "folds/notes.txt", "notes.txt"]


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    from gamdss.train.loso import _prepare_output, _remove_outputs

    out = tmp_path / "mine"
    (out / "folds").mkdir(parents=True)
    (out / "reselection.csv").write_text("my table")
    (out / "folds" / "a.json").write_text("{}")
    cfg = load_config("tiny-cpu", toy_overrides(tmp_path / "cache", out))
    with pytest.raises(FileExistsError, match="not a gamdss training run"):
        _prepare_output(out, cfg, overwrite=True)
    _remove_outputs(out)  # a no-op outside a run
    assert (out / "reselection.csv").read_text() == "my table" and (out / "folds" / "a.json").is_file()
    # an empty folder (or one with only empty folders) is fine
    empty = tmp_path / "empty"
    (empty / "folds").mkdir(parents=True)
    _prepare_output(empty, cfg, overwrite=False)
