"""The LOSO trainer on a learnable toy cache: learning, no leakage, resume, seeds, protocols."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gamdss.train import load_config
from gamdss.train.config import RELEASED_NOTE
from gamdss.train.dataset import KeyframeDataset, build_samples
from gamdss.train.layout import fold_paths
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
            r["clip_id"]: tuple(int(r[f"reselected_{k}_index"]) for k in ("onset", "apex", "offset"))
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
    with pytest.raises(FileExistsError, match="optim.epochs: 12 -> 2"):
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
    assert "honest protocol" in out and "ACC" in out and "fused (rise+fall)" in out
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


def test_samples_do_not_depend_on_the_manifests_clip_order(toy, tmp_path):
    """A cache made by several workers (or an older gamdss) may list its clips in any order;
    the same clips must give the same samples in the same order, so a seed gives one run."""
    import json
    import shutil

    from gamdss.data.cache import FrameCache
    from gamdss.data.protocols import get_protocol

    copy = tmp_path / "cache"
    shutil.copytree(toy["cache"].root, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["clips"] = manifest["clips"][::-1]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    reversed_cache = FrameCache(copy)
    assert [e.clip_id for e in reversed_cache.entries] != [e.clip_id for e in toy["cache"].entries]
    protocol = get_protocol("casme2-5")
    original = build_samples([toy["cache"]], protocol)[0]
    assert [s.key for s in build_samples([reversed_cache], protocol)[0]] == [s.key for s in original]
    assert [s.key for s in original] == sorted(s.key for s in original)


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


def test_flow_is_computed_once_before_the_folds(toy, tmp_path, monkeypatch):
    """Folds only read flow: every field they need was computed before the first one started."""
    from gamdss.data.flow_cache import FlowStore
    from gamdss.train import fold as fold_module

    computed: list[tuple[str, int]] = []  # (where, fields computed)
    where = ["before the folds"]
    real_compute, real_run_fold = FlowStore.compute, fold_module.run_fold

    def compute(self, pairs, *args, **kwargs):
        report = real_compute(self, pairs, *args, **kwargs)
        computed.append((where[0], len(report.done)))
        return report

    def run_fold(payload):
        where[0] = "in a fold"
        return real_run_fold(payload)

    monkeypatch.setattr(FlowStore, "compute", compute)
    monkeypatch.setattr(fold_module, "run_fold", run_fold)
    monkeypatch.setattr("gamdss.train.loso.run_fold", run_fold, raising=False)
    cfg = load_config(
        "tiny-cpu",
        toy_overrides(
            toy["root"] / "cache_flow_once",
            tmp_path / "flow",
            "optim.epochs=1",
            "data.input_kind=flow",
            "data.flow=farneback",
            "run.folds=[casme2_sub01, casme2_sub02]",
        ),
    )
    import shutil

    # a copy of the cache without the flow other tests computed
    shutil.copytree(toy["root"] / "cache", toy["root"] / "cache_flow_once", ignore=shutil.ignore_patterns("flow"))
    run_loso(cfg, progress=False)
    before = sum(n for w, n in computed if w == "before the folds")
    in_folds = [n for w, n in computed if w == "in a fold"]
    assert before > 0 and in_folds and sum(in_folds) == 0, computed


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


def test_an_epoch_checkpoint_of_other_data_is_not_continued(tmp_path, monkeypatch, capsys):
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
    capsys.readouterr()
    result = fold_module.run_fold(other)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "data changed since it was written" in err[0] and payload.checkpoint in err[0]
    assert epochs_seen == [1, 2, 3]  # trained from scratch, not continued
    assert result.result["data_fingerprint"] != fold_module.fold_fingerprint(payload.train, payload.val, payload.test)


def _fake_run(out: Path, cfg) -> dict[Path, str]:
    """A run folder as an earlier run leaves it, plus files of the user's."""
    (out / "folds").mkdir(parents=True)
    cfg.save(out / "config.yaml")
    fold = fold_paths(out, "s1")
    files = {
        out / "plan.json": "{}",
        out / "results.json": "{}",
        out / "table.md": "t",
        fold["json"]: "{}",
        fold["features"]: "npz",
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
    _remove_outputs(out, ["s1"])
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["folds", "folds/notes.txt", "notes.txt"]


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    from gamdss.train.loso import _prepare_output, _remove_outputs

    out = tmp_path / "mine"
    (out / "folds").mkdir(parents=True)
    (out / "reselection.csv").write_text("my table")
    (out / "folds" / "a.json").write_text("{}")
    cfg = load_config("tiny-cpu", toy_overrides(tmp_path / "cache", out))
    with pytest.raises(FileExistsError, match="not a gamdss training folder"):
        _prepare_output(out, cfg, overwrite=True)
    _remove_outputs(out, ["a"])  # a no-op outside a run
    assert (out / "reselection.csv").read_text() == "my table" and (out / "folds" / "a.json").is_file()
    # an empty folder (or one with only empty folders) is fine
    empty = tmp_path / "empty"
    (empty / "folds").mkdir(parents=True)
    _prepare_output(empty, cfg, overwrite=False)


def _toy_reselection(cache, path, **changes):
    """A `gamdss reselect`-style results file of ``cache`` (settings in its columns)."""
    from gamdss.data.reselection_files import save_reselection
    from gamdss.reselection.run import reselect_cache
    from gamdss.settings.reselection import preset

    settings = preset("paper", **changes)
    results = reselect_cache(cache, settings, progress=False)
    save_reselection(results, path, cache=cache, settings=settings)
    return {r.clip_id: tuple(r.reselected) for r in results}


def test_training_reads_a_reselect_output_instead_of_reselecting(toy, tmp_path):
    # The file's keyframes and settings are used, not the config's (lam 0.3 there, 0.5 here).
    expected = _toy_reselection(toy["cache"], tmp_path / "r" / "reselection.csv", lam_rise=0.5, lam_fall=0.5)
    computed = _toy_reselection(toy["cache"], tmp_path / "c.csv", lam_rise=0.3, lam_fall=0.3)
    assert expected != computed  # the two settings pick other keyframes on the toy clips
    files = f"reselection.files=[{tmp_path / 'r' / 'reselection.csv'}]"
    plan = prepare_run(load_config("tiny-cpu", toy_overrides(toy["root"] / "cache", tmp_path / "x", files)), False)
    assert {s.clip_id: s.reselected for s in plan.samples} == expected
    assert plan.reselection_sources == [str(tmp_path / "r" / "reselection.csv")]
    assert plan.reselection_settings["lam_rise"] == 0.5
    # without files, training computes them with the config's settings, in the same columns
    plan = prepare_run(load_config("tiny-cpu", toy_overrides(toy["root"] / "cache", tmp_path / "y")), False)
    assert {s.clip_id: s.reselected for s in plan.samples} == computed
    row = plan.reselection[0]
    assert row["cache"] == "0" and "annotated_onset_index" in row and "reselected_apex_frame" in row
    assert plan.reselection_sources == ["computed"]


def test_the_runs_reselection_csv_is_the_reselect_scheme(toy):
    from gamdss.data.reselection_files import load_reselection

    results = load_reselection(toy["out"] / "reselection.csv")  # the reader of `gamdss reselect` output
    assert {r.clip_id for r in results} == {e.clip_id for e in toy["cache"].entries}
    with open(toy["out"] / "reselection.csv") as fh:
        header = next(csv.reader(fh))
    assert header[:2] == ["cache", "dataset"] and "annotated_onset" not in header


def test_reselection_files_of_another_cache_or_count_are_refused(toy, tmp_path):
    from gamdss.train.loso import RunSetupError

    other = make_toy_cache(tmp_path / "other", seed=5)
    _toy_reselection(other, tmp_path / "other.csv")
    for files, message in (
        ([tmp_path / "other.csv"], "other.csv"),
        ([tmp_path / "missing.csv"], "missing.csv does not exist"),
        ([tmp_path / "a.csv", tmp_path / "b.csv"], "gives 2 file"),
    ):
        cfg = load_config(
            "tiny-cpu",
            toy_overrides(toy["root"] / "cache", tmp_path / "x", f"reselection.files=[{', '.join(map(str, files))}]"),
        )
        with pytest.raises(RunSetupError, match=message):
            prepare_run(cfg, progress=False)


def _records(preds, labels, subjects):
    return [
        {
            "subject": s,
            "seed": 0,
            "num_train": 1,
            "num_val": 0,
            "num_test": 1,
            "epochs_run": 1,
            "selected": {"epoch": 1},
            "test": [
                {
                    "key": f"k{i}",
                    "subject": s,
                    "dataset": "casme2",
                    "label": y,
                    "keyframes": [0, 1, 2],
                    "pred": dict(p),
                    "probs": {m: [1.0, 0.0, 0.0] for m in p},
                }
            ],
        }
        for i, (p, y, s) in enumerate(zip(preds, labels, subjects))
    ]


def test_table_labels_cannot_be_misread_and_collapse_warns(tmp_path, capsys):
    from gamdss.train.loso import RunPlan
    from gamdss.train.results import MODE_NOTE, chance_level, write_results

    cfg = load_config("tiny-cpu", [f"run.output_dir={tmp_path}"])
    plan = RunPlan(cfg, [], [], ["negative", "positive", "surprise"], [], [])
    # fused always predicts class 0 (collapsed); rise and fall do not
    preds = [{"rise": y, "fall": (y + 1) % 3, "fused": 0} for y in (0, 1, 2, 1)]
    res = write_results(tmp_path, plan, _records(preds, [0, 1, 2, 1], ["a", "b", "c", "d"]))
    table = (tmp_path / "table.md").read_text()
    assert "| GAMDSS-tiny (fused (rise+fall)) |" in table and "| GAMDSS-tiny (rise) |" in table
    assert "(full)" not in table and MODE_NOTE in table and "rise prediction" in MODE_NOTE
    assert "fused (rise+fall)" in (tmp_path / "table.tex").read_text()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fused (rise+fall) predictions collapsed to one class (negative)" in err[0]
    assert "all 4 held-out samples of all 4 folds" in err[0]
    assert set(res["collapsed"]) == {"fused"}
    # chance: always the largest class (positive: 2 of 4) -> ACC 0.5; UAR 1/3 (three classes present)
    assert chance_level(res["modes"]["fused"]) == (0.5, 1 / 3)
    assert res["modes"]["fused"]["acc"] == 0.25 and res["modes"]["rise"]["acc"] == 1.0


def test_a_run_saved_with_spelled_out_settings_resumes_with_the_preset(tmp_path):
    from gamdss.train.loso import _prepare_output

    # config.yaml of a run whose reselection section spells out every field (older configs)
    cfg = load_config("tiny-cpu", [f"run.output_dir={tmp_path}", "reselection.lam_rise=0.3"])
    spelled = load_config(
        "tiny-cpu",
        [f"run.output_dir={tmp_path}", "reselection.method=max_distance", "reselection.window=paper"]
        + ["reselection.lam_rise=0.3", "reselection.lam_fall=0.1", "reselection.distance=l2"],
    )
    spelled.save(tmp_path / "config.yaml")
    _prepare_output(tmp_path, cfg, overwrite=False)  # the same settings: resumes
    with pytest.raises(FileExistsError, match="another config"):
        _prepare_output(tmp_path, load_config("tiny-cpu", [f"run.output_dir={tmp_path}"]), overwrite=False)
