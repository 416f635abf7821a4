"""CAS(ME)^2 (Qu et al. 2017): 30 fps, 22 subjects, long videos with macro- and
micro-expressions (used mainly for spotting).

Annotation file ``CAS(ME)^2code_final.xlsx``: sheet ``CASFEcode_final`` has **no header
row**; its 9 columns are subject, clip, onset, apex, offset, AUs, emotion, expression type
(``micro-expression``/``macro-expression``, kept in ``meta['expression_type']``) and
self-report (``meta['self_report']``). Sheet ``naming rule1`` has rows (folder number,
folder, subject id), e.g. ``15, s15, 1``: subject 1 of the annotation sheet is folder ``s15``;
``naming rule2`` maps a stimulus name to its code (``101, disgust1`` -> ``0101``).
Videos ``rawpic/s15/15_0101disgustingteeth/img{N}.jpg`` (or ``longVideoFaceCropped``): the
clip folder is the one in the subject folder whose name starts with ``<number>_<code>``.
An offset of 0 means missing. Clip ids include the onset (one video, several expressions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gamdss.data.records import AnnotationRecord

from . import tables
from ._subjects import subject_number
from .base import Column, Dataset
from .frames import DirIndex


def _integer(cell: Any) -> int | None:
    """The integer of a number cell or a text cell of digits, else ``None``."""
    if isinstance(cell, bool):
        return None
    if isinstance(cell, int):
        return cell
    if isinstance(cell, float):
        return int(cell) if cell.is_integer() else None
    text = str(cell).strip()
    return int(text) if re.fullmatch(r"\d+", text) else None


def _stimulus_code(cell: Any) -> int | None:
    """The stimulus code of a ``naming rule2`` cell: 3-4 digits (``'0101'`` or ``101``)."""
    n = _integer(cell)
    digits = cell.strip() if isinstance(cell, str) else str(n)
    return n if n is not None and re.fullmatch(r"\d{3,4}", digits) else None


class CasmeSq(Dataset):
    """The CAS(ME)^2 reader (see the module doc for its headerless file, naming rules and
    layout)."""

    name = "casme_sq"
    fps = 30.0
    annotation_names = (
        "CAS(ME)^2code_final.xlsx",
        "CAS(ME)2code_final.xlsx",
        "CAS(ME)^2code_final.xls",
        "CAS(ME)^2code_final(Updated).xlsx",
    )
    annotation_patterns = (r"^cas\(me\)\^?2.*code.*\.(xlsx|xls|csv)$",)
    emotions = ("positive", "negative", "surprise", "others")
    columns = (
        Column("subject", "subject", ("sub", "participant")),
        Column("video", "clip", ("filename", "video")),
        Column("onset", "onset"),
        Column("apex", "apex"),
        Column("offset", "offset"),
        Column("aus", "AUs", ("AU", "action units")),
        Column("emotion", "emotion", ("estimated emotion", "valence")),
        Column("meta:expression_type", "type", ("expression type",)),
        Column("meta:self_report", "self-report", ("self report", "selfreport")),
    )
    sheets = ("CASFEcode_final",)
    headerless = True
    several_per_video = True
    containers = ("rawpic", "longVideoFaceCropped", "rawvideo")

    def read_context(self, path: Path, book: Mapping[str, list[list[Any]]]) -> dict[str, Any]:
        """Naming rules: subject id -> folder (rule 1), stimulus name -> code (rule 2).

        ``naming rule1`` rows are (folder number, folder name, subject id), e.g.
        ``[15, 's15', 1]``: the subject id is the one used in ``CASFEcode_final``. The folder
        name is the ``s<N>`` cell; the subject id is the last integer once the folder's own
        number is set aside (a two-cell row ``[1, 's15']`` gives subject 1). ``naming rule2``
        rows hold a stimulus name and its code, stored as text or as a number
        (``[101, 'disgust1']`` -> ``'0101'``).

        Raises:
            ValueError: two subject ids map to one folder, or one subject id to two folders.
        """
        folders: dict[int, str] = {}
        where: dict[int, int] = {}
        codes: dict[str, str] = {}
        for sheet, rows in book.items():
            norm = tables.normalise_name(sheet)
            for r, row in enumerate(rows, start=1):
                cells = [c for c in row if c is not None and str(c).strip() != ""]
                if norm == "namingrule1" and len(cells) >= 2:
                    folder = next(
                        (
                            str(c).strip()
                            for c in cells
                            if isinstance(c, str) and re.fullmatch(r"s\d+", c.strip(), re.I)
                        ),
                        None,
                    )
                    numbers = [n for n in (_integer(c) for c in cells) if n is not None]
                    if folder is None or not numbers:
                        continue  # a header or note row
                    own = int(folder[1:])
                    if len(numbers) >= 2 and own in numbers:
                        numbers.remove(own)
                    subject = numbers[-1]
                    if subject in folders and folders[subject].lower() != folder.lower():
                        raise ValueError(
                            f"annotation file {path}: sheet {sheet!r} row {r} maps subject {subject} to "
                            f"{folder!r}, row {where[subject]} to {folders[subject]!r}"
                        )
                    clash = next((s for s, f in folders.items() if f.lower() == folder.lower() and s != subject), None)
                    if clash is not None:
                        raise ValueError(
                            f"annotation file {path}: sheet {sheet!r} rows {where[clash]} and {r} map "
                            f"subjects {clash} and {subject} to one folder {folder!r}"
                        )
                    folders[subject] = folder
                    where[subject] = r
                elif norm == "namingrule2" and len(cells) >= 2:
                    code_cell = next((c for c in cells if _stimulus_code(c) is not None), None)
                    if code_cell is None:
                        continue
                    code = f"{_stimulus_code(code_cell):04d}"
                    for c in cells:
                        if c is not code_cell and isinstance(c, str):
                            codes[c.strip().lower()] = code
        return {"folders": folders, "codes": codes}

    def normalise_subject(self, value: Any, context: Mapping[str, Any]) -> str:
        """The subject's folder: a folder name cell (``'s15'``) as ``s<NN>``; a subject id
        through ``naming rule1`` (``context['folders']``), else ``s<NN>`` of the number itself."""
        if isinstance(value, str) and re.fullmatch(r"s\d+", value.strip(), re.I):
            return f"s{int(value.strip()[1:]):02d}"
        n = subject_number(value)
        folder = context.get("folders", {}).get(n)
        return folder if folder else f"s{n:02d}"

    def subject_cell(self, record: AnnotationRecord) -> Any:
        """The folder's number (``s15`` -> ``15``), which reads back to the same folder in a file
        without ``naming rule1`` (as :meth:`write_annotations` writes it)."""
        return subject_number(record.subject, ("s",))

    def _code(self, record: AnnotationRecord) -> str | None:
        code = record.meta.get("stimulus_code")
        if code:
            return code
        if re.fullmatch(r"\d{4}", record.video):
            return record.video
        return None

    def read_annotations(self, path, *, corrections=None):
        """As :meth:`Dataset.read_annotations`, and each record gets ``meta['stimulus_code']``
        (``'0101'``) from ``naming rule2`` when its video, or its stimulus name (the video
        without a trailing ``_<n>``), is listed there."""
        report = super().read_annotations(path, corrections=corrections)
        context = self.read_context(Path(path), tables.read_sheets(path)) if report.records else {}
        codes = context.get("codes", {})
        out = []
        for r in report.records:
            stimulus = re.sub(r"_\d+$", "", r.video).lower()
            code = codes.get(r.video.lower()) or codes.get(stimulus)
            if code and "stimulus_code" not in r.meta:
                r = type(r)(**{**r.__dict__, "meta": {**r.meta, "stimulus_code": code}})
            out.append(r)
        report.records = out
        return report

    def extra_sheets(self, records):
        """``naming rule2`` (stimulus -> code) so that a written file finds the same folders."""
        pairs = sorted(
            {(re.sub(r"_\d+$", "", r.video), r.meta["stimulus_code"]) for r in records if r.meta.get("stimulus_code")}
        )
        return {"naming rule2": [list(p) for p in pairs]} if pairs else {}

    def clip_rel(self, record: AnnotationRecord) -> tuple[str, ...]:
        """``(subject, '<number>_<code>')`` (the start of the clip folder's name, e.g.
        ``('s15', '15_0101')``), or ``(subject, video)`` when the stimulus code is unknown."""
        code = self._code(record)
        num = subject_number(record.subject, ("s",))
        return (record.subject, f"{num}_{code}" if code else record.video)

    def locate_clip_dir(self, index: DirIndex, root: Path, record: AnnotationRecord):
        """The clip folder and the places looked at: in the subject folder (inside each
        container, then under the root), the first folder whose name starts with
        ``<number>_<code>`` or equals the video name, ignoring case."""
        tried = []
        code = self._code(record)
        num = subject_number(record.subject, ("s",))
        prefix = f"{num}_{code}".lower() if code else None
        for container in (*self.containers, ""):
            subject_dir = index.resolve(root, (container, record.subject))
            tried.append(
                f"{container + '/' if container else ''}{record.subject}/{prefix + '*' if prefix else record.video}"
            )
            if subject_dir is None:
                continue
            for d in index.subdirs(subject_dir):
                name = d.name.lower()
                if (prefix and name.startswith(prefix)) or name == record.video.lower():
                    return d, tried
        return None, tried
