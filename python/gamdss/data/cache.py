"""The frame cache: face-cropped clips on disk, read without touching JPEGs again.

Layout of a cache folder::

    CACHE/manifest.json           format, version, settings, one entry per finished clip
    CACHE/clips/<name>.npy        uint8 [T, H, W, 3] RGB, one file per clip (memory-mappable)
    CACHE/.gamdss.lock            while ``gamdss preprocess`` writes it (:mod:`gamdss.util.run_lock`)

``manifest.json`` is rewritten atomically after every finished clip (or every few seconds,
see :class:`CacheWriter`), so an interrupted preprocessing run leaves a consistent cache that
lists only clips that are complete; clip files are written atomically too. Frame numbers in
an entry are the dataset's own; ``*_index`` fields are clip-relative, 0-based positions in
the clip file.

Integrity: every entry records the sha256 of its clip's pixels and (since cache version 2)
the clip file's size and modification time. :class:`FrameCache` checks a clip the first time
it reads it (once per clip per ``FrameCache`` object): when size and mtime are those
recorded it trusts the file (a ``stat``, no hashing); otherwise (the file was touched, copied
without its times, or the entry is from a version-1 cache that has no stamp) it hashes the
pixels once, and ``FrameCache(root, verify=True)`` always does. A mismatch raises
:class:`ChecksumError`. The fast path misses a change that keeps the size and restores the
mtime (or lands within the file system's timestamp granularity of the write); use
``verify=True`` where that matters. Readers need no lock; only one writer runs at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from gamdss.data.records import Correction
from gamdss.util import atomic

CACHE_FORMAT = "gamdss-frame-cache"
CACHE_VERSION = 3
# Versions this gamdss reads: 1 lacks the file stamps and frame notes (their defaults apply; a
# version-1 entry is hashed in full when first read), 1 and 2 the source frames' stamps (a
# resumed run records the sources as they are then). A run that resumes one writes version 3.
READABLE_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"


class ChecksumError(ValueError):
    """A clip file whose pixels do not match the sha256 recorded in the manifest."""


def clip_file_name(clip_id: str) -> str:
    """A file name for ``clip_id`` that is safe on every file system and unique
    (a readable part plus a hash of the exact id)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id).strip("._")[:80] or "clip"
    digest = hashlib.sha1(clip_id.encode("utf-8")).hexdigest()[:10]
    return f"{readable}-{digest}.npy"


