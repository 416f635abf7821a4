"""Faults around training runs: checkpoints that would run code or do not load, Ctrl-C, and two
runs writing one run folder."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gamdss
from gamdss.cli import main
from gamdss.train import load_config
from gamdss.train.loso import _payload, prepare_run, run_loso
from gamdss.util import run_lock
from train_fixtures import make_toy_cache, toy_overrides

PYTHON_DIR = str(Path(gamdss.__file__).resolve().parents[1])  # the gamdss under test (installed or source)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 2-subject toy cache, a 2-epoch config with epoch checkpoints, and one fold trained
    without any checkpoint (the reference every recomputed fold must equal)."""
    from gamdss.train import fold as fold_module

    root = tmp_path_factory.mktemp("faults")
    make_toy_cache(root / "cache", n_subjects=2, clips_per_class=1, frames=16, size=16, seed=0)
    cfg = load_config(
        "tiny-cpu",
        toy_overrides(
            root / "cache", root / "run", "optim.epochs=2", "data.image_size=16", "run.epoch_checkpoints=true"
        ),
    )
    plan = prepare_run(cfg, progress=False)
    payload = _payload(plan, plan.folds[0], root / "run", progress=False)
    reference = fold_module.run_fold(payload.__class__(**{**payload.__dict__, "checkpoint": None}))
    return {"root": root, "cfg": cfg, "plan": plan, "payload": payload, "reference": reference.result}


class _WritesAFile:
    """Unpickling this calls ``open(path, "w")``: a stand-in for any code a crafted file runs."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _stderr_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.strip()]


def _same_fold(a: dict, b: dict) -> bool:
    return a["history"] == b["history"] and a["test"] == b["test"] and a["epochs_run"] == b["epochs_run"]


# ------------------------------------------------------------------------------ checkpoints
def test_a_checkpoint_that_would_run_code_is_not_run_and_the_fold_is_recomputed(small, tmp_path, capsys):
    from gamdss.train import fold as fold_module

    marker = tmp_path / "code-ran"
    ckpt = tmp_path / "folds" / "sub.ckpt.pt"
    ckpt.parent.mkdir()
    torch.save({"seed": small["payload"].seed, "epoch": 1, "model": _WritesAFile(marker)}, ckpt)
    payload = small["payload"].__class__(**{**small["payload"].__dict__, "checkpoint": str(ckpt)})
    result = fold_module.run_fold(payload).result
    assert not marker.exists()  # the pickle's code did not run
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and str(ckpt) in lines[0] and "discarding" in lines[0], lines
    assert _same_fold(result, small["reference"])  # trained from epoch 1, as without a checkpoint
    # the checkpoint the fold wrote instead loads without running code, and is continued silently
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    again = fold_module.run_fold(payload).result
    assert _same_fold(again, small["reference"]) and _stderr_lines(capsys) == []


@pytest.fixture(scope="module")
def good_checkpoint(small, tmp_path_factory) -> bytes:
    """The bytes of this fold's real checkpoint after epoch 1 (of 2)."""
    from gamdss.train import fold as fold_module

    ckpt = tmp_path_factory.mktemp("good") / "sub.ckpt.pt"
    real_save = fold_module._save_checkpoint

    def save_then_stop(path, state):
        real_save(path, state)
        raise KeyboardInterrupt

    fold_module._save_checkpoint = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            fold_module.run_fold(small["payload"].__class__(**{**small["payload"].__dict__, "checkpoint": str(ckpt)}))
    finally:
        fold_module._save_checkpoint = real_save
    return ckpt.read_bytes()


def _damage(kind: str, path: Path, good: bytes) -> None:
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "plain pickle with a global":
        path.write_bytes(pickle.dumps({"model": np.float64}))  # a global the weights-only loader refuses
    elif kind == "not a checkpoint":
        torch.save({"weights": torch.zeros(3)}, path)
    elif kind == "an older version's checkpoint":  # before the config digest and the released stop
        path.write_bytes(good)
        state = torch.load(path, weights_only=True)
        del state["config_digest"], state["stopped"]
        torch.save(state, path)
    elif kind == "another model's weights":  # loads, right fold, but its weights do not fit
        path.write_bytes(good)
        state = torch.load(path, weights_only=True)
        state["model"] = {"unknown.weight": torch.zeros(2, 2)}
        torch.save(state, path)


