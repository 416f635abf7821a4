"""One writer per folder: an advisory lock held while a run writes into a folder.

::

    from gamdss.util import run_lock

    with run_lock.hold("runs/t", "gamdss train"):
        ...                       # only this process writes into runs/t

A second :func:`hold` of the same folder, from any process (or thread) while the first is
held, raises :class:`FolderBusyError` at once (it never waits), naming the holder: its pid,
host, start time and ``what`` it is. The lock is an OS advisory lock (``fcntl.flock``) on
the file :data:`LOCK_NAME` inside the folder, so the operating system releases it when the
holder ends in any way, ``kill -9`` included: a killed run never leaves a stale lock. The
holder writes its details into the lock file (one JSON line) for the message; the file is
removed when the lock is released (one left behind by a killed run is simply taken over).

Only processes that use this module are kept out; the lock does not stop other programs
from writing into the folder. On a file system without ``flock`` support (some network
mounts) :func:`hold` fails with :class:`OSError` rather than run unlocked. POSIX only:
where ``fcntl`` does not exist (Windows) the folder is not locked.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".gamdss.lock"


class FolderBusyError(RuntimeError):
    """The folder is locked by another run. ``folder``: the folder; ``holder``: the holder's
    details as it wrote them (``pid``, ``host``, ``started``, ``what``; empty when it had not
    written them yet or they were unreadable). ``str()`` is a one-line message."""

    def __init__(self, folder: Path, holder: dict[str, Any]):
        self.folder = Path(folder)
        self.holder = dict(holder)
        super().__init__(
            f"{self.folder} is in use by {describe_holder(self.holder)}; this run cannot start "
            f"until that one ends (a stopped or killed run frees the folder)"
        )


def describe_holder(holder: dict[str, Any]) -> str:
    """``"gamdss train (pid 123 on host1, started 2025-01-02T03:04:05+00:00)"``, or a
    placeholder for unknown details."""
    if not holder:
        return "another run (its pid, host and start time are not written yet)"
    return (
        f"{holder.get('what') or 'another run'} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')})"
    )


def held_by_this_process(holder: dict[str, Any]) -> bool:
    """Whether ``holder`` (a :class:`FolderBusyError`'s) is this very process."""
    return holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()


def read_holder(folder: str | os.PathLike, name: str = LOCK_NAME) -> dict[str, Any]:
    """The details the current (or last) holder wrote into ``folder``'s lock file; ``{}`` when
    there is no lock file or it cannot be read. Tells nothing about whether the lock is held."""
    try:
        data = json.loads((Path(folder) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a releasing holder removes it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


@contextlib.contextmanager
def hold(folder: str | os.PathLike, what: str, *, name: str = LOCK_NAME) -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if missing) for the ``with`` block; yields the lock
    file's path.

    ``what``: who holds it, for the other run's message (e.g. ``"gamdss train"``). Raises
    :class:`FolderBusyError` at once when another holder has it, and ``NotADirectoryError``
    when ``folder`` is a file. On leaving the block the lock file is removed, and so is
    ``folder`` when this call created it and it is still empty (a run refused on its
    input leaves nothing behind).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a folder")
    created = not folder.exists()
    path = folder / name
    if fcntl is None:  # pragma: no cover - Windows
        folder.mkdir(parents=True, exist_ok=True)
        yield path
        return
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileNotFoundError:  # the folder was removed under us by a releasing holder: again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderBusyError(folder, read_holder(folder, name)) from None
            raise
        if _same_file(fd, path):
            break
        os.close(fd)  # we locked a file its holder has just removed: lock the current one
    try:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "what": what,
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode("utf-8"))
        yield path
    finally:
        # Removed while still locked, so no one can lock this file and find it gone later
        # (an acquirer that locked it in between sees it is no longer at ``path`` and retries).
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