@dataclass
class CacheEntry:
    """One clip of the cache (all JSON-serialisable).

    ``frame_numbers``: dataset frame numbers of the T cached frames, ascending.
    ``onset``/``apex``/``offset``: dataset frame numbers (after the reader's corrections);
    ``onset_index``/``apex_index``/``offset_index``: their 0-based positions in the clip.
    ``shape``: ``[T, H, W, 3]``; ``sha256``: of the clip file's array bytes.
    ``sources``: the source image files, in frame order. ``box``: the face box
    ``[x0, y0, x1, y1]`` in source pixels (``None`` when the full frame was used);
    ``face_prob``: the detector's probability for it; ``box_method``: how it was chosen.
    ``corrections``: the reader's corrections for this clip (``field``, ``original``,
    ``corrected``, ``reason``, ``source``).

    Since cache version 2 (absent in version-1 entries, which get the defaults):
    ``file_size``/``file_mtime_ns``: the clip file's size and mtime when it was written or last
    verified (the fast path of the checksum check). ``source_modes``: how many source frames
    had each Pillow mode (``{"RGB": 40}``, ``{"L": 40}``: all became RGB). ``mixed_mode_frames``:
    when a clip mixes modes, its frames whose mode differs from the clip's most common one
    (``frame``, ``file``, ``mode``), converted to RGB like the others. ``repaired_frames``:
    damaged or inconsistent source frames replaced by their nearest good neighbour
    (``--damaged-frames repeat``): ``frame``, ``file``, ``problem``, ``used_frame``, ``used``.

    Since cache version 3 (``None`` in earlier entries): ``source_stamps``: ``[size, mtime_ns]``
    of each source file when it was read (``[-1, -1]`` for one that could not be read), in
    frame order; ``source_sha256``: :func:`sources_digest` of those files. A resumed run redoes
    a clip whose sources changed since (stamps first; the digest decides when only the stamps
    or the paths differ, as after a copy or a move).
    """

    clip_id: str
    dataset: str
    subject: str
    video: str
    emotion: str
    aus: list[str]
    fps: float
    row: int
    frame_numbers: list[int]
    onset: int
    apex: int
    offset: int
    file: str
    shape: list[int]
    sha256: str
    sources: list[str]
    box: list[float] | None
    face_prob: float | None
    box_method: str
    meta: dict[str, str] = field(default_factory=dict)
    corrections: list[dict[str, Any]] = field(default_factory=list)
    file_size: int | None = None
    file_mtime_ns: int | None = None
    source_modes: dict[str, int] = field(default_factory=dict)
    mixed_mode_frames: list[dict[str, Any]] = field(default_factory=list)
    repaired_frames: list[dict[str, Any]] = field(default_factory=list)
    source_stamps: list[list[int]] | None = None
    source_sha256: str | None = None

    @property
    def onset_index(self) -> int:
        """0-based position of ``onset`` in the clip (an index into the clip file's frames)."""
        return self.frame_numbers.index(self.onset)

    @property
    def apex_index(self) -> int:
        """0-based position of ``apex`` in the clip."""
        return self.frame_numbers.index(self.apex)

    @property
    def offset_index(self) -> int:
        """0-based position of ``offset`` in the clip."""
        return self.frame_numbers.index(self.offset)

    @property
    def num_frames(self) -> int:
        """T, the number of cached frames (``shape[0]``)."""
        return int(self.shape[0])

    def to_json(self) -> dict[str, Any]:
        """The entry as its manifest object (every field; the inverse of :meth:`from_json`)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CacheEntry:
        """An entry from its manifest object; ``TypeError`` naming the first field whose JSON
        value has the wrong type (a number where a list belongs, text where a number does)."""
        entry = cls(**data)
        for name, kind in _FIELD_KINDS.items():
            value = getattr(entry, name)
            if not _is_kind(value, kind):
                raise TypeError(f"field {name!r} is {type(value).__name__} {value!r:.40}, expected {kind}")
        _check_consistent(entry)
        return entry


def _check_consistent(entry: CacheEntry) -> None:
    """``ValueError`` when the entry's fields contradict each other or cannot be true:
    ``shape`` is not ``[T, H, W, 3]`` with ``T`` its number of frame numbers, the frame
    numbers do not increase, ``fps`` is not a positive finite number, or a keyframe is not
    one of its frame numbers (what every reader of the cache relies on)."""
    shape, numbers = entry.shape, entry.frame_numbers
    if len(shape) != 4 or shape[3] != 3 or shape[0] != len(numbers) or min(shape) < 1:
        raise ValueError(f"shape {shape} is not [T, H, W, 3] with T = its {len(numbers)} frame numbers")
    if not math.isfinite(entry.fps) or entry.fps <= 0:
        raise ValueError(f"fps {entry.fps} is not a positive frame rate")
    if any(b <= a for a, b in zip(numbers, numbers[1:])):
        raise ValueError("its frame numbers do not increase from one frame to the next")
    if entry.sources and len(entry.sources) != len(numbers):
        raise ValueError(f"{len(entry.sources)} sources for {len(numbers)} frame numbers")
    if entry.source_stamps is not None and len(entry.source_stamps) != len(entry.sources):
        raise ValueError(f"{len(entry.source_stamps)} source stamps for {len(entry.sources)} sources")
    for c in entry.corrections:
        if set(c) != _CORRECTION_KEYS:
            raise ValueError(f"a correction has the keys {sorted(c)}, expected {sorted(_CORRECTION_KEYS)}")
    known = set(numbers)
    for name in ("onset", "apex", "offset"):
        frame = getattr(entry, name)
        if frame not in known:
            raise ValueError(
                f"{name} {frame} is not one of its frame numbers ({numbers[0]}..{numbers[-1]}, {len(numbers)} frames)"
            )


#: the keys of each object of an entry's ``corrections``
_CORRECTION_KEYS = {f.name for f in fields(Correction)}

#: the JSON kind of each typed entry field (checked by :meth:`CacheEntry.from_json`)
_FIELD_KINDS = {
    "clip_id": "text",
    "dataset": "text",
    "subject": "text",
    "video": "text",
    "emotion": "text",
    "fps": "number",
    "row": "integer",
    "onset": "integer",
    "apex": "integer",
    "offset": "integer",
    "file": "text",
    "sha256": "text",
    "box_method": "text",
    "frame_numbers": "integer list",
    "shape": "integer list",
    "aus": "text list",
    "sources": "text list",
    "box": "number list or null",
    "face_prob": "number or null",
    "meta": "text map",
    "corrections": "object list",
    "file_size": "integer or null",
    "file_mtime_ns": "integer or null",
    "source_modes": "integer map",
    "mixed_mode_frames": "object list",
    "repaired_frames": "object list",
    "source_stamps": "integer pair list or null",
    "source_sha256": "text or null",
}


def _is_kind(value: Any, kind: str) -> bool:
    if kind.endswith(" or null"):
        return value is None or _is_kind(value, kind.removesuffix(" or null"))
    integer = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    number = lambda v: (integer(v) or isinstance(v, float)) and v == v  # noqa: E731
    text = lambda v: isinstance(v, str)  # noqa: E731
    obj = lambda v: isinstance(v, dict) and all(text(k) for k in v)  # noqa: E731
    pair = lambda v: isinstance(v, list) and len(v) == 2 and all(integer(x) for x in v)  # noqa: E731
    one = {"text": text, "integer": integer, "number": number, "object": obj, "integer pair": pair}
    if kind in one:
        return one[kind](value)
    item_kind, container = kind.rsplit(" ", 1)
    item = one[item_kind]
    if container == "list":
        return isinstance(value, list) and all(item(v) for v in value)
    return obj(value) and all(item(v) for v in value.values())  # "map": text keys


def array_digest(frames: np.ndarray) -> str:
    """sha256 of a C-contiguous array's bytes."""
    return hashlib.sha256(np.ascontiguousarray(frames).data).hexdigest()