def _no_checkpoint_written(path, state):
    raise KeyboardInterrupt  # stops the fold after epoch 1, before it writes a checkpoint


@pytest.mark.parametrize(
    "kind",
    [
        "random bytes",
        "truncated",
        "empty",
        "plain pickle with a global",
        "not a checkpoint",
        "an older version's checkpoint",
        "another model's weights",
    ],
)
def test_a_checkpoint_that_does_not_load_is_named_once_discarded_and_recomputed(
    small, good_checkpoint, tmp_path, capsys, monkeypatch, kind
):
    from gamdss.train import fold as fold_module

    ckpt = tmp_path / "sub.ckpt.pt"
    payload = small["payload"].__class__(**{**small["payload"].__dict__, "checkpoint": str(ckpt)})
    # The damaged file is reported in one line and deleted at once, so a run stopped before
    # its first new checkpoint does not report it again next time.
    _damage(kind, ckpt, good_checkpoint)
    monkeypatch.setattr(fold_module, "_save_checkpoint", _no_checkpoint_written)
    with pytest.raises(KeyboardInterrupt):
        fold_module.run_fold(payload)
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and str(ckpt) in lines[0] and "discarding" in lines[0], lines
    if kind == "an older version's checkpoint":
        assert "written by an older gamdss version (no config_digest, stopped)" in lines[0], lines
    assert not ckpt.exists()
    monkeypatch.undo()
    # ... and the fold is recomputed from epoch 1: the same result as without a checkpoint
    _damage(kind, ckpt, good_checkpoint)
    result = fold_module.run_fold(payload).result
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and str(ckpt) in lines[0], lines
    assert _same_fold(result, small["reference"])


def test_a_good_checkpoint_is_continued(small, good_checkpoint, tmp_path, capsys):
    from gamdss.train import fold as fold_module

    ckpt = tmp_path / "sub.ckpt.pt"
    ckpt.write_bytes(good_checkpoint)
    payload = small["payload"].__class__(**{**small["payload"].__dict__, "checkpoint": str(ckpt)})
    epochs = []
    real_save = fold_module._save_checkpoint
    fold_module._save_checkpoint = lambda p, s: (epochs.append(s["epoch"]), real_save(p, s))
    try:
        result = fold_module.run_fold(payload).result
    finally:
        fold_module._save_checkpoint = real_save
    assert epochs == [2] and _same_fold(result, small["reference"]) and _stderr_lines(capsys) == []


def test_checkpoints_hold_only_plain_types(small, tmp_path):
    from gamdss.train import fold as fold_module

    ckpt = tmp_path / "sub.ckpt.pt"
    payload = small["payload"].__class__(**{**small["payload"].__dict__, "checkpoint": str(ckpt)})
    fold_module.run_fold(payload)
    state = torch.load(ckpt, weights_only=True)  # raises on anything but tensors and plain types
    assert set(fold_module.CHECKPOINT_KEYS) <= set(state)


# ------------------------------------------------------------------------------ Ctrl-C
def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "module, func, argv, expected",
    [
        (
            "train",
            "_train",
            ["train", "tiny-cpu"],
            "gamdss train: interrupted; finished folds are kept, rerun the same command to resume",
        ),
        ("reselect", "_run", ["reselect", "somewhere"], "gamdss reselect: interrupted"),
        ("bench", "_keyframes", ["bench", "keyframes", "--quick"], "gamdss bench keyframes: interrupted"),
    ],
)
def test_ctrl_c_ends_any_command_with_one_line_and_status_130(monkeypatch, capsys, module, func, argv, expected):
    import importlib

    monkeypatch.setattr(importlib.import_module(f"gamdss.commands.{module}"), func, _interrupt)
    assert main(argv) == 130
    assert _stderr_lines(capsys) == [expected]


