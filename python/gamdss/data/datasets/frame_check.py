"""Checking frame files: can each be read, and does it match the rest of its clip?

``gamdss data check`` runs :func:`check_clip_frames` on every frame of every clip span.

What each check catches (Pillow):

- **Header** (always): ``Image.open`` reads the header, so an empty file, a text file named
  ``.jpg`` or a file cut inside its header is reported. ``Image.verify()`` is also run, but it
  checks little beyond PNG: it verifies every PNG chunk's CRC, so it catches a truncated PNG,
  but for JPEG and BMP it reads nothing past the header, so **a truncated JPEG passes
  ``verify()``**. So, for JPEG, the check also looks for the end-of-image marker
  (``FF D9``) at the end of the file: a truncated JPEG lacks it. A file without it is then
  decoded fully, and reported only if that decode fails (a complete image followed by
  extra bytes is fine).
- **Size and mode** (always): against the clip's first readable frame. A frame of another size
  is *damaged* (preprocessing refuses the clip); a frame of another mode, e.g. greyscale
  (``L``) among RGB frames, is *inconsistent* (preprocessing converts it to RGB); a 16/32-bit
  frame (``I;16``, ``I``, ``F``) is *damaged* (preprocessing reads 8-bit frames only).
- **Full decode** (``decode=True``, ``gamdss data check --decode``): decodes every frame as
  preprocessing does. Slower (every pixel of every frame); catches, besides, corrupt data
  inside a complete file and truncated BMP/TIFF files.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

#: frame modes preprocessing cannot read (it reads 8-bit grey or colour frames).
UNSUPPORTED_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
#: bytes at the end of a JPEG file searched for the end-of-image marker.
_JPEG_TAIL = 64

#: problem kinds that make a frame damaged (the clip cannot be preprocessed as it is).
DAMAGED_KINDS = ("empty", "not an image", "truncated", "unreadable", "unsupported mode", "resized")
#: problem kinds that make a frame inconsistent (preprocessing copes).
INCONSISTENT_KINDS = ("inconsistent mode",)


@dataclass(frozen=True)
class FrameInfo:
    """What opening one frame file found: its format, size ``(W, H)`` and mode, or the
    problem (``kind`` one of :data:`DAMAGED_KINDS`, ``detail`` one line)."""

    format: str | None = None
    size: tuple[int, int] | None = None
    mode: str | None = None
    kind: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class FrameProblem:
    """A frame that is damaged (``damaged``: the clip cannot be preprocessed as it is) or
    inconsistent with its clip (``damaged`` false: preprocessing copes)."""

    path: Path
    kind: str
    detail: str

    @property
    def damaged(self) -> bool:
        """Whether ``kind`` is one of :data:`DAMAGED_KINDS` (else it is inconsistent only)."""
        return self.kind in DAMAGED_KINDS


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _jpeg_has_end_marker(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - _JPEG_TAIL))
        return b"\xff\xd9" in f.read()


def _decode_problem(path: Path) -> FrameInfo | None:

    try:
        with Image.open(path) as img:
            img.load()
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for bad data
        text = _one_line(exc)
        return FrameInfo(kind="truncated" if "truncated" in text.lower() else "unreadable", detail=text)
    return None


def inspect_frame(path: str | Path, *, decode: bool = False) -> FrameInfo:
    """Open one frame file and check it (see the module docstring); never raises for a bad
    file, returns a :class:`FrameInfo` with ``kind`` set instead."""
    path = Path(path)
    try:
        if os.stat(path).st_size == 0:
            return FrameInfo(kind="empty", detail="empty file (0 bytes)")
    except OSError as exc:
        return FrameInfo(kind="unreadable", detail=_one_line(exc))
    try:
        with Image.open(path) as img:
            info = FrameInfo(img.format, tuple(img.size), img.mode)
            img.verify()
    except UnidentifiedImageError:
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError:
            head = b""
        return FrameInfo(kind="not an image", detail=f"not an image Pillow can identify (starts with {head!r})")
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError...
        text = _one_line(exc)
        return FrameInfo(kind="truncated" if "truncated" in text.lower() else "unreadable", detail=text)
    if info.mode in UNSUPPORTED_MODES:
        return FrameInfo(
            info.format,
            info.size,
            info.mode,
            "unsupported mode",
            f"{info.mode} (16/32-bit) image: preprocessing reads 8-bit grey or colour frames only",
        )
    suspect = decode
    if not decode and info.format == "JPEG":
        try:
            suspect = not _jpeg_has_end_marker(path)
        except OSError as exc:
            return FrameInfo(kind="unreadable", detail=_one_line(exc))
    if suspect:
        problem = _decode_problem(path)
        if problem is not None:
            return FrameInfo(info.format, info.size, info.mode, problem.kind, problem.detail)
    return info


def _mode_text(mode: str) -> str:
    return {"L": "greyscale (L)", "1": "black-and-white (1)", "P": "palette (P)", "RGB": "RGB"}.get(
        mode, f"mode {mode}"
    )


def check_clip_frames(
    paths: Iterable[str | Path], *, decode: bool = False, cache: MutableMapping[Path, FrameInfo] | None = None
) -> list[FrameProblem]:
    """The damaged and inconsistent frames among one clip's ``paths``, in order.

    Each file is checked by :func:`inspect_frame` (``cache``: path -> result, shared between
    clips that share frames). Sizes are compared with the clip's first readable frame (as
    preprocessing does); modes with the clip's most common mode.
    """
    cache = {} if cache is None else cache
    infos = []
    for p in paths:
        p = Path(p)
        if p not in cache:
            cache[p] = inspect_frame(p, decode=decode)
        infos.append((p, cache[p]))
    readable = [(p, i) for p, i in infos if i.kind is None]
    problems: list[FrameProblem] = []
    if not readable:
        return [FrameProblem(p, i.kind, i.detail) for p, i in infos]
    ref_path, ref = readable[0]
    modes = Counter(i.mode for _, i in readable)
    common = max(modes, key=lambda m: (modes[m], m == ref.mode))
    for p, i in infos:
        if i.kind is not None:
            problems.append(FrameProblem(p, i.kind, i.detail or i.kind))
        elif i.size != ref.size:
            problems.append(
                FrameProblem(
                    p,
                    "resized",
                    f"{i.size[0]}x{i.size[1]} pixels, the clip's first frame "
                    f"{ref_path.name} {ref.size[0]}x{ref.size[1]}",
                )
            )
        elif i.mode != common:
            problems.append(
                FrameProblem(
                    p,
                    "inconsistent mode",
                    f"{_mode_text(i.mode)} among {_mode_text(common)} frames (preprocessing converts it to RGB)",
                )
            )
    return problems
