"""What every dataset reader shares: reading and validating an annotation file, applying the
written corrections, finding the frames of each clip, and writing annotations back in the
dataset's own schema.

A dataset is a small class (:class:`Dataset` subclass) that declares its columns, file names,
fps and folder layout; the machinery here does the rest.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from gamdss.data.records import AnnotationRecord, AnnotationReport, ClipRecord, Correction, ScanReport, SkippedRow
from gamdss.util import atomic

from . import tables
from ._subjects import subject_number
from .corrections import CorrectionEntry, UnmatchedCorrection, builtin_corrections, load_corrections_file, same_value
from .frames import IMAGE_EXTENSIONS, DirIndex, FolderReadError, FrameListError, format_spans, missing_spans

#: File names (case-insensitive) of the optional per-subject metadata table next to the
#: annotation file (our convention: a ``subject`` column plus any others, e.g. ``ethnicity``).
SUBJECT_FILES = ("subjects.csv", "subjects.xlsx")
_SUBJECT_META_HINTS = ("ethnicity", "ethnicgroup", "ethnic", "race", "gender", "sex", "age", "group")
_MISSING_TOKENS = {"/", "-", "--", "n/a", "na", "none", "nan", "?"}

#: Columns that ``gamdss reselect`` appends to the annotation file it exports (the annotated
#: keyframes, beside the reselected ones in the schema's onset/apex/offset columns), and the
#: field each one is read into. Headerless files (CAS(ME)^2) carry them on the sheet
#: :data:`EXTRA_SHEET`, one row per annotation row.
ORIGINAL_KEYFRAME_COLUMNS = {
    "original_onset": "Original Onset",
    "original_apex": "Original Apex",
    "original_offset": "Original Offset",
}
#: The sheet of a written headerless file that holds the extra columns (keyed by ``row``).
EXTRA_SHEET = "gamdss_extra"
RESELECT_SOURCE = "gamdss reselect export"


@dataclass(frozen=True)
class Column:
    """One column of a dataset's annotation schema.

    ``field``: ``subject``, ``video``, ``onset``, ``apex``, ``offset``, ``aus``, ``emotion``,
    ``meta:<key>`` (read into ``AnnotationRecord.meta[key]``) or ``None`` (an empty column,
    kept when writing so the layout matches the official file). ``header``: the name written;
    ``aliases``: other accepted names (any case, spacing or punctuation).
    """

    field: str | None
    header: str | None
    aliases: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        """The header and aliases as matched against a file's header (:func:`tables.normalise_name`)."""
        return tuple(tables.normalise_name(n) for n in (self.header, *self.aliases) if n)


def parse_frame_number(value: Any) -> tuple[int | None, str | None]:
    """(frame number, problem). ``None`` with a problem for empty cells, ``/``, ``-1`` and
    anything that is not an integer."""
    if value is None:
        return None, "empty"
    if isinstance(value, bool):
        return None, f"{value!r} is not a frame number"
    if isinstance(value, int):
        return (None, "-1 (missing)") if value == -1 else (value, None)
    if isinstance(value, float):
        if value.is_integer():
            return parse_frame_number(int(value))
        return None, f"{value!r} is not an integer"
    text = str(value).strip()
    if text.lower() in _MISSING_TOKENS or text == "":
        return None, f"{text!r} (missing)"
    if re.fullmatch(r"[+-]?\d+(\.0*)?", text):
        return parse_frame_number(int(float(text)))
    return None, f"{text!r} is not a frame number"


def split_aus(value: Any) -> tuple[str, ...]:
    """Action units as written, split into items: ``'4+L10'`` -> ``('4', 'L10')``; commas
    (also the Chinese comma) and ``+`` separate. A cell that marks the AUs as unknown
    (``?``, ``/``, ``-``, ``n/a``...) gives ``()``; ``'R12 or 14'`` stays one item."""
    if value is None:
        return ()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if str(value).strip().lower() in _MISSING_TOKENS:
        return ()
    items = re.split(r"[+,，、;]", str(value))
    return tuple(i.strip() for i in items if i.strip())


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _meta_key(name: str) -> str:
    norm = tables.normalise_name(name)
    if norm in ("ethnicity", "ethnicgroup", "ethnic", "race"):
        return "ethnicity"
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def _original_keyframes(
    row: tables.TableRow, cells: Mapping[str, Any], subject: str, video: str
) -> dict[str, int] | SkippedRow:
    """The annotated keyframes of a row of a file exported by ``gamdss reselect`` (its
    :data:`ORIGINAL_KEYFRAME_COLUMNS`; the schema's keyframe columns then hold reselected
    frames): keyframe name -> frame number, empty for other files, or why a cell is unusable."""
    originals: dict[str, int] = {}
    for name in ("onset", "apex", "offset"):
        cell = cells.get(f"original_{name}")
        if _cell_text(cell) is None:
            continue
        value, problem = parse_frame_number(cell)
        if value is None:
            return SkippedRow(
                row.number, f"{ORIGINAL_KEYFRAME_COLUMNS['original_' + name]!r}: {problem}", subject, video
            )
        originals[name] = value
    return originals


def _reselection_corrections(originals: Mapping[str, int], frames: Mapping[str, int]) -> list[Correction]:
    """One :class:`Correction` (source :data:`RESELECT_SOURCE`) per keyframe a ``gamdss
    reselect`` export moved away from its annotated value."""
    return [
        Correction(
            name,
            value,
            frames[name],
            f"reselected keyframe; original annotation kept in {ORIGINAL_KEYFRAME_COLUMNS['original_' + name]!r}",
            RESELECT_SOURCE,
        )
        for name, value in originals.items()
        if value != frames[name]
    ]


