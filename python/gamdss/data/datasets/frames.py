"""Finding frame files on disk.

Frame numbers are parsed from the trailing integer of each file name (``img46.jpg`` -> 46,
``006_05562.jpg`` -> 5562, ``reg_img100.jpg`` -> 100) rather than formatted, because the
datasets pad inconsistently; frames are sorted numerically (``img100`` after ``img46``).
Directory names are matched case-insensitively where the datasets disagree with their own
annotation files (``spNo.1`` on disk, ``spNO.1`` in the labels). Folders that exist but cannot
be listed (no permission) are remembered, so that a clip in one is reported as unreadable
rather than as missing (:class:`FolderReadError`).

Everything here takes time proportional to the files on disk, never to the frame numbers of
an annotation file: one absurd number (an offset of 10**15) is compared with the frames on
disk, not enumerated (:func:`missing_spans`).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

_TRAILING_INT = re.compile(r"(\d+)$")

#: Image file extensions recognised as frames (lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class FrameListError(ValueError):
    """A clip folder whose frame files cannot be numbered unambiguously."""


class FolderReadError(OSError):
    """A folder that exists but cannot be listed (``cannot read folder X: permission denied``)."""


def read_error_text(folder: Path, exc: OSError) -> str:
    """One line naming a folder that cannot be listed and why."""
    why = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or type(exc).__name__).lower()
    return f"cannot read folder {folder}: {why}"


def trailing_int(name: str) -> int | None:
    """The integer at the end of a file name's stem (``'img046.jpg'`` -> 46), or ``None``."""
    m = _TRAILING_INT.search(Path(name).stem)
    return int(m.group(1)) if m else None


class DirIndex:
    """Cached directory listings with case-insensitive child lookup (one ``scandir`` per
    folder, however many clips are looked up in it)."""

    def __init__(self) -> None:
        self._cache: dict[Path, list[os.DirEntry]] = {}
        #: folders that exist but could not be listed -> one-line message (see read_error).
        self._errors: dict[Path, str] = {}
        self._watchers: list[list[Path]] = []

    def entries(self, folder: Path) -> list[os.DirEntry]:
        """The folder's entries sorted by name; ``[]`` for a folder that does not exist or
        cannot be listed (the latter remembered: :meth:`read_error`)."""
        folder = Path(folder)
        if folder not in self._cache:
            try:
                with os.scandir(folder) as it:
                    self._cache[folder] = sorted(it, key=lambda e: e.name)
            except (FileNotFoundError, NotADirectoryError):
                self._cache[folder] = []
            except OSError as exc:  # permission denied, I/O error...: it exists but is unreadable
                self._cache[folder] = []
                self._errors[folder] = read_error_text(folder, exc)
        if folder in self._errors:
            for seen in self._watchers:
                if folder not in seen:
                    seen.append(folder)
        return self._cache[folder]

    def read_error(self, folder: Path) -> str | None:
        """``cannot read folder X: permission denied`` if ``folder`` was looked into and could
        not be listed, else ``None``."""
        return self._errors.get(Path(folder))

    @contextlib.contextmanager
    def unreadable_folders(self) -> Iterator[list[Path]]:
        """Collects, while open, the folders looked into that could not be listed."""
        seen: list[Path] = []
        self._watchers.append(seen)
        try:
            yield seen
        finally:
            self._watchers.remove(seen)

    def child(self, folder: Path, name: str, *, directory: bool = True) -> Path | None:
        """``folder/name`` if it exists, else the unique child whose name equals ``name``
        ignoring case; ``None`` if there is none."""
        entries = [e for e in self.entries(folder) if (e.is_dir() if directory else e.is_file())]
        for e in entries:
            if e.name == name:
                return Path(e.path)
        low = name.lower()
        for e in entries:
            if e.name.lower() == low:
                return Path(e.path)
        return None

    def resolve(self, root: Path, parts: Sequence[str]) -> Path | None:
        """``root/parts[0]/parts[1]/...`` matched case-insensitively at every level."""
        cur: Path | None = Path(root)
        for part in parts:
            if part in ("", "."):
                continue
            cur = self.child(cur, part)
            if cur is None:
                return None
        return cur

    def subdirs(self, folder: Path) -> list[Path]:
        """The subfolders of ``folder``, sorted by name (``[]`` when it does not exist or cannot be listed)."""
        return [Path(e.path) for e in self.entries(folder) if e.is_dir()]

    def frames(self, folder: Path, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[tuple[int, Path]]:
        """(frame number, path) of the image files in ``folder``, sorted by frame number.

        Raises:
            FrameListError: two files with the same frame number (e.g. ``img5.jpg`` and
                ``img05.jpg``).
            FolderReadError: the folder exists but cannot be listed (no permission).
        """
        exts = {e.lower() for e in extensions}
        out: dict[int, Path] = {}
        entries = self.entries(folder)
        if self.read_error(folder):
            raise FolderReadError(self.read_error(folder))
        for e in entries:
            if not e.is_file() or os.path.splitext(e.name)[1].lower() not in exts:
                continue
            n = trailing_int(e.name)
            if n is None:
                continue
            if n in out:
                raise FrameListError(f"folder {folder}: files {out[n].name} and {e.name} both have frame number {n}")
            out[n] = Path(e.path)
        return sorted(out.items())


def list_frames(folder: str | Path, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[tuple[int, Path]]:
    """(frame number, path) of the image files in ``folder``, sorted numerically."""
    return DirIndex().frames(Path(folder), extensions)


def missing_spans(present: Sequence[int], first: int, last: int) -> tuple[list[tuple[int, int]], int]:
    """The runs of ``first..last`` absent from ``present`` (sorted frame numbers on disk) as
    inclusive ``(start, end)`` pairs, and how many numbers they hold. Time proportional to
    ``len(present)``, whatever the size of ``first..last``."""
    inside = present[bisect.bisect_left(present, first) : bisect.bisect_right(present, last)]
    spans: list[tuple[int, int]] = []
    prev = first - 1
    for n in inside:
        if n > prev + 1:
            spans.append((prev + 1, n - 1))
        prev = n
    if prev < last:
        spans.append((prev + 1, last))
    return spans, (last - first + 1) - len(inside)


def format_spans(spans: Sequence[tuple[int, int]], limit: int = 10) -> str:
    """``[(3, 5), (9, 9)]`` -> ``'3-5, 9'``; past ``limit`` runs, ``'..., and 4 more runs'``."""
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in spans[:limit]]
    if len(spans) > limit:
        parts.append(f"and {len(spans) - limit} more runs")
    return ", ".join(parts)


def missing_ranges(numbers: Sequence[int]) -> str:
    """Compact text of a sorted list of integers: ``[3, 4, 5, 9]`` -> ``'3-5, 9'``."""
    parts = []
    start = prev = None
    for n in numbers:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = n
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(parts)
