"""Atomic output files: write to a temporary file in the same folder, then rename.

A reader never sees a half-written file, and an interrupted run leaves the previous
version (or nothing) in place.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Iterator


_UMASK_LOCK = threading.Lock()


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
        raise FileExistsError(f"output file(s) exist: {', '.join(existing)}; pass overwrite=True "
                              f"(--overwrite) to replace them or write elsewhere")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
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
    so a rerun finds no half-written set to refuse or to trust."""
    import shutil

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        yield staging
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        tail = {staging / name for name in last}
        folder.mkdir(parents=True, exist_ok=True)
        for src in [p for p in files if p not in tail] + [p for p in files if p in tail]:
            dst = folder / src.relative_to(staging)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
