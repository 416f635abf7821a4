"""Processes seen through Linux /proc, for the tests that kill runs and look for orphans."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gamdss

TIMEOUT = 180.0  # seconds to wait for anything a test waits for (never reached when all is well)
PYTHON_SRC = str(Path(gamdss.__file__).resolve().parents[1])


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python that imports this gamdss (its source folder first
    on PYTHONPATH), with ``extra`` variables."""
    path = os.pathsep.join(filter(None, [PYTHON_SRC, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process, None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def children(pid: int) -> dict[int, int]:
    """Child processes of ``pid``: pid -> start time (to tell a reused pid apart)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[1] == pid:
                found[int(entry)] = st[2]
    return found


def alive(processes: dict[int, int]) -> list[int]:
    """Those of ``processes`` still running (a zombie waiting for its reaper is not)."""
    out = []
    for pid, start in processes.items():
        st = _stat(pid)
        if st is not None and st[2] == start and st[0] not in ("Z", "X"):
            out.append(pid)
    return out


def wait_until(condition, timeout: float = TIMEOUT, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


def square_or_die(x: int, die_at: int | None = None, slow_at: int | None = None, marker: str = "") -> int:
    """A job for the worker pool tests (run in spawned workers): ``x * x``; the process exits
    at once with status 3 when ``x == die_at``; ``ValueError`` when ``x < 0``; when
    ``x == slow_at``, it waits 20 s and then writes the file ``marker`` first."""
    if x == die_at:
        os._exit(3)
    if x < 0:
        raise ValueError(f"job {x}: negative")
    if x == slow_at:
        time.sleep(20)
        Path(marker).write_text("done")
    return x * x


def pid_after(seconds: float) -> int:
    """A job for the worker pool tests: this worker's pid, after ``seconds``."""
    time.sleep(seconds)
    return os.getpid()


def worker_state() -> tuple[int, int, bool, bool, int]:
    """What a pool worker was set up with: torch and OpenCV threads, whether SIGINT and SIGTERM
    are ignored, and its parent's pid."""
    import signal

    import cv2
    import torch

    return (
        torch.get_num_threads(),
        cv2.getNumThreads(),
        signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
        signal.getsignal(signal.SIGTERM) is signal.SIG_IGN,
        os.getppid(),
    )
