"""Validated annotation records: what every dataset reader yields.

Frame numbers in an :class:`AnnotationRecord` are the dataset's own (as written in its
annotation file, after the reader's corrections). A :class:`ClipRecord` adds the frames found
on disk and the clip-relative, 0-based indices that the rest of the toolkit uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Correction:
    """One applied entry of a dataset's written corrections list.

    ``field`` is the record attribute changed (``onset``, ``apex``, ``offset``, ``emotion``,
    ``aus``...); ``original`` is the value in the user's file, ``corrected`` the value used;
    ``source`` names the corrections list and its version (e.g. ``casme2-corrections v1``).
    """

    field: str
    original: Any
    corrected: Any
    reason: str
    source: str


@dataclass(frozen=True)
class SkippedRow:
    """An annotation row that cannot be used, and why.

    ``row`` is the 1-based row number as a spreadsheet program shows it (header rows
    included); ``subject`` and ``clip`` are given when the row names them. ``kind`` says at
    which stage and why: ``row`` (the annotation row itself), or, from the frames check of a
    scan, ``no_folder`` (no clip folder found), ``unreadable_folder`` (a folder that cannot
    be listed), ``frame_list`` (frame files that cannot be numbered unambiguously),
    ``outside_frames`` (a keyframe outside the frame numbers on disk) and
    ``missing_frames`` (gaps within onset..offset).
    """

    row: int
    reason: str
    subject: str | None = None
    clip: str | None = None
    kind: str = "row"

    #: the kinds a scan gives to clips whose frames cannot be used.
    FRAME_KINDS = ("no_folder", "unreadable_folder", "frame_list", "outside_frames", "missing_frames")


@dataclass(frozen=True)
class AnnotationRecord:
    """One usable micro-expression from an annotation file.

    Attributes:
        dataset: registry name (``casme``, ``casme2``, ``samm``, ``casme_sq``, ``casme3``,
            ``mmew``, ``4dme``, or ``synthetic``).
        subject: subject id as the dataset writes it, normalised (e.g. ``sub01``, ``006``,
            ``spNO.1``).
        clip_id: unique within the dataset, even when one video holds several expressions.
        video: the clip or video folder name from the file (``EP02_01f``, ``006_1_2``...).
        onset, apex, offset: dataset frame numbers after corrections (``onset <= apex <= offset``).
        emotion: lower case.
        aus: action units as written, split into items (``("4", "L10")``).
        fps: frames per second of the recording.
        row: 1-based spreadsheet row number of the record.
        meta: what the file or dataset publishes about the subject or sample
            (e.g. ``{"ethnicity": "...", "objective_class": "I"}``); string values.
        corrections: the corrections applied to this row (originals kept there).
    """

    dataset: str
    subject: str
    clip_id: str
    video: str
    onset: int
    apex: int
    offset: int
    emotion: str
    aus: tuple[str, ...]
    fps: float
    row: int
    meta: Mapping[str, str] = field(default_factory=dict)
    corrections: tuple[Correction, ...] = ()

    def original(self, name: str) -> Any:
        """The value of attribute ``name`` as the user's file had it, before corrections."""
        for c in self.corrections:
            if c.field == name:
                return c.original
        return getattr(self, name)


@dataclass
class AnnotationReport:
    """Result of reading one annotation file: usable records, reported rows, and corrections
    that matched nothing."""

    dataset: str
    path: Path
    records: list[AnnotationRecord]
    skipped: list[SkippedRow]
    # Entries of the corrections lists that changed no row, each with the reason.
    unmatched_corrections: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ClipRecord:
    """An annotation record with its frames on disk.

    ``frame_paths`` and ``frame_numbers`` (the dataset's numbers, parsed from the file names)
    are sorted by frame number and cover the clip: the expression plus the margin the reader
    was asked for, limited to the frames that exist. Clip-relative indices are positions in
    these tuples.
    """

    annotation: AnnotationRecord
    frame_paths: tuple[Path, ...]
    frame_numbers: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.frame_paths) != len(self.frame_numbers):
            raise ValueError(
                f"clip {self.annotation.clip_id}: {len(self.frame_paths)} paths but "
                f"{len(self.frame_numbers)} frame numbers"
            )
        for name in ("onset", "apex", "offset"):
            if getattr(self.annotation, name) not in self.frame_numbers:
                raise ValueError(
                    f"clip {self.annotation.clip_id}: {name} frame "
                    f"{getattr(self.annotation, name)} is not among its frames on disk"
                )

    dataset = property(lambda self: self.annotation.dataset)
    subject = property(lambda self: self.annotation.subject)
    clip_id = property(lambda self: self.annotation.clip_id)
    emotion = property(lambda self: self.annotation.emotion)
    aus = property(lambda self: self.annotation.aus)
    fps = property(lambda self: self.annotation.fps)
    meta = property(lambda self: self.annotation.meta)
    onset = property(lambda self: self.annotation.onset)
    apex = property(lambda self: self.annotation.apex)
    offset = property(lambda self: self.annotation.offset)

    def index_of(self, frame_number: int) -> int:
        """Clip-relative 0-based index of a dataset frame number."""
        return self.frame_numbers.index(frame_number)

    @property
    def onset_index(self) -> int:
        """0-based position of the onset frame in :attr:`frame_numbers`."""
        return self.index_of(self.annotation.onset)

    @property
    def apex_index(self) -> int:
        """0-based position of the apex frame in :attr:`frame_numbers`."""
        return self.index_of(self.annotation.apex)

    @property
    def offset_index(self) -> int:
        """0-based position of the offset frame in :attr:`frame_numbers`."""
        return self.index_of(self.annotation.offset)

    def __len__(self) -> int:
        return len(self.frame_paths)


@dataclass
class ScanReport:
    """Result of scanning a dataset root: clips whose frames exist, and everything skipped
    (annotation rows, and clips whose frames are missing on disk)."""

    dataset: str
    root: Path
    annotations: AnnotationReport
    clips: list[ClipRecord]
    skipped: list[SkippedRow]
