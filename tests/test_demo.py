"""The generated clips of the quick-start demo, and the demo command itself."""

from __future__ import annotations

import torch

import gamdss
from gamdss.cli import main
from gamdss.toy_clips import make_toy_clips


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


def test_demo_command_prints_the_table(capsys):
    assert main(["demo", "--clips", "2", "--frames", "50", "--size", "32", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "GENERATED data" in printed and "reselected" in printed
    assert "mean |apex error|" in printed