def write_clip_file(root: str | Path, clip_id: str, frames: np.ndarray) -> tuple[str, str]:
    """Atomically write one clip's frames; returns (file name relative to ``root``, sha256).

    ``frames`` must be uint8 ``[T, H, W, 3]``. Safe to call from worker processes: it
    touches only the clip's own file, never the manifest.
    """
    frames = np.ascontiguousarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"clip {clip_id}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    rel = f"clips/{clip_file_name(clip_id)}"
    with atomic.atomic_path(Path(root) / rel) as tmp:
        np.save(tmp, frames, allow_pickle=False)
    return rel, array_digest(frames)


def file_stamp(path: str | Path) -> dict[str, int]:
    """``{"file_size", "file_mtime_ns"}`` of ``path``: the fast path of the checksum check
    (record it in the entry right after :func:`write_clip_file`)."""
    st = os.stat(path)
    return {"file_size": int(st.st_size), "file_mtime_ns": int(st.st_mtime_ns)}


def source_stamps(paths: Sequence[str | Path]) -> list[list[int]]:
    """``[size, mtime_ns]`` of each source file (``[-1, -1]`` where ``stat`` fails)."""
    stamps = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            stamps.append([-1, -1])
        else:
            stamps.append([int(st.st_size), int(st.st_mtime_ns)])
    return stamps


def sources_digest(paths: Sequence[str | Path]) -> str:
    """sha256 over the bytes of the source files, in order (each file's length first; a file
    that cannot be read counts as missing)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError:
            h.update(b"missing\0")
            continue
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def stamp_matches(entry: CacheEntry, st: os.stat_result) -> bool:
    """Whether the file's size and mtime are the ones recorded in ``entry``."""
    return (
        entry.file_size is not None
        and entry.file_mtime_ns is not None
        and entry.file_size == st.st_size
        and entry.file_mtime_ns == st.st_mtime_ns
    )


def checksum_message(entry: CacheEntry, path: Path) -> str:
    """The error text for a clip file at ``path`` that does not match ``entry``'s sha256, with
    how to redo or restore it."""
    return (
        f"clip {entry.clip_id}: {path} does not match its checksum; rerun `gamdss preprocess` into "
        f"this cache to redo the clip (--overwrite redoes every clip) or restore the file"
    )