@dataclass(frozen=True)
class ReselectedRow:
    """One clip whose row :meth:`Dataset.write_reselected` rewrites.

    ``subject``, ``video``, ``row``, ``annotated`` (onset, apex, offset) and ``corrections``
    are the clip's as the reader gave them when the clip was cached (frame numbers after the
    corrections); they find and verify the row. ``keyframes``: the (onset, apex, offset)
    frame numbers to write; ``values``: one value per extra column (``None``: empty).
    """

    clip_id: str
    subject: str
    video: str
    row: int
    annotated: tuple[int, int, int]
    keyframes: tuple[int, int, int]
    corrections: tuple[Correction, ...] = ()
    values: tuple[Any, ...] = ()


class RowMatchError(ValueError):
    """Clips that have no row of their own in an annotation file (see :meth:`Dataset.match_rows`)."""


_KEYFRAMES = ("onset", "apex", "offset")


class Dataset:
    """A micro-expression dataset: its annotation schema, fps and folder layout.

    Subclasses set the class attributes and override the layout hooks
    (:meth:`normalise_subject`, :meth:`clip_dir_candidates`, :meth:`frame_name`).
    """

    name: ClassVar[str]
    #: frames per second of the recordings.
    fps: ClassVar[float]
    #: annotation file names accepted when scanning a root (case-insensitive), preferred first.
    annotation_names: ClassVar[tuple[str, ...]]
    #: the dataset's own emotion classes (lower case).
    emotions: ClassVar[tuple[str, ...]]
    #: the annotation schema, in the official column order.
    columns: ClassVar[tuple[Column, ...]]
    #: fields the header row must name.
    required: ClassVar[tuple[str, ...]] = ("subject", "video", "onset", "apex", "offset", "emotion")
    #: preferred sheet names (the first one is used when writing).
    sheets: ClassVar[tuple[str, ...]] = ("Sheet1",)
    #: the official file has no header row (columns in :attr:`columns` order).
    headerless: ClassVar[bool] = False
    #: lines written above the header row (the official file's notes block).
    header_notes: ClassVar[tuple[str, ...]] = ()
    #: lowest frame number of a recording (frame numbers below it are reported), or None.
    first_frame: ClassVar[int | None] = 1
    #: one video may hold several expressions: the clip id includes the onset.
    several_per_video: ClassVar[bool] = False
    frame_extensions: ClassVar[tuple[str, ...]] = IMAGE_EXTENSIONS
    #: folders under the root that hold the subjects' folders, preferred (and written) first.
    containers: ClassVar[tuple[str, ...]] = ()
    #: regular expressions (matched against lower-case file names) tried when none of
    #: :attr:`annotation_names` is found.
    annotation_patterns: ClassVar[tuple[str, ...]] = ()
    #: subject ids are this prefix and a zero-padded number (``sub01``; ``""``: ``006``), read
    #: from a number or a prefixed cell and written back as the number; None: the cell's text.
    subject_prefix: ClassVar[str | None] = None
    #: digits of the subject number in ids with :attr:`subject_prefix`.
    subject_digits: ClassVar[int] = 2

    # ----- layout hooks ---------------------------------------------------------------
    def normalise_subject(self, value: Any, context: Mapping[str, Any]) -> str:
        """The subject id from its cell (e.g. ``1`` -> ``sub01``)."""
        if self.subject_prefix is None:
            return _cell_text(value) or ""
        return f"{self.subject_prefix}{self._subject_number(value):0{self.subject_digits}d}"

    def subject_cell(self, record: AnnotationRecord) -> Any:
        """The subject cell written for ``record`` (inverse of :meth:`normalise_subject`)."""
        return record.subject if self.subject_prefix is None else self._subject_number(record.subject)

    def _subject_number(self, value: Any) -> int:
        return subject_number(value, (self.subject_prefix,) if self.subject_prefix else ())

    def emotion_cell(self, record: AnnotationRecord) -> str:
        """The emotion cell written for ``record``. Default: its emotion as read (lower case)."""
        return record.emotion

    def clip_rel(self, record: AnnotationRecord) -> tuple[str, ...]:
        """The clip folder relative to the frames container. Default: ``(subject, video)``,
        e.g. ``('sub01', 'EP02_01f')``."""
        return (record.subject, record.video)

    def clip_dir_candidates(self, record: AnnotationRecord) -> list[tuple[str, ...]]:
        """Folders, relative to the root, where the clip's frames may be (the first is where
        :meth:`clip_dir` puts them); matched case-insensitively. Default: the clip folder
        inside each of :attr:`containers`, then directly under the root."""
        rel = self.clip_rel(record)
        return [(*c.split("/"), *rel) for c in self.containers] + [rel]

    def locate_clip_dir(self, index: DirIndex, root: Path, record: AnnotationRecord) -> tuple[Path | None, list[str]]:
        """The clip folder on disk (``None`` if absent) and the places looked at. Tries
        :meth:`clip_dir_candidates`, then the clip folder inside any folder under the root
        (for containers with other names)."""
        tried = []
        for parts in self.clip_dir_candidates(record):
            tried.append("/".join(parts))
            p = index.resolve(root, parts)
            if p is not None:
                return p, tried
        rel = self.clip_rel(record)
        tried.append("*/" + "/".join(rel))
        for d in index.subdirs(root):
            p = index.resolve(d, rel)
            if p is not None:
                return p, tried
        return None, tried

    def frame_name(self, record: AnnotationRecord, frame_number: int) -> str:
        """File name of a frame in the layout of :meth:`clip_dir`."""
        return f"img{frame_number}.jpg"

    def read_context(self, path: Path, book: Mapping[str, list[list[Any]]]) -> dict[str, Any]:
        """Anything read from the workbook besides the annotation sheet (naming rules...)."""
        return {}

    # ----- public API -------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.fps:g} fps>"

    def clip_id(self, subject: str, video: str, onset: int) -> str:
        """The clip id: ``subject/video``, or ``subject/video/onset`` when
        :attr:`several_per_video` (``onset``: the annotation's onset frame number, never a
        reselected one)."""
        return f"{subject}/{video}/{onset}" if self.several_per_video else f"{subject}/{video}"

    def clip_dir(self, root: str | Path, record: AnnotationRecord) -> Path:
        """Where the clip's frames live in this dataset's layout under ``root``."""
        return Path(root).joinpath(*self.clip_dir_candidates(record)[0])

    def frame_path(self, root: str | Path, record: AnnotationRecord, frame_number: int) -> Path:
        """Path of frame ``frame_number`` (the dataset's own number) of ``record``."""
        return self.clip_dir(root, record) / self.frame_name(record, frame_number)

    def _aliases(self) -> dict[str, tuple[str, ...]]:
        aliases = {c.field: c.names() for c in self.columns if c.field}
        for fld, header in ORIGINAL_KEYFRAME_COLUMNS.items():
            aliases[fld] = (tables.normalise_name(header),)
        return aliases

    def _extra_sheet_cells(self, path: Path, book: Mapping[str, list[list[Any]]]) -> dict[int, dict[str, Any]]:
        """Original-keyframe cells of a headerless file, from its :data:`EXTRA_SHEET` sheet
        (header ``row, subject, filename, Original Onset...``): annotation row number ->
        ``{"original_onset": ..., "_subject": ..., "_video": ...}``."""
        sheet = next((s for s in book if tables.normalise_name(s) == tables.normalise_name(EXTRA_SHEET)), None)
        if sheet is None or not book[sheet]:
            return {}
        header = [tables.normalise_name(c) for c in book[sheet][0]]
        wanted = {tables.normalise_name(h): f for f, h in ORIGINAL_KEYFRAME_COLUMNS.items()}
        wanted.update(subject="_subject", filename="_video")
        if "row" not in header:
            raise tables.TableError(f"annotation file {path}: sheet {sheet!r} has no 'row' column")
        row_col = header.index("row")
        out: dict[int, dict[str, Any]] = {}
        for k, cells in enumerate(book[sheet][1:], start=2):
            if row_col >= len(cells) or cells[row_col] is None:
                continue
            number, problem = parse_frame_number(cells[row_col])
            if number is None:
                raise tables.TableError(f"annotation file {path}: sheet {sheet!r} row {k}: 'row' is {problem}")
            out[number] = {wanted[h]: cells[i] for i, h in enumerate(header) if h in wanted and i < len(cells)}
        return out

    def read_annotations(self, path: str | Path, *, corrections: str | Path | None = None) -> AnnotationReport:
        """Read, correct and validate an annotation file (no frames needed).

        Args:
            path: the annotation file (.xlsx, .xls or .csv as distributed).
            corrections: optional path of an extra corrections list (YAML, same format as the
                shipped ones), applied after the shipped list.

        Returns:
            an :class:`AnnotationReport`: usable records (frame numbers as in the file, after
            corrections) and every unusable row with its spreadsheet row number and reason.
            A file exported by ``gamdss reselect`` (``Original Onset``/``Apex``/``Offset``
            columns, :data:`ORIGINAL_KEYFRAME_COLUMNS`) gives the reselected keyframes; its
            clips keep the ids and folders of their annotated onset, and each moved keyframe
            is a :class:`Correction` with source :data:`RESELECT_SOURCE`.

        Raises:
            tables.TableError: the file cannot be read or has no recognisable header.
        """
        path = Path(path)
        book, table, context = self._read_table(path)
        entries = builtin_corrections(self.name)
        if corrections is not None:
            entries = entries + load_corrections_file(corrections, self.name)
        entries = [self._normalised_entry(e, context) for e in entries]
        # entry index -> None (applied to a row) or why a row of its clip was left alone
        outcome: dict[int, str | None] = {}
        subject_meta = self._subject_meta(path, book, table.sheet, context)
        extra_cells = self._extra_sheet_cells(path, book) if self.headerless else {}
        records: list[AnnotationRecord] = []
        skipped: list[SkippedRow] = []
        seen: dict[str, int] = {}
        for row in table.rows:
            if row.is_empty():
                continue
            extra = extra_cells.get(row.number)
            if extra:
                extra_video = _cell_text(extra.get("_video"))
                row_video = _cell_text(row.cells.get("video"))
                if extra_video is not None and row_video is not None and extra_video.lower() != row_video.lower():
                    skipped.append(
                        SkippedRow(
                            row.number,
                            f"sheet {EXTRA_SHEET!r} names filename {extra_video!r} "
                            f"for this row, the annotation sheet {row_video!r}",
                            _cell_text(row.cells.get("subject")),
                            row_video,
                        )
                    )
                    continue
                row = tables.TableRow(
                    row.number, {**row.cells, **{k: v for k, v in extra.items() if not k.startswith("_")}}
                )
            result = self._row_to_record(row, entries, context, subject_meta, outcome)
            if isinstance(result, SkippedRow):
                skipped.append(result)
                continue
            if result.clip_id in seen:
                skipped.append(
                    SkippedRow(
                        row.number,
                        f"duplicate of row {seen[result.clip_id]} (same clip id {result.clip_id!r})",
                        result.subject,
                        result.video,
                    )
                )
                continue
            seen[result.clip_id] = row.number
            records.append(result)
        unmatched = [
            UnmatchedCorrection(e, outcome.get(i) or f"no row with subject {e.subject!r} and filename {e.video!r}")
            for i, e in enumerate(entries)
            if i not in outcome or outcome[i] is not None
        ]
        report = AnnotationReport(self.name, path, records, skipped, unmatched)
        return report

    def _normalised_entry(self, entry: CorrectionEntry, context: Mapping[str, Any]) -> CorrectionEntry:
        """``entry`` with its subject written as the reader writes subjects (``1`` -> ``sub01``)."""
        try:
            subject = self.normalise_subject(entry.subject, context)
        except ValueError:
            return entry
        return replace(entry, subject=subject)

    def _row_to_record(
        self,
        row: tables.TableRow,
        entries: Sequence[CorrectionEntry],
        context: Mapping[str, Any],
        subject_meta: Mapping[str, Mapping[str, str]],
        outcome: dict[int, str | None] | None = None,
    ) -> AnnotationRecord | SkippedRow:
        """One row as a record (or why it is skipped). ``outcome`` collects, per index of
        ``entries``, ``None`` once the entry changed a row, else why a row of its clip was
        left alone.

        Steps: :meth:`_row_identity` (subject, video), :func:`_original_keyframes` (the
        annotated keyframes of a file exported by ``gamdss reselect``),
        :meth:`_apply_corrections`, :meth:`_row_keyframes` (checked frame numbers),
        :func:`_reselection_corrections`, then emotion and metadata.
        """
        outcome = {} if outcome is None else outcome
        cells = dict(row.cells)
        identity = self._row_identity(row, cells, context)
        if isinstance(identity, SkippedRow):
            return identity
        subject, video = identity
        originals = _original_keyframes(row, cells, subject, video)
        if isinstance(originals, SkippedRow):
            return originals
        applied = self._apply_corrections(row, cells, entries, subject, video, originals, outcome)
        frames = self._row_keyframes(row, cells, subject, video)
        if isinstance(frames, SkippedRow):
            return frames
        applied += _reselection_corrections(originals, frames)
        # The clip is identified (id, ME-clip folder) by its annotated onset, not a reselected one.
        id_onset = originals.get("onset", frames["onset"])
        emotion = _cell_text(cells.get("emotion"))
        if emotion is None:
            return SkippedRow(row.number, "emotion is empty", subject, video)
        meta = dict(subject_meta.get(subject, {}))
        for col in self.columns:
            if col.field and col.field.startswith("meta:"):
                text = _cell_text(cells.get(col.field))
                if text is not None:
                    meta[col.field[5:]] = text
        return AnnotationRecord(
            dataset=self.name,
            subject=subject,
            clip_id=self.clip_id(subject, video, id_onset),
            video=video,
            onset=frames["onset"],
            apex=frames["apex"],
            offset=frames["offset"],
            emotion=emotion.lower(),
            aus=split_aus(cells.get("aus")),
            fps=float(self.fps),
            row=row.number,
            meta=meta,
            corrections=tuple(applied),
        )

    def _row_identity(
        self, row: tables.TableRow, cells: Mapping[str, Any], context: Mapping[str, Any]
    ) -> tuple[str, str] | SkippedRow:
        """(subject, video) of a row, normalised as this dataset writes them, or why not."""
        subject_raw = _cell_text(cells.get("subject"))
        video = _cell_text(cells.get("video"))
        if subject_raw is None:
            return SkippedRow(row.number, "subject is empty", None, video)
        try:
            subject = self.normalise_subject(cells.get("subject"), context)
        except ValueError as exc:
            return SkippedRow(row.number, f"subject {subject_raw!r}: {exc}", subject_raw, video)
        if video is None:
            return SkippedRow(row.number, "filename (video) is empty", subject, None)
        return subject, self.normalise_video(video, subject, context)

    def _apply_corrections(
        self,
        row: tables.TableRow,
        cells: dict[str, Any],
        entries: Sequence[CorrectionEntry],
        subject: str,
        video: str,
        originals: dict[str, int],
        outcome: dict[int, str | None],
    ) -> list[Correction]:
        """Apply the corrections of ``entries`` that match this row, changing ``cells`` (or,
        for a reselect export, ``originals``) in place; returns the applied corrections and
        records each entry's outcome (see :meth:`_row_to_record`)."""

        def left_alone(i: int, why: str) -> None:
            if outcome.get(i, "") is not None:
                outcome[i] = f"row {row.number}: {why}"

        applied: list[Correction] = []
        for i, e in enumerate(entries):
            if e.subject.lower() != subject.lower() or e.video.lower() != video.lower():
                continue
            if e.field in originals:
                # Corrections concern the annotated keyframe, never a reselected frame (which
                # may equal a typo by chance). The 'Original' column holds either the value
                # before the correction (correct it) or after it (gamdss reselect writes the
                # corrected annotation): either way keep the provenance, so that original()
                # gives the value of the dataset's own file, as it does for that file.
                if same_value(originals[e.field], e.original):
                    originals[e.field] = int(e.corrected)
                elif not same_value(originals[e.field], e.corrected):
                    left_alone(i, f"annotated {e.field} is {originals[e.field]!r}, not {e.original!r}")
                    continue
                applied.append(Correction(e.field, e.original, e.corrected, e.reason, e.source))
                outcome[i] = None
                continue
            if e.onset is not None and not same_value(originals.get("onset", cells.get("onset")), e.onset):
                left_alone(i, f"onset is {originals.get('onset', cells.get('onset'))!r}, not {e.onset!r}")
                continue
            if e.field not in cells or not same_value(cells[e.field], e.original):
                value = cells.get(e.field)
                already = " (already the corrected value)" if same_value(value, e.corrected) else ""
                left_alone(i, f"{e.field} is {value!r}, not {e.original!r}{already}")
                continue
            outcome[i] = None
            applied.append(Correction(e.field, cells[e.field], e.corrected, e.reason, e.source))
            cells[e.field] = e.corrected
        return applied

    def _row_keyframes(
        self, row: tables.TableRow, cells: Mapping[str, Any], subject: str, video: str
    ) -> dict[str, int] | SkippedRow:
        """The row's onset, apex and offset frame numbers, or why they are unusable (missing,
        before the first frame, out of order)."""
        frames: dict[str, int] = {}
        for name in ("onset", "apex", "offset"):
            value, problem = parse_frame_number(cells.get(name))
            if value is None:
                return SkippedRow(row.number, f"{name} missing: {problem}", subject, video)
            if name == "offset" and value == 0:
                return SkippedRow(row.number, "offset is 0 (missing)", subject, video)
            if self.first_frame is not None and value < self.first_frame:
                return SkippedRow(
                    row.number, f"{name} is {value} but frame numbers start at {self.first_frame}", subject, video
                )
            frames[name] = value
        onset, apex, offset = frames["onset"], frames["apex"], frames["offset"]
        if onset > offset:
            return SkippedRow(row.number, f"onset {onset} after offset {offset}", subject, video)
        if apex < onset:
            return SkippedRow(row.number, f"apex {apex} before onset {onset}", subject, video)
        if apex > offset:
            return SkippedRow(row.number, f"apex {apex} after offset {offset}", subject, video)
        return frames

    def normalise_video(self, video: str, subject: str, context: Mapping[str, Any]) -> str:
        """The video name from its cell's text (a layout hook). Default: the text unchanged."""
        return video

    # ----- subject metadata -----------------------------------------------------------
    def _subject_meta(
        self, path: Path, book: Mapping[str, list[list[Any]]], annotation_sheet: str | None, context: Mapping[str, Any]
    ) -> dict[str, dict[str, str]]:
        """Per-subject metadata from other sheets of the workbook that have a subject column
        and a column such as ethnicity/gender/age, and from ``subjects.csv``/``subjects.xlsx``
        next to the annotation file (later sources win)."""
        out: dict[str, dict[str, str]] = {}
        for sheet, rows in book.items():
            if sheet != (annotation_sheet or "") and sheet is not None:
                self._merge_subject_rows(rows, out, context, strict=False, origin=f"{path} sheet {sheet!r}")
        index = DirIndex()
        for name in SUBJECT_FILES:
            f = index.child(path.parent, name, directory=False)
            if f is not None:
                sheets = tables.read_sheets(f)
                first = next(iter(sheets.values()), [])
                self._merge_subject_rows(first, out, context, strict=True, origin=str(f))
        return out

    def _merge_subject_rows(
        self,
        rows: list[list[Any]],
        out: dict[str, dict[str, str]],
        context: Mapping[str, Any],
        *,
        strict: bool,
        origin: str,
    ) -> None:
        subject_names = {"subject", "sub", "subid", "subjectid", "participant"}
        for r, row in enumerate(rows[: tables.HEADER_SEARCH_ROWS]):
            names = [tables.normalise_name(c) for c in row]
            if not any(n in subject_names for n in names):
                continue
            if not strict and not any(n in _SUBJECT_META_HINTS for n in names):
                continue
            s_idx = next(i for i, n in enumerate(names) if n in subject_names)
            keys = {
                i: _meta_key(row[i])
                for i, n in enumerate(names)
                if i != s_idx and n and not tables.is_ignored_column(row[i])
            }
            for data in rows[r + 1 :]:
                if s_idx >= len(data) or data[s_idx] is None:
                    continue
                try:
                    subject = self.normalise_subject(data[s_idx], context)
                except ValueError:
                    continue
                entry = out.setdefault(subject, {})
                for i, key in keys.items():
                    text = _cell_text(data[i]) if i < len(data) else None
                    if text is not None:
                        entry[key] = text
            return
        if strict:
            raise tables.TableError(f"subject metadata {origin}: no header row with a 'subject' column")

    # ----- frames on disk -------------------------------------------------------------
    def names_annotation_file(self, file_name: str) -> bool:
        """Whether ``file_name`` (a base name) is one of this dataset's annotation file names
        (:attr:`annotation_names` or :attr:`annotation_patterns`, any case)."""
        name = file_name.lower()
        return name in (n.lower() for n in self.annotation_names) or any(
            re.search(p, name) for p in self.annotation_patterns
        )

    def find_annotation_file(self, root: str | Path, max_depth: int = 3) -> Path:
        """The annotation file under ``root`` (any of :attr:`annotation_names`, any case, up
        to ``max_depth`` folders deep; preferred names first, then the shallowest)."""
        root = Path(root)
        wanted = [n.lower() for n in self.annotation_names]
        found: list[tuple[int, int, str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            depth = len(Path(dirpath).relative_to(root).parts)
            if depth >= max_depth:
                dirnames[:] = []
            dirnames.sort()
            for f in filenames:
                if f.startswith("."):
                    continue
                if f.lower() in wanted:
                    found.append((wanted.index(f.lower()), depth, f, Path(dirpath) / f))
                elif self.names_annotation_file(f):
                    found.append((len(wanted), depth, f, Path(dirpath) / f))
        if not found:
            raise FileNotFoundError(
                f"no {self.name} annotation file under {root}: looked for {list(self.annotation_names)}"
                f"{' or names matching ' + str(list(self.annotation_patterns)) if self.annotation_patterns else ''} "
                f"(any case, up to {max_depth} folders deep); give the file with annotations=... "
                f"(or --annotations)"
            )
        return min(found)[3]

    def scan(
        self,
        root: str | Path,
        *,
        annotations: str | Path | None = None,
        margin: float = 0.5,
        corrections: str | Path | None = None,
    ) -> ScanReport:
        """Read the annotations and find every clip's frames under ``root``.

        A clip is usable when all frames onset..offset exist in its folder; its span is the
        frames on disk within ``[onset - m, offset + m]`` with
        ``m = ceil(margin * (offset - onset))``. Rows that cannot be used and clips whose
        frames cannot be used are reported in ``ScanReport.skipped`` (``SkippedRow.kind``
        says why: no clip folder, a folder that cannot be read, a keyframe outside the frame
        numbers on disk, frames missing within onset..offset). The time taken is
        proportional to the files on disk, not to the frame numbers in the file: an absurd
        keyframe (an offset of 10**15) is a reported row, not a long loop.

        Raises:
            FileNotFoundError: ``root`` is not a folder, or no annotation file is found.
            PermissionError: ``root`` cannot be read.
            ValueError: a bad ``margin``.
        """
        # Absolute (symlinks kept as named): the cache records the source frames' paths, which
        # later commands (export, resume) read from wherever they run.
        root = Path(root).absolute()
        if not root.is_dir():
            raise FileNotFoundError(f"dataset root {root} is not a folder")
        if margin < 0 or not math.isfinite(margin):
            raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
        index = DirIndex()
        index.entries(root)
        if index.read_error(root):
            raise PermissionError(index.read_error(root))
        ann_path = Path(annotations) if annotations is not None else self.find_annotation_file(root)
        report = self.read_annotations(ann_path, corrections=corrections)
        clips: list[ClipRecord] = []
        skipped = list(report.skipped)
        for rec in report.records:
            result = self._find_clip(index, root, rec, margin)
            if isinstance(result, tuple):
                kind, reason = result
                skipped.append(SkippedRow(rec.row, reason, rec.subject, rec.clip_id, kind))
            else:
                clips.append(result)
        skipped.sort(key=lambda s: s.row)
        return ScanReport(self.name, root, report, clips, skipped)

    def _find_clip(
        self, index: DirIndex, root: Path, rec: AnnotationRecord, margin: float
    ) -> ClipRecord | tuple[str, str]:
        """The clip's frames, or ``(kind, reason)`` (see :class:`SkippedRow`) when they cannot
        be used. Works on the sorted frame numbers on disk only (never enumerates
        onset..offset), so its time does not depend on the annotation's numbers."""
        with index.unreadable_folders() as unreadable:
            folder, tried = self.locate_clip_dir(index, root, rec)
        if folder is None:
            looked = f"looked for {', '.join(tried)} under {root}"
            if unreadable:  # the clip folder may be inside a folder that cannot be listed
                more = f" (and {len(unreadable) - 1} more folders)" if len(unreadable) > 1 else ""
                return "unreadable_folder", (
                    f"{index.read_error(unreadable[0])}{more}; the clip folder may be inside ({looked})"
                )
            return "no_folder", f"frames missing on disk: no clip folder ({looked})"
        try:
            frames = index.frames(folder, self.frame_extensions)
        except FolderReadError as exc:
            return "unreadable_folder", str(exc)
        except FrameListError as exc:
            return "frame_list", str(exc)
        if not frames:
            return "missing_frames", (
                f"frames missing on disk: no frame files ({', '.join(self.frame_extensions)}) in {folder}"
            )
        numbers = [n for n, _ in frames]
        first, last = numbers[0], numbers[-1]
        outside = []
        for name in ("onset", "apex", "offset"):
            value = getattr(rec, name)
            if value < first:
                outside.append(f"{name} {value} is before the first frame on disk ({first})")
            elif value > last:
                outside.append(f"{name} {value} is after the last frame on disk ({last})")
        if outside:
            return "outside_frames", (
                f"frames missing on disk: {'; '.join(outside)}; the folder holds "
                f"frames {first}-{last} ({len(numbers)} files) in {folder}"
            )
        spans, missing = missing_spans(numbers, rec.onset, rec.offset)
        if missing:
            return "missing_frames", (
                f"frames missing on disk: {format_spans(spans)} ({missing} of the "
                f"{rec.offset - rec.onset + 1} frames onset..offset) in {folder}"
            )
        m = math.ceil(margin * (rec.offset - rec.onset))
        span = [(n, p) for n, p in frames if rec.onset - m <= n <= rec.offset + m]
        return ClipRecord(rec, tuple(p for _, p in span), tuple(n for n, _ in span))

    def _read_table(self, path: Path) -> tuple[dict[str, list[list[Any]]], tables.Table, dict[str, Any]]:
        """Every sheet of the annotation file ``path``, its annotation table (this dataset's
        columns, sheets and header rules) and the read context (:meth:`read_context`)."""
        book = tables.read_sheets(path)
        table = tables.read_table(
            path,
            self._aliases(),
            self.required,
            sheets=self.sheets,
            headerless=[c.field for c in self.columns] if self.headerless else None,
            all_sheets=book,
        )
        return book, table, self.read_context(path, book)

    # ----- rewriting the source file -----------------------------------------------------
    def _source_table(self, path: Path) -> tuple[tables.Table, dict[str, Any], dict[int, tables.TableRow]]:
        """The annotation table of ``path``, the read context and its rows by number (for a
        headerless file, with the cells of its :data:`EXTRA_SHEET` merged in)."""
        book, table, context = self._read_table(path)
        extra = self._extra_sheet_cells(path, book) if self.headerless else {}
        rows = {
            r.number: tables.TableRow(r.number, {**r.cells, **extra.get(r.number, {})}) if r.number in extra else r
            for r in table.rows
        }
        return table, context, rows

    def _row_is(self, row: tables.TableRow, clip: ReselectedRow, context: Mapping[str, Any]) -> bool:
        """True when ``row`` is ``clip``'s: the same subject and video as the reader normalises
        them, and each keyframe cell holds the clip's annotated frame, or the value one of its
        corrections started from (a typo the reader corrects)."""
        if row.is_empty():
            return False
        identity = self._row_identity(row, row.cells, context)
        if isinstance(identity, SkippedRow):
            return False
        subject, video = identity
        if subject.lower() != clip.subject.lower() or video.lower() != clip.video.lower():
            return False
        for name, annotated in zip(_KEYFRAMES, clip.annotated):
            cell = row.cells.get(name)
            if parse_frame_number(cell)[0] == annotated:
                continue
            if not any(c.field == name and same_value(cell, c.original) for c in clip.corrections):
                return False
        return True

    def _rows_by_name(
        self, rows: Mapping[int, tables.TableRow], context: Mapping[str, Any]
    ) -> dict[tuple[str, str], list[int]]:
        """Row numbers by (subject, video) as the reader normalises them (lower case)."""
        out: dict[tuple[str, str], list[int]] = {}
        for n, row in rows.items():
            if row.is_empty():
                continue
            identity = self._row_identity(row, row.cells, context)
            if not isinstance(identity, SkippedRow):
                out.setdefault((identity[0].lower(), identity[1].lower()), []).append(n)
        return out

    def match_rows(self, path: str | Path, clips: Sequence[ReselectedRow]) -> dict[str, int]:
        """The spreadsheet row of each clip in the annotation file ``path``: the clip's
        recorded row when that row is the clip's (:meth:`_row_is`: subject, video and
        keyframes), else the one row of the file that is; never the order of the clips.

        Raises:
            RowMatchError: clips with no such row, or with several, or sharing one row.
            tables.TableError: ``path`` cannot be read.
        """
        path = Path(path)
        table, context, rows = self._source_table(path)
        found: dict[str, int] = {}
        owner: dict[int, str] = {}
        problems: list[str] = []
        by_name: dict[tuple[str, str], list[int]] | None = None  # built once, when first needed
        for clip in clips:
            row = rows.get(clip.row)
            if row is not None and self._row_is(row, clip, context):
                number = clip.row
            else:
                if by_name is None:
                    by_name = self._rows_by_name(rows, context)
                named = by_name.get((clip.subject.lower(), clip.video.lower()), [])
                hits = [n for n in named if self._row_is(rows[n], clip, context)]
                if len(hits) != 1:
                    what = "no row" if not hits else f"{len(hits)} rows ({', '.join(map(str, hits))})"
                    problems.append(
                        f"clip {clip.clip_id} (row {clip.row}, keyframes {'/'.join(map(str, clip.annotated))}): "
                        f"{what} with its subject, filename and keyframes"
                    )
                    continue
                number = hits[0]
            if number in owner:
                problems.append(f"clips {owner[number]} and {clip.clip_id} both match row {number}")
                continue
            owner[number] = clip.clip_id
            found[clip.clip_id] = number
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise RowMatchError(f"annotation file {path}: {'; '.join(problems[:3])}{more}")
        return found

    def reselected_name(self, source: str | Path) -> str:
        """Name of the file :meth:`write_reselected` makes from ``source``:
        ``<stem>_reselected`` with ``.xlsx`` (``.csv``/``.txt`` for a CSV with a header row)."""
        source = Path(source)
        return f"{source.stem}_reselected{tables.edited_suffix(source, self.headerless)}"

    def write_reselected(
        self,
        source: str | Path,
        path: str | Path,
        clips: Sequence[ReselectedRow],
        *,
        columns: Sequence[str] = (),
        overwrite: bool = False,
    ) -> Path:
        """Write the annotation file ``source`` to ``path`` with each clip's keyframes in its
        row (:meth:`match_rows`) and ``columns`` (one value per clip, ``ReselectedRow.values``)
        added: a drop-in replacement of ``source``.

        Every row (in the file's order, rows the reader skips included), column and cell of
        ``source`` is kept as it is, except the onset/apex/offset cells of the clips' rows
        whose value is not the clip's keyframe: those get the keyframe, as text where the cell
        was text. A keyframe cell that already holds the frame is left exactly as it was. The
        ``columns`` go to the right of the header row (empty in the other rows); a headerless
        file (CAS(ME)^2) gets them on the sheet :data:`EXTRA_SHEET` (``row``, ``subject``,
        ``filename``, then ``columns``; one row per clip). Format by format, what cannot be
        kept cell for cell is listed in :func:`tables.write_edited` (formulas become their
        values; ``.xls`` becomes ``.xlsx`` without formatting). The file re-reads through
        :meth:`read_annotations` to the same rows, with the clips' keyframes. Written
        atomically.

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is false.
            RowMatchError: a clip has no row of its own in ``source``.
            ValueError: a clip's ``values`` do not match ``columns``, or a column has a name
                of the schema.
        """
        source = Path(source)
        path = atomic.refuse_existing(path, overwrite)
        schema_names = {n for c in self.columns for n in c.names()}
        for name in columns:
            if tables.normalise_name(name) in schema_names:
                raise ValueError(f"extra column {name!r} clashes with a {self.name} schema column")
        for clip in clips:
            if len(clip.values) != len(columns):
                raise ValueError(f"clip {clip.clip_id}: {len(clip.values)} values for {len(columns)} columns")
        numbers = self.match_rows(source, clips)
        table, _, rows = self._source_table(source)
        cells: dict[tuple[int, int], Any] = {}
        for clip in clips:
            row = rows[numbers[clip.clip_id]]
            for name, frame in zip(_KEYFRAMES, clip.keyframes):
                old = row.cells.get(name)
                if parse_frame_number(old)[0] == frame:
                    continue  # left where it was: the cell stays as written
                cells[(row.number, table.indices[name])] = str(frame) if isinstance(old, str) else int(frame)
        by_row = {numbers[c.clip_id]: c for c in clips}
        side = None
        column_values: dict[int, Sequence[Any]] = {}
        if self.headerless:
            side = (
                EXTRA_SHEET,
                ["row", "subject", "filename", *columns],
                [
                    [n, rows[n].cells.get("subject"), rows[n].cells.get("video"), *by_row[n].values]
                    for n in sorted(by_row)
                ],
            )
        else:
            column_values = {n: tuple(c.values) for n, c in by_row.items()}
        edit = tables.TableEdit(
            sheet=table.sheet,
            header_row=table.header_row,
            cells=cells,
            columns=tuple(columns) if not self.headerless else (),
            column_values=column_values,
            side_sheet=side,
            sheet_name=self.sheets[0],
        )
        return tables.write_edited(source, path, edit)

    # ----- writing --------------------------------------------------------------------
    def write_annotations(
        self,
        records: Sequence[AnnotationRecord],
        path: str | Path,
        *,
        extra_columns: Mapping[str, Sequence[Any]] | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write ``records`` as an annotation file in this dataset's own schema.

        ``.xlsx``: the official column names and order, the header where the official file
        has it (after the notes block for SAMM; no header row for CAS(ME)^2, whose extra
        columns then go to a second sheet ``gamdss_extra`` keyed by row); ``.csv``: the same
        columns with a header row, refused (``ValueError``) where the records need further
        sheets (:meth:`extra_sheets`: CAS(ME)^2's stimulus codes). ``extra_columns`` (name ->
        one value per record, e.g. the original keyframes) are appended to the right. The file
        re-reads through :meth:`read_annotations` to the same records. Written atomically.

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is false.
            ValueError: an extra column has the wrong length or a schema column's name, or a
                CSV cannot hold the records' further sheets.
        """
        path = atomic.refuse_existing(path, overwrite)
        suffix = path.suffix.lower()
        if suffix not in (".xlsx", ".csv"):
            raise ValueError(f"write_annotations: {path} must end in .xlsx or .csv")
        extra = dict(extra_columns or {})
        schema_names = {n for c in self.columns for n in c.names()}
        for name, values in extra.items():
            if len(values) != len(records):
                raise ValueError(f"extra column {name!r} has {len(values)} values for {len(records)} records")
            if tables.normalise_name(name) in schema_names:
                raise ValueError(f"extra column {name!r} clashes with a {self.name} schema column")
        header = [c.header for c in self.columns]
        body = [[self._cell_for(c, r) for c in self.columns] for r in records]
        extra_names = list(extra)
        extra_rows = [[extra[n][i] for n in extra_names] for i in range(len(records))]
        sheets = self.extra_sheets(records)
        if suffix == ".csv" and sheets:
            raise ValueError(
                f"write_annotations: {path.name}: these {self.name} records need the sheet(s) "
                f"{', '.join(repr(n) for n in sheets)} to find their clip folders again, which a CSV "
                "cannot hold; write .xlsx"
            )
        if suffix == ".csv":
            import csv
            import io

            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow([h or "" for h in header] + extra_names)
            for b, x in zip(body, extra_rows):
                w.writerow(["" if v is None else v for v in b + x])
            return atomic.write_text(path, buf.getvalue())

        import openpyxl  # here, not at the top: only writing .xlsx needs it

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = self.sheets[0]
        for note in self.header_notes:
            ws.append([note])
        if self.headerless:
            for b in body:
                ws.append(b)
            if extra_names:
                ws2 = wb.create_sheet("gamdss_extra")
                ws2.append(["row", "subject", "filename"] + extra_names)
                for i, (r, x) in enumerate(zip(records, extra_rows)):
                    ws2.append([i + 1, r.subject, r.video] + list(x))
        else:
            ws.append(header + extra_names)
            for b, x in zip(body, extra_rows):
                ws.append(b + list(x))
        for name, rows in sheets.items():
            ws3 = wb.create_sheet(name)
            for row in rows:
                ws3.append(list(row))
        with atomic.atomic_path(path) as tmp:
            wb.save(tmp)
        return path

    def extra_sheets(self, records: Sequence[AnnotationRecord]) -> dict[str, list[Sequence[Any]]]:
        """Further sheets written by :meth:`write_annotations` (e.g. naming rules)."""
        return {}

    def _cell_for(self, col: Column, record: AnnotationRecord) -> Any:
        f = col.field
        if f is None:
            return None
        if f == "subject":
            return self.subject_cell(record)
        if f == "video":
            return record.video
        if f in ("onset", "apex", "offset"):
            return getattr(record, f)
        if f == "aus":
            return "+".join(record.aus) if record.aus else None
        if f == "emotion":
            return self.emotion_cell(record)
        if f.startswith("meta:"):
            return record.meta.get(f[5:])
        raise AssertionError(f)
