"""Calls of the CPU op from several Python threads at once, each parallel on its own (the op
starts helper threads for every call): each gets its own results, those of the reference."""

from __future__ import annotations

import threading

import pytest
import torch

import gamdss
from gamdss.op import reference

THREADS = 3  # two helpers per call, on any machine


def make_case(seed: int, clips: int = 8):
    """uint8 clips of 3x224x224 frames whose windows read several MB: enough for THREADS
    threads (the op gives each at least 1 MiB)."""
    gen = torch.Generator().manual_seed(seed)
    t = 16
    x = torch.randint(0, 256, (clips, t, 3, 224, 224), generator=gen, dtype=torch.uint8)
    onset = torch.randint(0, 3, (clips,), generator=gen)
    apex = onset + torch.randint(5, 8, (clips,), generator=gen)
    offset = apex + torch.randint(2, 5, (clips,), generator=gen)
    return x, onset, apex, offset


KW = dict(lam_rise=0.5, lam_fall=0.5, window="symmetric", distance="l2")


def keyframes(r) -> list[list[int]]:
    return torch.stack([r.onset, r.apex, r.offset], dim=1).tolist()


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield THREADS
    torch.set_num_threads(before)


def test_calls_from_several_threads_at_once_get_their_own_results(threads):
    cases = [make_case(10 + i, clips=6) for i in range(4)]
    want = [keyframes(reference.reselect(*c, **KW)) for c in cases]
    got: dict[int, list] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(cases))

    def run(i: int) -> None:
        try:
            start.wait()
            got[i] = [keyframes(gamdss.reselect(*cases[i], **KW)) for _ in range(3)]
        except BaseException as e:  # reported below
            errors.append(e)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(len(cases))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not errors, errors
    assert not any(w.is_alive() for w in workers)
    for i, w in enumerate(want):
        assert got[i] == [w, w, w], i