class FrameCache:
    """A finished (or partly finished) frame cache, opened for reading.

    ``header`` holds the settings it was made with (``dataset``, ``size`` as ``[H, W]``,
    preprocessing options, gamdss version). Entries keep the manifest's order (clip id order
    in a manifest written by this version; earlier ones listed clips as they finished).

    Each clip is checked against its recorded sha256 the first time :meth:`frames` reads it
    (see the module doc): a ``stat`` when the file's size and mtime are the recorded ones,
    the full hash otherwise, or always with ``verify=True``. A mismatch raises
    :class:`ChecksumError` naming the clip and the file.
    """

    def __init__(self, root: str | Path, verify: bool = False):
        self.root = Path(root)
        self.full_verify = bool(verify)
        self._checked: set[str] = set()
        path = self.root / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(
                f"{self.root} is not a gamdss frame cache: {MANIFEST} is missing (make one with `gamdss preprocess`)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ValueError(
                f"{path}: not a gamdss frame cache manifest (a JSON {type(data).__name__}, expected an object)"
            )
        if data.get("format") != CACHE_FORMAT:
            raise ValueError(f"{path}: not a gamdss frame cache manifest (format={data.get('format')!r})")
        if data.get("version") not in READABLE_VERSIONS:
            raise ValueError(
                f"{path}: cache version {data.get('version')} is not supported by this "
                f"gamdss (it reads {', '.join(map(str, READABLE_VERSIONS))}); preprocess again "
                f"into a new folder"
            )
        if not isinstance(data.get("header"), dict) or not isinstance(data.get("clips"), list):
            raise ValueError(f"{path}: the manifest lacks its 'header' object or 'clips' list")
        self.header: dict[str, Any] = data["header"]
        self._entries = {}
        for k, e in enumerate(data["clips"]):
            try:
                entry = CacheEntry.from_json(e)
            except (TypeError, AttributeError, ValueError) as exc:
                name = e.get("clip_id", "?") if isinstance(e, dict) else "?"
                raise ValueError(
                    f"{path}: clip {k} ({name}) is not a valid entry ({exc}); preprocess again into a new folder"
                ) from None
            if entry.clip_id in self._entries:
                raise ValueError(
                    f"{path}: clip {k} ({entry.clip_id}) is listed twice; preprocess again into a new folder"
                )
            self._entries[entry.clip_id] = entry

    @property
    def entries(self) -> list[CacheEntry]:
        """Every entry, in the manifest's order (a new list)."""
        return list(self._entries.values())

    @property
    def dataset(self) -> str:
        """The dataset name recorded in the header (``""`` when there is none)."""
        return str(self.header.get("dataset", ""))

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[CacheEntry]:
        return iter(self.entries)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._entries

    def __getitem__(self, clip_id: str) -> CacheEntry:
        try:
            return self._entries[clip_id]
        except KeyError:
            raise KeyError(f"clip {clip_id!r} is not in the cache {self.root}") from None

    def frames(self, clip: str | CacheEntry, mmap: bool = True) -> np.ndarray:
        """The clip's frames, uint8 ``[T, H, W, 3]`` RGB (read-only memory map by default).

        The first read of a clip by this object checks it against the manifest's sha256
        (:class:`ChecksumError` when it differs; see the class doc)."""
        entry = clip if isinstance(clip, CacheEntry) else self[clip]
        path, frames = self._load(entry, mmap)
        if entry.clip_id not in self._checked:
            if self.full_verify or not stamp_matches(entry, path.stat()):
                if array_digest(frames) != entry.sha256:
                    raise ChecksumError(checksum_message(entry, path))
            self._checked.add(entry.clip_id)
        return frames

    def verify(self, clip: str | CacheEntry) -> bool:
        """True when the clip file's pixels match the sha256 in the manifest (always hashes
        them; :meth:`frames` raises :class:`ChecksumError` instead)."""
        entry = clip if isinstance(clip, CacheEntry) else self[clip]
        ok = array_digest(self._load(entry, True)[1]) == entry.sha256
        if ok:
            self._checked.add(entry.clip_id)
        return ok

    def _load(self, entry: CacheEntry, mmap: bool) -> tuple[Path, np.ndarray]:
        path = self.root / entry.file
        if not path.is_file():
            raise FileNotFoundError(f"clip {entry.clip_id}: cache file {path} is missing")
        try:
            frames = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(
                f"clip {entry.clip_id}: {path} is truncated or not a .npy file ({exc}); "
                f"run `gamdss preprocess` again to redo it"
            ) from None
        if list(frames.shape) != list(entry.shape) or frames.dtype != np.uint8:
            raise ValueError(
                f"clip {entry.clip_id}: {path} holds {frames.dtype} {list(frames.shape)}, "
                f"the manifest says uint8 {entry.shape}"
            )
        return path, frames


