"""Atomic output files: write to a temporary file in the same folder, then rename.

A reader never sees a half-written file, and an interrupted run leaves the previous
version (or nothing) in place. A write that fails because the disk (or the user's quota) is
full raises :class:`DiskFullError`, whose one-line message names the file and says "no space
left on device" (numpy's own message for it, "1032192 requested and 1027968 written", names
neither).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_UMASK_LOCK = threading.Lock()


class DiskFullError(OSError):
    """A write failed for want of space: ``filename`` is the file, ``str()`` one line
    (``cannot write PATH: no space left on device``). An ``OSError`` with ``errno`` ENOSPC
    (EDQUOT for a full quota), so ``except OSError`` still catches it; it pickles, so it
    crosses process boundaries (a pool worker's error reaches the parent as itself)."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


# numpy's ndarray.tofile (used by np.save on a real file) reports a short write without errno.
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")


def disk_full_error(path: str | os.PathLike, exc: OSError) -> DiskFullError | None:
    """``exc`` (raised while writing ``path``) as a :class:`DiskFullError` when it means that
    the disk or the quota is full: errno ENOSPC or EDQUOT, or numpy's short-write message
    when the file system has less free space than that write requested; otherwise ``None``."""
    if isinstance(exc, DiskFullError):
        return exc
    if exc.errno == errno.ENOSPC:
        return DiskFullError(errno.ENOSPC, "no space left on device", str(path))
    if exc.errno == getattr(errno, "EDQUOT", None):
        return DiskFullError(exc.errno, "no space left on device (disk quota exceeded)", str(path))
    match = _SHORT_WRITE.search(str(exc)) if exc.errno is None else None
    if match:
        try:
            st = os.statvfs(Path(path).parent)
            free = st.f_bavail * st.f_frsize
        except (OSError, AttributeError):
            return None
        if free < int(match.group(1)):  # the write that came up short would not fit in what is free
            return DiskFullError(errno.ENOSPC, f"no space left on device ({free} bytes free; {exc})", str(path))
    return None


def _umask() -> int:
    """The process umask (reading it means setting it, so briefly, under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def refuse_existing(path: str | os.PathLike, overwrite: bool) -> Path:
    """``path`` as a Path; ``FileExistsError`` if it exists and ``overwrite`` is false."""
    refuse_any_existing([path], overwrite)
    return Path(path)


def refuse_any_existing(paths: Iterable[str | os.PathLike], overwrite: bool) -> None:
    """``FileExistsError`` listing those of ``paths`` that exist, unless ``overwrite``: checked
    before any work, so a run never stops half-way on an output it may not replace."""
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"output file(s) exist: {', '.join(existing)}; pass overwrite=True "
            f"(--overwrite) to replace them or write elsewhere"
        )


def remove_temporaries(folder: str | os.PathLike, *targets: str) -> None:
    """Remove the temporary files that :func:`atomic_path` writes of ``targets`` inside
    ``folder`` (what a killed process leaves). ``targets``: paths relative to ``folder``, with
    glob patterns allowed, e.g. ``"clips/*.npy"`` or ``"manifest.json"``. Only safe while no
    other process writes these files (the caller holds the folder's lock)."""
    folder = Path(folder)
    for target in targets:
        t = Path(target)
        for path in folder.glob(str(t.with_name(f".{t.stem}.*.tmp{t.suffix}"))):  # atomic_path's names
            with contextlib.suppress(OSError):
                path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched; one that
    means a full disk is raised as :class:`DiskFullError` naming ``path``.
    The temporary name keeps ``path``'s suffix, so libraries that choose a format by
    suffix (matplotlib, openpyxl, numpy) write the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 files; give the result the mode a plain open() would have
        # (or keep the mode of the file it replaces), so shared caches stay readable.
        os.chmod(tmp_path, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        full = disk_full_error(path, exc)
        if full is not None and full is not exc:
            raise full from exc
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def output_set(folder: str | os.PathLike, *, last: Iterable[str] = ()) -> Iterator[Path]:
    """Write a set of files as one: yields an empty staging folder next to ``folder``; when
    the block succeeds every file in it is moved into ``folder`` (``last``: names moved after
    all others, e.g. the settings file that marks a complete set), and the staging folder is
    removed. When the block fails (a full disk, an error, Ctrl-C) nothing reaches ``folder``,
    so a rerun finds no half-written set to refuse or to trust.

    The staging folder (``.<folder>.partial-<random>``) holds a lock file, locked
    (``fcntl.flock``) for the whole block. A process killed outright (``kill -9``) cannot
    remove its staging folder, but the kernel frees its lock: the next ``output_set`` of the
    same folder removes the staging folders whose lock it can take, and never one that a
    live writer holds, wherever that writer runs. Where ``fcntl`` does not exist (Windows)
    nothing is removed."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{folder.name}.partial-"
    _remove_abandoned_staging(folder.parent, prefix)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=folder.parent))
    lock_fd = _lock_staging(staging)
    try:
        yield staging
        lock = staging / STAGING_LOCK
        files = sorted(p for p in staging.rglob("*") if p.is_file() and p != lock)
        tail = {staging / name for name in last}
        folder.mkdir(parents=True, exist_ok=True)
        for src in [p for p in files if p not in tail] + [p for p in files if p in tail]:
            dst = folder / src.relative_to(staging)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if lock_fd is not None:
            os.close(lock_fd)


#: The lock file inside an output set's staging folder (never moved into the set).
STAGING_LOCK = ".gamdss-staging.lock"


def _lock_staging(staging: Path) -> int | None:
    """Lock ``staging`` for this process: a lock file locked before it takes its name, so a
    sweeper that finds the name always finds it locked while this process lives."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    fd, tmp = tempfile.mkstemp(prefix=".lock-", dir=staging)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(tmp, staging / STAGING_LOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remove_abandoned_staging(parent: Path, prefix: str) -> None:
    """Staging folders ``parent/<prefix><8 random characters>`` whose lock no process holds
    (left by a process killed outright). A folder without its lock file is left alone: its
    writer may be between creating the folder and locking it."""
    if fcntl is None:  # pragma: no cover - Windows
        return
    name = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}")
    for path in parent.glob(f"{glob.escape(prefix)}*"):
        if not name.fullmatch(path.name):
            continue
        try:
            fd = os.open(path / STAGING_LOCK, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except OSError:  # no lock file (yet), or not a folder
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a live writer
            os.close(fd)
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)
