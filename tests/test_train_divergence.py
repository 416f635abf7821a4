"""A fold whose training diverges (NaN or infinite loss, weights or held-out probabilities) is a
failed run naming the epoch and what to lower; it is never recorded as finished and its
predictions are never pooled. Steps float16 AMP's gradient scaler skips are not a divergence."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gamdss.cli import main
from gamdss.train import load_config
from gamdss.train.fold import DivergedError, _check_weights, _EpochLoss
from gamdss.train.loso import _payload, load_fold, prepare_run, run_loso
from train_fixtures import make_toy_cache, toy_overrides

SMALL = ("optim.epochs=2", "data.image_size=16", "run.folds=[casme2_sub01]")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A 2-subject toy cache (6 clips, 16 px)."""
    root = tmp_path_factory.mktemp("divergence") / "cache"
    make_toy_cache(root, n_subjects=2, clips_per_class=1, frames=16, size=16, seed=0)
    return root


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gamdss")]
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    ("lr", "what"),
    [
        ("1e4", "the training loss (CE(rise) + model.fall_weight * CE(fall)) of epoch 2 is nan"),
        ("100", "the held-out rise probabilities of epoch 2's model are NaN or infinite"),
    ],
)
def test_a_diverging_fold_is_a_failed_run_naming_the_epoch_and_is_not_recorded(cache, tmp_path, capsys, lr, what):
    out = tmp_path / "run"
    argv = ["train", "tiny-cpu", *toy_overrides(cache, out, *SMALL, f"optim.lr={lr}"), "--quiet"]
    assert main(argv) == 1
    line = _one_error_line(capsys)
    assert "fold casme2_sub01 failed while training: DivergedError:" in line
    assert what in line and "training diverged; lower optim.lr" in line
    assert "rerun the same command" not in line  # it would diverge again
    assert not list((out / "folds").glob("*.json"))  # not a finished fold
    assert not (out / "results.json").exists() and not (out / "predictions.csv").exists()


def test_non_finite_weights_fail_the_epoch_naming_the_tensor():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    cfg = load_config("tiny-cpu")
    _check_weights(model, cfg, 1)  # finite: nothing to say
    with torch.no_grad():
        model[0].bias[1] = float("inf")
    with pytest.raises(DivergedError, match=r"the model's weights \(0\.bias\) are NaN or infinite after epoch 3"):
        _check_weights(model, cfg, 3)


def test_steps_the_amp_scaler_skipped_are_left_out_of_the_loss_not_a_divergence():
    cfg = load_config("tiny-cpu")
    scaled = _EpochLoss(skippable=True)  # float16 AMP: the scaler skipped the step, the weights did not move
    scaled.add(float("inf"), 8)
    scaled.add(1.5, 4)
    scaled.add(float("nan"), 8)
    scaled.add(0.5, 4)
    scaled.check(cfg, 1)
    assert (scaled.mean, scaled.skipped) == (1.0, 2)
    every = _EpochLoss(skippable=True)
    every.add(float("nan"), 8)
    with pytest.raises(DivergedError, match="of epoch 4 was NaN or infinite at every step"):
        every.check(cfg, 4)
    plain = _EpochLoss(skippable=False)  # fp32 or bf16: a NaN loss stepped the optimiser
    plain.add(1.5, 4)
    plain.add(float("nan"), 4)
    with pytest.raises(DivergedError, match="of epoch 2 is nan: training diverged"):
        plain.check(cfg, 2)


def test_a_recorded_fold_with_nan_probabilities_is_not_taken_as_finished(cache, tmp_path):
    out = tmp_path / "run"
    cfg = load_config("tiny-cpu", toy_overrides(cache, out, *SMALL))
    run_loso(cfg, progress=False)
    plan = prepare_run(cfg, progress=False)
    fold = plan.folds[0]
    assert load_fold(out, fold.subject, cfg, fold.fingerprint) is not None
    path = next((out / "folds").glob("*.json"))
    record = json.loads(path.read_text())
    record["test"][0]["probs"]["rise"] = [math.nan] * len(record["test"][0]["probs"]["rise"])
    path.write_text(json.dumps(record))  # as a gamdss that recorded diverged folds wrote it
    assert load_fold(out, fold.subject, cfg, fold.fingerprint) is None  # trained again, not pooled
    trained: list[str] = []
    run_loso(cfg, progress=False, on_fold_done=lambda s, r: trained.append(s))
    assert trained == ["casme2_sub01"]
    probs = [p for t in json.loads(path.read_text())["test"] for v in t["probs"].values() for p in v]
    assert np.isfinite(probs).all()


def test_the_fold_payload_of_a_diverging_run_raises_diverged_error(cache, tmp_path):
    from gamdss.train.fold import run_fold

    cfg = load_config("tiny-cpu", toy_overrides(cache, tmp_path / "run", *SMALL, "optim.lr=1e4"))
    plan = prepare_run(cfg, progress=False)
    with pytest.raises(DivergedError, match="of epoch 2 is nan"):
        run_fold(_payload(plan, plan.folds[0], tmp_path / "run", progress=False))