class CacheWriter:
    """Creates or resumes a cache folder; the only code that writes ``manifest.json``.

    ``header`` records the settings that determine the cached pixels (dataset, size, box
    method, ...). Resuming into a folder made with a different header raises, naming the
    differing settings, unless ``overwrite=True`` (then earlier entries are dropped; their
    files are replaced as clips are redone).

    By default the manifest is rewritten after every :meth:`add`. Long runs pass
    ``flush_seconds`` > 0 and use the writer in a ``with`` block (or call :meth:`flush`):
    the manifest is then rewritten at most that often, so thousands of clips do not rewrite
    a megabyte-sized manifest after each one; an interruption costs at most the clips
    finished since the last flush, which a resumed run redoes.
    """

    def __init__(self, root: str | Path, header: dict[str, Any], overwrite: bool = False, flush_seconds: float = 0.0):
        self.root = Path(root)
        self.header = dict(header)
        self.flush_seconds = float(flush_seconds)
        self._entries: dict[str, CacheEntry] = {}
        #: clips whose file was found not to match its checksum by :meth:`completed`
        self.mismatched: set[str] = set()
        if (self.root / MANIFEST).is_file():
            existing = FrameCache(self.root)
            differing = sorted(
                k
                for k in set(existing.header) | set(self.header)
                if k not in _VOLATILE and existing.header.get(k) != self.header.get(k)
            )
            if differing and not overwrite:
                details = ", ".join(f"{k}: {existing.header.get(k)!r} -> {self.header.get(k)!r}" for k in differing)
                raise ValueError(
                    f"{self.root} holds a cache made with other settings ({details}); "
                    f"choose another folder or pass overwrite=True (--overwrite)"
                )
            if not differing:
                self._entries = {e.clip_id: e for e in existing.entries}
        (self.root / "clips").mkdir(parents=True, exist_ok=True)
        self.flush()

    def completed(self, clip_id: str) -> bool:
        """True when the clip is in the manifest and its file exists with the recorded shape
        and pixels: the recorded size and mtime, or else the recorded sha256 (the entry then
        gets the file's current stamp, written with the next flush). A clip whose file does
        not match its checksum is not complete (and is listed in :attr:`mismatched`)."""
        entry = self._entries.get(clip_id)
        if entry is None:
            return False
        path = self.root / entry.file
        if not path.is_file():
            return False
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            st = path.stat()
        except (OSError, ValueError):
            return False
        if list(arr.shape) != list(entry.shape) or arr.dtype != np.uint8:
            return False
        if stamp_matches(entry, st):
            return True
        if array_digest(arr) != entry.sha256:
            self.mismatched.add(clip_id)
            return False
        self._entries[clip_id] = replace(entry, file_size=int(st.st_size), file_mtime_ns=int(st.st_mtime_ns))
        self._dirty = True
        return True

    def get(self, clip_id: str) -> CacheEntry | None:
        """The recorded entry of ``clip_id`` (``None`` when there is none)."""
        return self._entries.get(clip_id)

    def discard(self, clip_id: str) -> bool:
        """Drop the clip's entry (its file stays until a redo replaces it); whether it had one."""
        if self._entries.pop(clip_id, None) is None:
            return False
        self._dirty = True
        return True

    def add(self, entry: CacheEntry) -> None:
        """Record a finished clip (its file already written by :func:`write_clip_file`)."""
        self._entries[entry.clip_id] = entry
        self._dirty = True
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    @property
    def entries(self) -> list[CacheEntry]:
        """The entries recorded so far, those of a resumed manifest included (a new list; the
        manifest :meth:`flush` writes sorts them by clip id)."""
        return list(self._entries.values())

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def flush(self) -> None:
        """Write the manifest now (atomically)."""
        data = {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "header": self.header,
            # clip id order: the same clips give the same manifest, in whatever order the
            # workers finished them or however often the run was resumed
            "clips": [self._entries[c].to_json() for c in sorted(self._entries)],
        }
        atomic.write_text(self.root / MANIFEST, json.dumps(data, indent=1))
        self._dirty = False
        self._last_flush = time.monotonic()


# Header keys that may differ between an interrupted run and its resumption.
_VOLATILE = frozenset({"created", "gamdss_version", "workers"})
