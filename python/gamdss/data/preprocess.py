"""Face-crop every clip of a dataset into the frame cache (:mod:`gamdss.data.cache`).

For each :class:`~gamdss.data.records.ClipRecord`: read its frames with Pillow (grey,
palette and RGBA images become RGB; all frames of a clip must have one size), choose one face
box for the whole clip (:mod:`gamdss.data.face`), crop every frame with it and resize to
``size`` = ``(H, W)`` with Pillow's bilinear filter, which is antialiased when shrinking
(its support grows with the scale factor, so every source pixel under the box contributes, as
an area filter would; no aliasing from skipping pixels). The clip is written as uint8
``[T, H, W, 3]`` RGB and recorded in the manifest.

Damaged frames: a source frame that is empty, not an image, truncated, of an unsupported
mode (16/32-bit) or of another size than the clip's other frames is reported by file name and
handled by the ``damaged_frames`` policy (``--damaged-frames``): ``fail`` (default) fails the
clip with a message naming every such frame; ``repeat`` replaces each by its nearest good
frame (the earlier one on a tie), converted to RGB like the rest, and records the repair in
the clip's manifest entry (``repaired_frames``). Frames of another mode (a grey JPEG among
colour ones) are not damage: they are converted to RGB and listed (``mixed_mode_frames``).

Runs are resumable: clips already in the cache, made with the same settings from the same
source files and matching their checksums, are not redone. Clips are processed in parallel by
a pool of processes (each with its own MTCNN); only the main process writes the manifest. A
clip that fails (no face, damaged frames) is reported and does not stop the others; a full
disk (:class:`gamdss.util.atomic.DiskFullError`) stops the run.

One writer per cache: a run holds the cache folder's lock (:func:`gamdss.util.run_lock.hold`) from
its first check to its last write, and a second run into the same folder fails at once with
:class:`gamdss.util.run_lock.FolderBusyError` naming the first (pid, host, start time).

Stopping: SIGINT (Ctrl-C) or SIGTERM stops the workers, writes the manifest with every clip
finished so far and raises :class:`PreprocessInterrupted` (a ``KeyboardInterrupt``; the
command exits 130 for SIGINT, 143 for SIGTERM). Workers die with the main process however it
ends (``kill -9`` included): on Linux they ask the kernel for SIGKILL when their parent dies
(``prctl(PR_SET_PDEATHSIG)``), and every worker also watches its parent pid and exits when it
changes. A worker killed mid-write leaves a temporary file in ``clips/``, which the next run
removes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import functools
import importlib.metadata
import math
import os
import signal
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

import gamdss
from gamdss.data.cache import (
    MANIFEST,
    CacheEntry,
    CacheWriter,
    FrameCache,
    file_stamp,
    source_stamps,
    sources_digest,
    write_clip_file,
)
from gamdss.data.face import (
    BOX_METHODS,
    DEFAULT_DETECT_FRAMES,
    DEFAULT_MARGIN,
    FaceBox,
    FaceDetector,
    NoFaceError,
    choose_box,
)
from gamdss.data.records import ClipRecord
from gamdss.data.workers import default_workers, run_in_processes, worker_died
from gamdss.settings import yaml_io
from gamdss.util import atomic, run_lock
from gamdss.util.devices import check_device

RESIZE_FILTER = "Pillow bilinear (antialiased)"
CONFIG_FILE = "preprocess.yaml"
FAILURES_FILE = "preprocess-failures.txt"
DAMAGED_FRAME_POLICIES = ("fail", "repeat")
LOCK_WHAT = "gamdss preprocess"


class FrameReadError(ValueError):
    """A source image of a clip cannot be used (unreadable, unsupported mode, other size)."""


class PreprocessInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM (or a ``KeyboardInterrupt``) after writing the
    manifest with every clip finished so far. ``signum``: the signal; ``report``: what was
    done; ``exit_status``: 128 + ``signum`` (130, 143); ``str()``: one line."""

    def __init__(self, signum: int, report: PreprocessReport):
        self.signum = int(signum)
        self.report = report
        self.exit_status = 128 + self.signum
        name = signal.Signals(self.signum).name
        cached = len(report.done) + len(report.already_done)
        super().__init__(
            f"stopped by {name}; {cached} of {report.total} clip(s) are in the cache "
            f"({len(report.done)} finished by this run), recorded in {report.cache / MANIFEST}; "
            f"run the same command again to resume"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class _Signalled(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@dataclass
class PreprocessConfig:
    """Settings of a preprocessing run (saved as ``CACHE/preprocess.yaml``).

    ``size``: output ``(H, W)`` in pixels. ``box_method``: ``median`` or ``onset``
    (:mod:`gamdss.data.face`). ``margin``: added on each side of the face box, as a fraction
    of its longer side. ``detect_frames``: evenly spaced frames tried besides onset, apex and
    offset (``median`` only). ``min_face_size``: smallest face MTCNN looks for, in pixels.
    ``device``: where MTCNN runs. ``workers``: processes (``None``: min(4, CPUs it may use)).
    ``full_frame_fallback``: use the whole frame for a clip without a face instead of failing.
    ``damaged_frames``: ``fail`` or ``repeat`` (see the module doc; not part of the cache
    header: clips record their own repairs).
    """

    size: tuple[int, int] = (224, 224)
    box_method: str = "median"
    margin: float = DEFAULT_MARGIN
    detect_frames: int = DEFAULT_DETECT_FRAMES
    min_face_size: int = 20
    device: str = "cpu"
    workers: int | None = None
    full_frame_fallback: bool = False
    damaged_frames: str = "fail"

    def __post_init__(self) -> None:
        size = tuple(int(v) for v in (self.size if isinstance(self.size, (tuple, list)) else (self.size, self.size)))
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size must be (H, W) with positive sides, got {self.size!r}")
        self.size = size
        if self.box_method not in BOX_METHODS:
            raise ValueError(f"box_method must be one of {', '.join(BOX_METHODS)}; got {self.box_method!r}")
        if not (math.isfinite(self.margin) and self.margin >= 0):
            raise ValueError(f"margin must be a finite number >= 0, got {self.margin!r}")
        if self.detect_frames < 0:
            raise ValueError(f"detect_frames must be >= 0, got {self.detect_frames!r}")
        if self.min_face_size < 1:
            raise ValueError(f"min_face_size must be >= 1, got {self.min_face_size!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers!r}")
        if self.damaged_frames not in DAMAGED_FRAME_POLICIES:
            raise ValueError(
                f"damaged_frames must be one of {', '.join(DAMAGED_FRAME_POLICIES)}; got {self.damaged_frames!r}"
            )

    @property
    def num_workers(self) -> int:
        """``workers``, or :func:`gamdss.data.workers.default_workers` when it is ``None``."""
        return self.workers if self.workers is not None else default_workers()

    def header(self, dataset: str) -> dict[str, Any]:
        """The cache header: the settings that determine the cached pixels, plus provenance."""

        return {
            "dataset": dataset,
            "size": list(self.size),
            "box_method": self.box_method,
            "margin": float(self.margin),
            "detect_frames": int(self.detect_frames),
            "min_face_size": int(self.min_face_size),
            "resize": RESIZE_FILTER,
            "detector": f"facenet-pytorch MTCNN {importlib.metadata.version('facenet-pytorch')}",
            "gamdss_version": gamdss.__version__,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }

    def to_yaml(self, path: str | Path) -> Path:
        """Write the settings to ``path`` (:func:`gamdss.settings.yaml_io.save`; replaces it:
        the cache's own record)."""
        return yaml_io.save(self, path, overwrite=True)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PreprocessConfig:
        """Settings from a YAML file (:func:`gamdss.settings.yaml_io.load`); unknown keys or
        values of the wrong type raise ``ValueError`` naming the file and the key."""
        return yaml_io.load(cls, path)


@dataclass(frozen=True)
class ClipFailure:
    """A clip id and one line about it: why it failed, or (in the other lists of
    :class:`PreprocessReport`) what was updated, repaired or converted."""

    clip_id: str
    reason: str


@dataclass
class PreprocessReport:
    """What a run did. ``done``: clips written now; ``already_done``: clips found complete in
    the cache and left alone; ``failed``: clips not written, with the reason; ``full_frame``:
    the done clips without a face that were cached as full frames (``--full-frame-fallback``);
    ``repaired``: done clips with damaged frames replaced (``damaged_frames="repeat"``), what
    was replaced; ``mixed_modes``: done clips whose frames mixed image modes (all converted to
    RGB); ``total``: the clips given."""

    cache: Path
    done: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    failed: list[ClipFailure] = field(default_factory=list)
    full_frame: list[str] = field(default_factory=list)
    # Clips found in the cache whose annotation changed since (keyframes: the clip was redone
    # and is also in ``done``; labels or metadata only: its manifest entry was rewritten), or
    # whose file no longer matched its checksum (redone).
    updated: list[ClipFailure] = field(default_factory=list)
    repaired: list[ClipFailure] = field(default_factory=list)
    mixed_modes: list[ClipFailure] = field(default_factory=list)
    total: int = 0

    @property
    def ok(self) -> bool:
        """True when no clip failed."""
        return not self.failed

    def summary(self) -> str:
        """What was done, without the failures (:meth:`failure_lines`, :meth:`failure_summary`)."""
        lines = [
            f"frame cache {self.cache}: {len(self.done)} clip(s) written, "
            f"{len(self.already_done)} already done, {len(self.failed)} failed"
        ]
        lines += [f"  updated {u.clip_id}: {u.reason}" for u in self.updated]
        if self.full_frame:
            lines.append(f"  full frame used (no face found): {', '.join(self.full_frame)}")
        lines += [f"  repaired {r.clip_id}: {r.reason}" for r in self.repaired]
        lines += [f"  converted to RGB {m.clip_id}: {m.reason}" for m in self.mixed_modes]
        return "\n".join(lines)

    def failure_lines(self) -> list[str]:
        """One line per failed clip: ``FAILED <clip>: <reason>``."""
        return [f"FAILED {f.clip_id}: {f.reason}" for f in self.failed]

    def failure_summary(self) -> str:
        """One line: ``3 of 40 clips failed; see ...`` (empty when none failed)."""
        if not self.failed:
            return ""
        where = f"the FAILED lines above or {self.cache / FAILURES_FILE}"
        failed = {f.clip_id for f in self.failed}
        relabelled = {u.clip_id for u in self.updated} - failed  # label-only updates stay cached
        if not self.done and not self.already_done and not relabelled:
            return f"every clip failed ({len(self.failed)} of {self.total}); nothing new was cached; see {where}"
        return (
            f"{len(self.failed)} of {self.total} clips failed; see {where}; the others are cached, and a "
            f"new run redoes only what is missing"
        )


def preprocess_clips(
    clips: Sequence[ClipRecord],
    out: str | Path,
    *,
    dataset: str,
    size: int | tuple[int, int] = (224, 224),
    box_method: str = "median",
    margin: float = DEFAULT_MARGIN,
    detect_frames: int = DEFAULT_DETECT_FRAMES,
    min_face_size: int = 20,
    workers: int | None = None,
    device: str = "cpu",
    full_frame_fallback: bool = False,
    overwrite: bool = False,
    damaged_frames: str = "fail",
    progress: bool = True,
) -> PreprocessReport:
    """Face-crop ``clips`` into the frame cache folder ``out``; returns what was done.

    ``size``: output ``(H, W)`` (an int means square). ``workers``: processes working on clips
    (default min(4, CPUs it may use); 1 runs in this process; more start fresh ``spawn`` processes, so
    a script calling this needs the ``if __name__ == "__main__":`` guard). Clips already
    complete in ``out`` with the same settings and source files are skipped. ``overwrite=True`` redoes every
    given clip and replaces a cache made with other settings (without it, such a cache, or a
    non-empty folder that is not a cache, raises ``ValueError``). ``damaged_frames``: ``fail``
    or ``repeat`` (module doc).

    Holds ``out``'s lock throughout (:class:`gamdss.util.run_lock.FolderBusyError` when another run
    holds it). Failed clips are listed in ``out/preprocess-failures.txt`` (removed by a run
    without failures). In the main thread, SIGINT and SIGTERM stop the run: the manifest is
    written and :class:`PreprocessInterrupted` raised. A full disk raises
    :class:`gamdss.util.atomic.DiskFullError` (the manifest lists the clips finished before it).
    """
    config = PreprocessConfig(
        size=size,
        box_method=box_method,
        margin=margin,
        detect_frames=detect_frames,
        min_face_size=min_face_size,
        device=device,
        workers=workers,
        full_frame_fallback=full_frame_fallback,
        damaged_frames=damaged_frames,
    )
    check_device(config.device)
    out = Path(out)
    ids = [c.clip_id for c in clips]
    dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dupes:
        raise ValueError(f"clip ids must be unique; repeated: {', '.join(dupes)}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is a file, not a folder")
    _refuse_foreign_folder(out, overwrite)
    with run_lock.hold(out, LOCK_WHAT):
        _refuse_foreign_folder(out, overwrite)  # again, now that no other run can write it
        report = PreprocessReport(cache=out, total=len(clips))
        with _stop_signals():
            try:
                _preprocess_locked(clips, out, config, dataset, overwrite, progress, report)
            except KeyboardInterrupt as exc:  # SIGINT, SIGTERM (_Signalled) or Ctrl-C in a callee
                _sort_report(report, ids)
                raise PreprocessInterrupted(getattr(exc, "signum", signal.SIGINT), report) from None
    _sort_report(report, ids)
    return report


def _refuse_foreign_folder(out: Path, overwrite: bool) -> None:
    if (
        out.is_dir()
        and not (out / MANIFEST).is_file()
        and not overwrite
        and any(p.name != run_lock.LOCK_NAME for p in out.iterdir())
    ):
        raise ValueError(
            f"{out} is not empty and holds no gamdss frame cache; choose an empty or new "
            f"folder (or pass overwrite=True / --overwrite to write the cache there anyway)"
        )


def _preprocess_locked(
    clips: Sequence[ClipRecord],
    out: Path,
    config: PreprocessConfig,
    dataset: str,
    overwrite: bool,
    progress: bool,
    report: PreprocessReport,
) -> None:
    header = config.header(dataset)
    if (out / MANIFEST).is_file():
        previous = FrameCache(out).header
        if all(previous.get(k) == v for k, v in header.items() if k not in ("created", "gamdss_version")):
            header["created"] = previous.get("created", header["created"])
    writer = CacheWriter(out, header, overwrite=overwrite, flush_seconds=5.0)
    config.to_yaml(out / CONFIG_FILE)
    # a killed run's temporary files (safe: this run holds the lock, and every writer of the
    # cache is this process or its workers)
    atomic.remove_temporaries(out, "clips/*.npy", MANIFEST, CONFIG_FILE)

    todo: list[ClipRecord] = []
    pending_updates: list[CacheEntry] = []
    stale: set[str] = set()  # queued because the entry no longer matches: dropped if the redo fails
    for clip in clips:
        if not overwrite and writer.completed(clip.clip_id):
            entry = writer.get(clip.clip_id)
            resume = _resume(entry, clip)
            if isinstance(resume, str):
                report.failed.append(ClipFailure(clip.clip_id, resume))
                continue
            if resume.reasons:
                report.updated.append(ClipFailure(clip.clip_id, "; ".join(resume.reasons)))
            if resume.redo:
                todo.append(clip)
                stale.add(clip.clip_id)
                continue
            if not resume.changed:
                report.already_done.append(clip.clip_id)
            if resume.entry != entry:  # same pixels: new labels, paths or stamps
                pending_updates.append(resume.entry)
            continue
        if clip.clip_id in writer.mismatched:
            report.updated.append(ClipFailure(clip.clip_id, "its cache file did not match its checksum; redone"))
        entry = writer.get(clip.clip_id)
        if entry is not None and (
            not overwrite or not writer.completed(clip.clip_id) or _no_longer_matches(entry, clip)
        ):
            stale.add(clip.clip_id)  # its file is missing or damaged, or it was made from what changed
        todo.append(clip)

    settings = _settings(config)

    for entry in pending_updates:  # same pixels: new labels, paths or stamps
        writer.add(entry)
    with (
        writer,
        tqdm(
            total=len(clips), initial=len(clips) - len(todo), desc="preprocess", unit="clip", disable=not progress
        ) as bar,
    ):

        def finish(clip_id: str, result: CacheEntry | str) -> None:
            if isinstance(result, CacheEntry):
                writer.add(result)
                report.done.append(clip_id)
                if result.box_method == "full-frame":
                    report.full_frame.append(clip_id)
                if result.repaired_frames:
                    report.repaired.append(
                        ClipFailure(
                            clip_id,
                            "; ".join(f"{r['file']} {r['problem']}: used {r['used']}" for r in result.repaired_frames),
                        )
                    )
                if result.mixed_mode_frames:
                    common = Counter(result.source_modes).most_common(1)[0][0]
                    report.mixed_modes.append(
                        ClipFailure(
                            clip_id,
                            ", ".join(f"{m['file']} is {m['mode']}" for m in result.mixed_mode_frames)
                            + f" among {common} frames",
                        )
                    )
            else:
                reason = _without_clip_prefix(clip_id, result)
                if clip_id in stale and writer.discard(clip_id):  # it no longer matches its annotation or sources
                    reason += " (its earlier cache entry was removed: it no longer matched)"
                report.failed.append(ClipFailure(clip_id, reason))
            bar.update(1)

        if config.num_workers == 1 or len(todo) <= 1:
            for clip in todo:
                finish(clip.clip_id, _run_clip(clip, out, settings))
        else:
            _run_pool(todo, out, settings, config, finish)
    _write_failures(out, report)


def _same_files(recorded: list[str], now: list[str]) -> bool:
    """Whether two lists of source paths name the same files: equal, or equal once resolved
    (a relative path from the current folder, as caches made before paths were absolute hold)."""
    if recorded == now:
        return True
    return len(recorded) == len(now) and all(os.path.realpath(a) == os.path.realpath(b) for a, b in zip(recorded, now))


def _compare_sources(entry: CacheEntry, clip: ClipRecord) -> tuple[CacheEntry, list[str], list[str]] | str:
    """How the clip's source files compare with those its cache entry was made from.

    Returns ``(entry, changed, notes)``: the entry with the current paths, stamps and digest
    (the files are the same: the same paths, or the same bytes under other paths or times, as
    after a move or a copy), the names of the files whose contents changed (the clip is redone)
    and notes for the report. Returns the reason instead when the clip's frames or files are
    others (then only ``--overwrite`` redoes it). The files are read (hashed) only where the
    paths or stamps differ, or the entry has no digest yet (a cache made before version 3)."""
    now = [str(p) for p in clip.frame_paths]
    if entry.frame_numbers != list(clip.frame_numbers):
        return _other_sources(entry, clip)

    @functools.cache  # the files are read at most once
    def digest_now() -> str:
        return sources_digest(now)

    def same_bytes() -> bool:
        return entry.source_sha256 is not None and digest_now() == entry.source_sha256

    stamps = source_stamps(now)  # before any hashing: a file written meanwhile differs next time
    notes = []
    if not _same_files(entry.sources, now):
        if not same_bytes():
            return _other_sources(entry, clip)
        notes.append("its source files moved (the same bytes): their paths are updated")
    touched = _changed_sources(entry, stamps)
    if touched and same_bytes():
        touched = []  # copied without their times: the same bytes
    if touched:
        return entry, touched, notes
    # the same bytes as recorded, or (an entry made before digests) the files as they are now
    recorded = entry.source_sha256 or digest_now()
    return dataclasses.replace(entry, sources=now, source_stamps=stamps, source_sha256=recorded), [], notes


@dataclasses.dataclass
class _Resume:
    """What a rerun does with a clip the cache already holds (:func:`_resume`)."""

    # with the current source paths, stamps and digest where the files are the same, and (no
    # redo) the current labels: the entry to record
    entry: CacheEntry
    changed: list[str]  # annotation fields that differ from the entry's
    redo: bool  # new pixels, or a face box detected on other keyframes
    reasons: list[str]  # for the report ("annotation changed: ...", "source frames changed ...")


def _resume(entry: CacheEntry, clip: ClipRecord) -> _Resume | str:
    """How the cached ``entry`` compares with ``clip`` as it is now: its sources
    (:func:`_compare_sources`) and its annotation; the reason instead when it was made from
    other frames or files."""
    compared = _compare_sources(entry, clip)
    if isinstance(compared, str):
        return compared
    current, touched, reasons = compared
    fields = annotation_fields(clip)
    changed = sorted(k for k, v in fields.items() if getattr(current, k) != v)
    if changed:
        reasons.append(f"annotation changed: {', '.join(changed)}")
    if touched:
        more = f" and {len(touched) - 3} more" if len(touched) > 3 else ""
        reasons.append(f"source frames changed since it was cached: {', '.join(touched[:3])}{more}")
    redo = bool(touched) or any(k in KEYFRAME_FIELDS for k in changed)
    if changed and not redo:  # same pixels, new labels: only the manifest entry changes
        current = dataclasses.replace(current, **fields)
    return _Resume(current, changed, redo, reasons)


def _no_longer_matches(entry: CacheEntry, clip: ClipRecord) -> bool:
    """Whether the entry was made from other frames, files or keyframes than the clip has now
    (then a failed redo must not leave it in the cache)."""
    resume = _resume(entry, clip)
    return isinstance(resume, str) or resume.redo


def _other_sources(entry: CacheEntry, clip: ClipRecord) -> str:
    """Why a cached clip cannot be resumed: its frames, or the files they come from, differ."""
    now = [str(p) for p in clip.frame_paths]
    pairs = zip(entry.sources, now)
    k = next((k for k, (a, b) in enumerate(pairs) if os.path.realpath(a) != os.path.realpath(b)), None)
    if entry.frame_numbers == list(clip.frame_numbers) and k is not None:
        what = f"from other source files (frame {entry.frame_numbers[k]}: {entry.sources[k]} then, {now[k]} now)"
    else:
        what = (
            f"from other source frames ({len(entry.sources)} frames {entry.frame_numbers[0]}-"
            f"{entry.frame_numbers[-1]}, now {len(clip)} frames {clip.frame_numbers[0]}-{clip.frame_numbers[-1]})"
        )
    return f"the cache holds it made {what}; pass overwrite=True (--overwrite) to redo it"


def _changed_sources(entry: CacheEntry, stamps: list[list[int]]) -> list[str]:
    """File names of the entry's sources whose stamps differ from those it recorded (none for
    an entry made before source stamps were recorded)."""
    if entry.source_stamps is None:
        return []
    return [Path(p).name for p, old, new in zip(entry.sources, entry.source_stamps, stamps) if old != new]


def _sort_report(report: PreprocessReport, ids: list[str]) -> None:
    order = {clip_id: k for k, clip_id in enumerate(ids)}
    for name in ("done", "already_done", "full_frame"):
        getattr(report, name).sort(key=order.__getitem__)
    for name in ("failed", "updated", "repaired", "mixed_modes"):
        getattr(report, name).sort(key=lambda f: order[f.clip_id])


def _write_failures(out: Path, report: PreprocessReport) -> None:
    """``out/preprocess-failures.txt``: this run's failed clips, one ``clip<TAB>reason`` a line
    (removed when none failed, so it never describes an older run)."""
    path = out / FAILURES_FILE
    if report.failed:
        atomic.write_text(path, "".join(f"{f.clip_id}\t{' '.join(f.reason.split())}\n" for f in report.failed))
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _stop_signals():
    """Turn SIGINT and SIGTERM into :class:`_Signalled` (a ``KeyboardInterrupt``) in the main
    thread for the block, once: a second signal while the run stops is ignored (``kill -9``
    still ends it). Signals the process ignores stay ignored; off the main thread nothing
    changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if not fired:
            fired.append(signum)
            raise _Signalled(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        old = signal.getsignal(signum)
        if old is not signal.SIG_IGN:
            previous[signum] = old
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)


def _run_pool(todo, out, settings, config, finish) -> None:
    # MTCNN's ops are tiny: processes, one torch thread each, use the cores (see FaceDetector)
    run_in_processes(
        _run_clip,
        [(clip.clip_id, (clip, out, settings)) for clip in todo],
        min(config.num_workers, len(todo)),
        finish,
        worker_died,
    )


def _settings(config: PreprocessConfig) -> dict[str, Any]:
    return {
        "size": config.size,
        "box_method": config.box_method,
        "margin": config.margin,
        "detect_frames": config.detect_frames,
        "min_face_size": config.min_face_size,
        "device": config.device,
        "full_frame_fallback": config.full_frame_fallback,
        "damaged_frames": config.damaged_frames,
    }


def _run_clip(clip: ClipRecord, out: Path, settings: dict[str, Any]) -> CacheEntry | str:
    """Process one clip; a per-clip error comes back as its message (so it never stops a run).
    A full disk and a broken installation (a module that cannot be imported, such as
    facenet-pytorch, imported when the first detector is made) are not the clip's fault:
    :class:`~gamdss.util.atomic.DiskFullError` and ``ImportError`` are raised."""
    try:
        return process_clip(clip, out, **settings)
    except (atomic.DiskFullError, ImportError):
        raise
    except Exception as exc:  # noqa: BLE001 - reported per clip, the run goes on
        return f"{type(exc).__name__}: {_without_clip_prefix(clip.clip_id, str(exc))}"


def _without_clip_prefix(clip_id: str, message: str) -> str:
    """``message`` without a leading ``clip <clip_id>: ``: a failure is always shown after its
    clip id (``FAILED <clip>: <reason>``), so the reason need not name it again."""
    prefix = f"clip {clip_id}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


_DETECTORS: dict[tuple[str, int], FaceDetector] = {}
_DETECTORS_LOCK = threading.Lock()


def get_detector(device: str = "cpu", min_face_size: int = 20) -> FaceDetector:
    """This process's MTCNN for ``device`` (made on first use, then reused; threads share it)."""
    key = (str(device), int(min_face_size))
    with _DETECTORS_LOCK:
        if key not in _DETECTORS:
            _DETECTORS[key] = FaceDetector(device=device, min_face_size=min_face_size)
        return _DETECTORS[key]


def process_clip(
    clip: ClipRecord,
    out: str | Path,
    *,
    size: tuple[int, int] = (224, 224),
    box_method: str = "median",
    margin: float = DEFAULT_MARGIN,
    detect_frames: int = DEFAULT_DETECT_FRAMES,
    min_face_size: int = 20,
    device: str = "cpu",
    full_frame_fallback: bool = False,
    damaged_frames: str = "fail",
) -> CacheEntry:
    """Detect, crop, resize and write one clip's file under ``out``; returns its manifest
    entry (the caller records it). Raises :class:`NoFaceError` (unless ``full_frame_fallback``)
    or :class:`FrameReadError` (damaged frames with ``damaged_frames="fail"``, or no usable
    frame at all)."""
    if damaged_frames not in DAMAGED_FRAME_POLICIES:
        raise ValueError(f"damaged_frames must be one of {', '.join(DAMAGED_FRAME_POLICIES)}; got {damaged_frames!r}")
    paths = list(clip.frame_paths)
    if not paths:
        raise FrameReadError(f"clip {clip.clip_id}: it has no frames")
    # before reading: a file changed while it is read is redone next run
    stamps, sources_sha = source_stamps(paths), sources_digest(paths)
    source = ClipFrames(clip, damaged_frames)

    height, width = size
    try:
        face = choose_box(
            get_detector(device, min_face_size),
            source.array,
            len(paths),
            clip.onset_index,
            clip.apex_index,
            clip.offset_index,
            clip_id=clip.clip_id,
            method=box_method,
            margin=margin,
            detect_frames=detect_frames,
            aspect=width / height,
            frame_names=[_frame_name(clip, i) for i in range(len(paths))],
        )
    except NoFaceError:
        if not full_frame_fallback:
            raise
        face = FaceBox(box=None, face_box=None, prob=None, method="full-frame", frames_tried=(), frames_with_face=())

    frames = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    for i in range(len(paths)):
        frames[i] = crop_resize(source.image(i, keep=False), face.box, size)
    rel, digest = write_clip_file(out, clip.clip_id, frames)
    stamp = file_stamp(Path(out) / rel)
    a = clip.annotation
    return CacheEntry(
        clip_id=a.clip_id,
        frame_numbers=[int(n) for n in clip.frame_numbers],
        file=rel,
        shape=list(frames.shape),
        sha256=digest,
        sources=[str(p) for p in paths],
        box=None if face.box is None else [int(v) for v in face.box],
        face_prob=face.prob,
        box_method=face.method,
        **annotation_fields(clip),
        **stamp,
        source_modes=dict(sorted(source.modes.items())),
        mixed_mode_frames=source.mixed_mode_frames(),
        repaired_frames=source.repairs(),
        source_stamps=stamps,
        source_sha256=sources_sha,
    )


class ClipFrames:
    """A clip's source frames as RGB ``PIL.Image`` s, checked and (policy ``repeat``) repaired.

    On creation every frame's header is read (cheap: no pixel decoding): files that are
    empty, not images or of an unsupported mode are damaged, and so are frames whose size
    differs from the clip's most common size (the first frame's on a tie). Pixels are decoded
    when a frame is asked for; one that fails to decode (truncated) is damaged too. With
    ``fail`` the first damaged frame raises :class:`FrameReadError` naming every damaged frame
    of the clip (the remaining ones are decoded to find them all); with ``repeat`` a damaged
    frame is replaced by its nearest good frame (the earlier one on a tie), decoded and
    converted like the others, and the replacement is recorded (:meth:`repairs`).
    """

    def __init__(self, clip: ClipRecord, policy: str = "fail"):
        self.clip = clip
        self.paths = [Path(p) for p in clip.frame_paths]
        self.policy = policy
        self.problems: dict[int, str] = {}  # index -> what is wrong (a predicate: "is truncated ...")
        self.frame_modes: dict[int, str] = {}  # index -> Pillow mode of the readable frames
        self.replaced: dict[int, int] = {}  # damaged index -> index used instead
        self._decoded: set[int] = set()  # indices known to decode
        self._images: dict[int, Any] = {}  # decoded frames kept for reuse (detection -> crop)
        sizes: dict[int, tuple[int, int]] = {}
        for i, path in enumerate(self.paths):
            info = _frame_header(path)
            if isinstance(info, str):
                self.problems[i] = info
            else:
                sizes[i], self.frame_modes[i] = info
        if sizes:
            self.size = Counter(sizes.values()).most_common(1)[0][0]
            for i, wh in sizes.items():
                if wh != self.size:
                    self.problems[i] = (
                        f"is {wh[0]}x{wh[1]} pixels but the clip's other frames are "
                        f"{self.size[0]}x{self.size[1]}; all frames of a clip must have one size"
                    )
        else:
            self.size = None
        if self.problems and policy == "fail":
            self._fail()

    @property
    def modes(self) -> Counter:
        """How many usable frames (not damaged) have each Pillow mode."""
        return Counter(m for i, m in self.frame_modes.items() if i not in self.problems)

    def array(self, i: int) -> np.ndarray:
        """Frame ``i`` (or its replacement) as RGB uint8 ``[H, W, 3]``, kept for :meth:`image`."""
        return np.asarray(self.image(i, keep=True))

    def image(self, i: int, keep: bool = True):
        """Frame ``i`` (or its replacement) as an RGB ``PIL.Image``; ``keep``: hold it for
        later calls (frames read for the face detection are reused for cropping)."""
        j = self._usable(i)
        if j in self._images:
            return self._images[j] if keep else self._images.pop(j)
        image = self._decode(j)
        if keep:
            self._images[j] = image
        return image

    def repairs(self) -> list[dict[str, Any]]:
        """The replaced frames: ``frame``, ``file``, ``problem``, ``used_frame``, ``used``."""
        numbers = self.clip.frame_numbers
        return [
            {
                "frame": int(numbers[i]),
                "file": self.paths[i].name,
                "problem": self.problems[i],
                "used_frame": int(numbers[j]),
                "used": self.paths[j].name,
            }
            for i, j in sorted(self.replaced.items())
        ]

    def mixed_mode_frames(self) -> list[dict[str, Any]]:
        """When the usable frames mix modes: those not of the most common mode."""
        if len(self.modes) < 2:
            return []
        common = self.modes.most_common(1)[0][0]
        return [
            {"frame": int(self.clip.frame_numbers[i]), "file": self.paths[i].name, "mode": mode}
            for i, mode in sorted(self.frame_modes.items())
            if mode != common and i not in self.problems
        ]

    def _usable(self, i: int) -> int:
        if i in self.replaced:
            return self.replaced[i]
        if self._good(i):
            return i
        if self.policy == "fail":
            self._fail()
        n = len(self.paths)
        for d in range(1, n):
            for j in (i - d, i + d):
                if 0 <= j < n and self._good(j):
                    self.replaced[i] = j
                    return j
        raise FrameReadError(f"clip {self.clip.clip_id}: no frame of the clip can be used; damaged {self._listing()}")

    def _good(self, i: int) -> bool:
        """Whether frame ``i`` is usable (decoding it, and keeping the pixels, on first ask)."""
        if i in self.problems:
            return False
        if i not in self._decoded:
            try:
                self._images[i] = self._decode(i)
            except FrameReadError:
                return False
        return True

    def _decode(self, i: int):
        if i in self._decoded or i not in self.problems:
            try:
                image = _decode_rgb(self.paths[i])
            except _FrameProblem as exc:
                self.problems[i] = str(exc)
                raise FrameReadError(str(exc)) from None
            self._decoded.add(i)
            return image
        raise FrameReadError(self.problems[i])

    def _fail(self) -> None:
        for i in range(len(self.paths)):  # name every damaged frame, not only the first found
            if i not in self.problems and i not in self._decoded:
                with contextlib.suppress(FrameReadError):
                    self._decode(i)
        raise FrameReadError(
            f"clip {self.clip.clip_id}: {len(self.problems)} damaged frame(s) {self._listing()}; "
            f"replace or remove them, or pass damaged_frames='repeat' (--damaged-frames repeat) "
            f"to use the nearest good frame instead"
        )

    def _listing(self) -> str:
        """``in FOLDER: a.jpg is ...; b.jpg is ...`` (full paths when the frames' folders differ)."""
        folders = {self.paths[i].parent for i in self.problems}
        one = len(folders) == 1
        named = "; ".join(
            f"{self.paths[i].name if one else self.paths[i]} {self.problems[i]}" for i in sorted(self.problems)
        )
        return f"in {next(iter(folders))}: {named}" if one else f": {named}"


class _FrameProblem(Exception):
    """What is wrong with one frame, as a predicate (``is truncated (...)``)."""


_EXTENDED_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _frame_header(path: Path) -> tuple[tuple[int, int], str] | str:
    """``((W, H), mode)`` from the image header, or what is wrong with the file."""
    try:
        if os.path.getsize(path) == 0:
            return "is empty (0 bytes)"
        with Image.open(path) as img:
            size, mode = img.size, img.mode
    except UnidentifiedImageError:
        return "is not an image (cannot read image: no known image format)"
    except (OSError, ValueError, SyntaxError) as exc:
        return _problem_text(exc)
    if mode in _EXTENDED_MODES:
        return (
            f"is a {mode} (16/32-bit) image; only 8-bit grey or colour frames are supported (cannot read image as RGB)"
        )
    return size, mode


def _problem_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "truncated" in text.lower():
        return f"is truncated (cannot read image: {text})"
    return f"cannot be decoded (cannot read image: {text})"


def _decode_rgb(path: Path):
    """Decode ``path`` fully and convert it to RGB; :class:`_FrameProblem` when it fails."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except UnidentifiedImageError:
        raise _FrameProblem("is not an image (cannot read image: no known image format)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise _FrameProblem(_problem_text(exc)) from None


KEYFRAME_FIELDS = ("onset", "apex", "offset")


def annotation_fields(clip: ClipRecord) -> dict[str, Any]:
    """The cache-entry fields that come from the clip's annotation (not from its pixels)."""
    a = clip.annotation
    return dict(
        dataset=a.dataset,
        subject=a.subject,
        video=a.video,
        emotion=a.emotion,
        aus=[str(x) for x in a.aus],
        fps=float(a.fps),
        row=int(a.row),
        onset=int(a.onset),
        apex=int(a.apex),
        offset=int(a.offset),
        meta={str(k): str(v) for k, v in a.meta.items()},
        corrections=[{k: _jsonable(v) for k, v in asdict(c).items()} for c in a.corrections],
    )


def read_frame(path: str | Path, clip_id: str, expected_size: tuple[int, int] | None = None):
    """Open one source image as an RGB ``PIL.Image`` (grey, palette, RGBA... converted); a
    single-frame helper (:func:`process_clip` reads a clip's frames with :class:`ClipFrames`).

    ``expected_size``: ``(W, H)`` that the image must have. Raises :class:`FrameReadError`
    naming the clip and file.
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise FrameReadError(
                    f"clip {clip_id}: {path} is a {img.mode} (16/32-bit) image; only "
                    f"8-bit grey or colour frames are supported"
                )
            rgb = img.convert("RGB")
    except FrameReadError:
        raise
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise FrameReadError(f"clip {clip_id}: cannot read image {path} ({exc})") from exc
    if expected_size is not None and rgb.size != tuple(expected_size):
        raise FrameReadError(
            f"clip {clip_id}: {path} is {rgb.size[0]}x{rgb.size[1]} pixels but the clip's "
            f"first frame is {expected_size[0]}x{expected_size[1]}; all frames of a clip "
            f"must have one size"
        )
    return rgb


def crop_resize(image, box: Sequence[int] | None, size: tuple[int, int]) -> np.ndarray:
    """Crop ``image`` (RGB ``PIL.Image``) to ``box`` ``(x0, y0, x1, y1)`` (``None``: whole frame)
    and resize to ``size`` = ``(H, W)``: uint8 ``[H, W, 3]``."""
    height, width = size
    # crop() first, not resize(box=...): the latter lets pixels just outside the box into the
    # filter's support, so the result would depend on more than the box.
    region = image if box is None else image.crop(tuple(int(v) for v in box))
    return np.asarray(region.resize((width, height), Image.Resampling.BILINEAR))


def _frame_name(clip: ClipRecord, i: int) -> str:
    return f"frame {clip.frame_numbers[i]} ({Path(clip.frame_paths[i]).name})"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
