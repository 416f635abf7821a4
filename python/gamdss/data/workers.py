"""Worker processes that end with their parent: the one process pool of preprocessing and
of the flow cache (:func:`run_in_processes`), and how many workers a run uses by default.

Kept apart from the pools' own modules so that a freshly spawned worker's set-up imports
only this (and torch and OpenCV); its task then imports what it needs.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

WATCHDOG_SECONDS = 1.0
MAX_DEFAULT_WORKERS = 4

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


def default_workers() -> int:
    """Workers (processes or threads) a run uses when not told: min(4, the CPUs this process
    may run on)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(MAX_DEFAULT_WORKERS, cpus or 1)


def run_in_processes(
    fn: Callable[..., R],
    jobs: Sequence[tuple[K, tuple[Any, ...]]],
    workers: int,
    finish: Callable[[K, R], None],
    on_death: Callable[[K, BaseException], R],
) -> None:
    """``finish(key, fn(*args))`` in this process for every ``(key, args)`` of ``jobs``, as
    they end, with ``fn`` run in ``workers`` spawned processes (:func:`init_worker`).

    ``fn`` reports its own per-job errors in its result; an exception it raises stops the
    run. A worker that dies (killed, out of memory, a crash in native code) breaks the pool:
    the other workers are killed at once, and its job and every job not finished yet get
    ``finish(key, on_death(key, exc))``. On any exception here, Ctrl-C included, the workers
    are killed at once, the queued jobs dropped, and the exception raised. A killed job that
    was writing a file leaves only its temporary file.
    """
    # spawn, not fork: the parent may already run torch's thread pools, and CUDA needs it.
    # The pool starts its processes from this thread (submit), which lives as long as the
    # pool: PR_SET_PDEATHSIG fires when the creating thread ends, not only the process.
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(os.getpid(),),
    )
    try:
        futures = {pool.submit(fn, *args): key for key, args in jobs}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool as exc:
                # The pool stops its other workers with SIGTERM, which they ignore, and then
                # waits for them; one may wait forever on the queue lock the dead one held.
                _kill_processes(pool)
                result = on_death(futures[future], exc)
            finish(futures[future], result)
    except BaseException:
        _kill_processes(pool)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def worker_died(key: Hashable, exc: BaseException) -> str:
    """The per-job message for ``on_death`` of a pool whose jobs are clips keyed by clip id.

    One short line per clip: which clip, why it was not done and what to do. The pool's
    BrokenProcessPool text is the same for every clip and is left out. When the pool carries
    a cause (a result that could not be read back), the cause's error, after its traceback,
    is given instead of a dead worker. (A worker whose set-up fails prints its own traceback
    on stderr.)"""
    cause = _error_of(exc.__cause__)
    if cause:
        return f"clip {key}: not done, the worker pool broke ({cause}); run the same command to retry"
    return f"clip {key}: not done, a worker process died (killed, out of memory or a crash); the same command redoes it"


def _error_of(cause: BaseException | None) -> str:
    """The error of a pool's cause, one line: its text after the traceback's last indented
    line, without the pool's fence of triple quotes; "" when there is none."""
    if cause is None:
        return ""
    try:
        lines = [ln for ln in str(cause).splitlines() if ln.strip().strip("'\"")]
    except Exception:  # noqa: BLE001 - an odd cause must not stop the pool's loop
        return ""
    indented = [i for i, ln in enumerate(lines) if ln.startswith((" ", "\t"))]
    tail = lines[indented[-1] + 1 :] if indented else lines
    return " ".join(ln.strip() for ln in tail)


def _kill_processes(pool: ProcessPoolExecutor) -> None:
    """SIGKILL every worker process of ``pool`` (those already gone are skipped)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            process.kill()


def init_worker(parent_pid: int) -> None:
    """Worker set-up: die with the parent, leave SIGINT and SIGTERM to it, one torch and one
    OpenCV thread (the processes use the cores)."""
    # Ctrl-C reaches the whole process group, SIGTERM may too (systemd): the parent stops the
    # run and kills the workers, so a worker never dies half-way through on its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent_pid)
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def die_with_parent(parent_pid: int, interval: float = WATCHDOG_SECONDS) -> None:
    """Make this (child) process end when ``parent_pid`` does, however it ends.

    Linux: the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)`` via
    ctypes). Everywhere, a daemon thread checks ``os.getppid()`` every ``interval`` seconds and
    exits the process when it changed (the parent died and the child was re-parented). A
    parent already gone when this runs ends the process at once.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="gamdss-parent-watchdog", daemon=True).start()
