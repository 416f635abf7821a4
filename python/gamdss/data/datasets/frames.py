"""Finding frame files on disk.

Frame numbers are parsed from the trailing integer of each file name (``img46.jpg`` -> 46,
``006_05562.jpg`` -> 5562, ``reg_img100.jpg`` -> 100) rather than formatted, because the
datasets pad inconsistently; frames are sorted numerically (``img100`` after ``img46``).
Directory names are matched case-insensitively where the datasets disagree with their own
annotation files (``spNo.1`` on disk, ``spNO.1`` in the labels).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Sequence

_TRAILING_INT = re.compile(r"(\d+)$")

#: Image file extensions recognised as frames (lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class FrameListError(ValueError):
    """A clip folder whose frame files cannot be numbered unambiguously."""


def trailing_int(name: str) -> int | None:
    """The integer at the end of a file name's stem (``'img046.jpg'`` -> 46), or ``None``."""
    m = _TRAILING_INT.search(Path(name).stem)
    return int(m.group(1)) if m else None


class DirIndex:
    """Cached directory listings with case-insensitive child lookup (one ``scandir`` per
    folder, however many clips are looked up in it)."""

    def __init__(self) -> None:
        self._cache: dict[Path, list[os.DirEntry]] = {}

    def entries(self, folder: Path) -> list[os.DirEntry]:
        folder = Path(folder)
        if folder not in self._cache:
            try:
                with os.scandir(folder) as it:
                    self._cache[folder] = sorted(it, key=lambda e: e.name)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                self._cache[folder] = []
        return self._cache[folder]

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
        return [Path(e.path) for e in self.entries(folder) if e.is_dir()]

    def frames(self, folder: Path, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[tuple[int, Path]]:
        """(frame number, path) of the image files in ``folder``, sorted by frame number.

        Raises:
            FrameListError: two files with the same frame number (e.g. ``img5.jpg`` and
                ``img05.jpg``).
        """
        exts = {e.lower() for e in extensions}
        out: dict[int, Path] = {}
        for e in self.entries(folder):
            if not e.is_file() or os.path.splitext(e.name)[1].lower() not in exts:
                continue
            n = trailing_int(e.name)
            if n is None:
                continue
            if n in out:
                raise FrameListError(f"folder {folder}: files {out[n].name} and {e.name} both have "
                                     f"frame number {n}")
            out[n] = Path(e.path)
        return sorted(out.items())


def list_frames(folder: str | Path, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[tuple[int, Path]]:
    """(frame number, path) of the image files in ``folder``, sorted numerically."""
    return DirIndex().frames(Path(folder), extensions)


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