def test_ctrl_c_during_training_keeps_finished_folds_and_frees_the_folder(small, tmp_path, monkeypatch, capsys):
    from gamdss.train import fold as fold_module
    from gamdss.train import loso

    out = tmp_path / "run"
    calls = []

    def second_fold_interrupted(payload):
        calls.append(payload.subject)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fold_module.run_fold(payload)

    monkeypatch.setattr(loso, "run_fold", second_fold_interrupted)
    argv = [
        "train",
        "tiny-cpu",
        *toy_overrides(small["root"] / "cache", out, "optim.epochs=1", "data.image_size=16"),
        "--quiet",
    ]
    assert main(argv) == 130
    lines = _stderr_lines(capsys)
    assert lines[-1] == "gamdss train: interrupted; finished folds are kept, rerun the same command to resume"
    assert [line for line in lines if line.startswith("gamdss")] == lines[-1:]
    assert len(list((out / "folds").glob("*.json"))) == 1
    assert not (out / run_lock.LOCK_NAME).exists()
    monkeypatch.setattr(loso, "run_fold", fold_module.run_fold)
    assert main(argv) == 0 and (out / "results.json").is_file()


# ------------------------------------------------------------------------------ run-folder lock
@pytest.fixture
def holder(tmp_path):
    """A child process holding the lock of tmp_path/run (killed with SIGKILL at the end)."""
    folder = tmp_path / "run"
    code = (
        "import sys, time\nfrom gamdss.util import run_lock\n"
        "with run_lock.hold(sys.argv[1], 'gamdss train'):\n"
        "    print('held', flush=True)\n    time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": PYTHON_DIR}
    child = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, env=env, text=True)
    assert child.stdout.readline().strip() == "held"
    yield folder, child
    if child.poll() is None:
        child.kill()
    child.wait()
    child.stdout.close()


def test_a_held_folder_is_refused_naming_the_holder_and_freed_by_a_kill(holder):
    import socket

    folder, child = holder
    with pytest.raises(run_lock.FolderBusyError) as info:
        with run_lock.hold(folder, "a second run"):
            pass
    message = str(info.value)
    assert f"pid {child.pid}" in message and socket.gethostname() in message and "gamdss train" in message
    assert str(folder) in message and "started" in message and "\n" not in message
    assert info.value.holder["pid"] == child.pid
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert (folder / run_lock.LOCK_NAME).is_file()  # left behind by the kill, but not locked
    with run_lock.hold(folder, "after the kill") as path:
        assert run_lock.read_holder(folder)["pid"] == os.getpid() and path.is_file()
    assert not (folder / run_lock.LOCK_NAME).exists()


def test_a_second_train_into_a_busy_folder_exits_1_naming_the_holder(small, holder, capsys):
    folder, child = holder
    argv = [
        "train",
        "tiny-cpu",
        *toy_overrides(small["root"] / "cache", folder, "optim.epochs=1", "data.image_size=16"),
        "--quiet",
    ]
    assert main(argv) == 1
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("gamdss train:") and f"pid {child.pid}" in lines[0], lines
    assert sorted(p.name for p in folder.iterdir()) == [run_lock.LOCK_NAME]  # nothing written
    cfg = load_config("tiny-cpu", toy_overrides(small["root"] / "cache", folder, "optim.epochs=1"))
    with pytest.raises(run_lock.FolderBusyError, match=f"pid {child.pid}"):
        run_loso(cfg, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == [run_lock.LOCK_NAME]


def test_the_lock_is_per_holder_in_one_process_and_leaves_no_folder_behind(tmp_path):
    folder = tmp_path / "new" / "run"
    with run_lock.hold(folder, "first"):
        with pytest.raises(run_lock.FolderBusyError, match=f"pid {os.getpid()}"):
            with run_lock.hold(folder, "second"):
                pass
    assert not folder.exists()  # made for the lock, left empty: removed
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        with run_lock.hold(tmp_path / "file", "x"):
            pass
