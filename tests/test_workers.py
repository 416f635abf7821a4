"""The process pool of preprocessing and the flow cache (``gamdss.data.workers``): every job
finished once in the parent, workers set up to use one thread each and to leave signals to the
parent, a worker that dies reported per job without a hang, an error that stops the run and
leaves no process behind."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from gamdss.data import workers
from process_helpers import alive, children, pid_after, square_or_die, wait_until, worker_state


@pytest.fixture()
def no_workers_left():
    """A check that no child this test started is alive, but multiprocessing's resource
    tracker (started with the first spawned process, it lives as long as this one)."""
    before = set(children(os.getpid()))

    def is_tracker(pid: int) -> bool:
        try:
            return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True  # gone

    def check() -> bool:
        return wait_until(lambda: all(pid in before or is_tracker(pid) for pid in alive(children(os.getpid()))))

    return check


def _run(jobs, n_workers):
    finished: dict = {}

    def finish(key, result):
        assert key not in finished, f"job {key} finished twice"
        finished[key] = result

    workers.run_in_processes(square_or_die, jobs, n_workers, finish, lambda key, exc: ("died", type(exc).__name__))
    return finished


def test_every_job_is_finished_once_with_its_result(no_workers_left):
    jobs = [(f"job{x}", (x,)) for x in range(7)]
    assert _run(jobs, 2) == {f"job{x}": x * x for x in range(7)}
    assert no_workers_left()


def test_workers_use_one_thread_and_leave_signals_to_the_parent():
    finished = {}
    workers.run_in_processes(worker_state, [(0, ()), (1, ())], 2, finished.__setitem__, lambda k, e: None)
    assert finished == {k: (1, 1, True, True, os.getpid()) for k in (0, 1)}


def test_a_worker_that_dies_is_reported_per_job_and_the_run_ends(no_workers_left):
    jobs = [(x, (x, 2)) for x in range(6)]  # job 2's worker exits at once
    finished = _run(jobs, 2)
    assert sorted(finished) == list(range(6))
    assert finished[2] == ("died", "BrokenProcessPool")
    assert all(finished[x] in (x * x, ("died", "BrokenProcessPool")) for x in range(6))
    assert no_workers_left()


def test_an_idle_worker_killed_from_outside_ends_the_run_without_a_hang(no_workers_left):
    """Job 0 ends at once, job 1 takes 30 s. When job 0 is finished, its worker (idle,
    waiting for work with the queue's lock held) is killed: the other worker is killed too,
    job 1 is reported as died, and the run returns well before job 1 could have ended."""
    finished: dict = {}

    def finish(key, result):
        finished[key] = result
        if key == 0:
            os.kill(result, signal.SIGKILL)

    def died(key, exc):
        return ("died", type(exc).__name__)

    jobs = [(0, (0.0,)), (1, (30.0,))]
    run = threading.Thread(target=workers.run_in_processes, args=(pid_after, jobs, 2, finish, died), daemon=True)
    run.start()
    run.join(timeout=25)
    assert not run.is_alive(), "the run still waits after its idle worker was killed"
    assert finished[1] == ("died", "BrokenProcessPool") and isinstance(finished[0], int)
    assert no_workers_left()


def test_an_error_of_a_job_stops_the_run_and_kills_the_workers(tmp_path, no_workers_left):
    """Job 1 takes 20 s and then writes a file; job -1 fails meanwhile: the run raises without
    waiting for job 1, whose worker is killed before it writes."""
    marker = tmp_path / "slow-job-finished"
    jobs = [(x, (x, None, 1, str(marker))) for x in (1, -1, 2, 3, 4, 5)]
    with pytest.raises(ValueError, match="job -1: negative"):
        _run(jobs, 2)
    assert no_workers_left()
    assert not marker.exists()


@pytest.mark.parametrize("cpus, expected", [(1, 1), (3, 3), (4, 4), (64, 4)])
def test_default_workers_is_min_4_and_the_cpus_this_process_may_use(monkeypatch, cpus, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert workers.default_workers() == expected


def test_worker_died_names_the_clip_and_the_remedy_once():
    from concurrent.futures.process import BrokenProcessPool

    exc = BrokenProcessPool("A process in the process pool was terminated abruptly while the future was running")
    message = workers.worker_died("s01/EP02_01f", exc)
    assert message.startswith("clip s01/EP02_01f: ") and message.count("s01/EP02_01f") == 1
    assert "the same command redoes it" in message
    assert "terminated abruptly" not in message and "\n" not in message
    # a cause the pool attached (here a result that could not be unpickled): its error, after
    # the traceback, on one line, and no dead worker claimed
    exc.__cause__ = RuntimeError(
        "\n'''\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\n    g()\n"
        "ValueError: first line of the message\nsecond line\n'''"
    )
    message = workers.worker_died("s01/EP02_01f", exc)
    assert "(ValueError: first line of the message second line)" in message and "\n" not in message
    assert "died" not in message and "retry" in message
