"""Worker processes that end with their parent (the preprocessing and flow-cache pools).

Kept apart from the pools' own modules so that a freshly spawned worker imports only this
(and what its task needs), not the face detector or the model stack.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

WATCHDOG_SECONDS = 1.0


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
