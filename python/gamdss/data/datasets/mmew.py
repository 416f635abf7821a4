"""MMEW (Ben et al. 2021): 90 fps, 300 micro-expressions of 36 subjects.

Annotation file ``MMEW_Micro_Exp.xlsx``: ``Subject`` (integer), ``Filename``
(``S01-01-001`` = subject-emotion-sample), ``OnsetFrame`` (1), ``ApexFrame``, ``OffsetFrame``,
``Action Units``, ``Estimated Emotion``, ``remarks`` (``meta['remarks']``). Frames are grouped
by emotion: ``Micro_Expression/{emotion}/{Filename}/{N}.jpg``, N from 1. The folder is the
emotion of the file (before any correction of ``emotion``); when it is not there, the clip is
looked for in any emotion folder (``Filename`` is unique).
"""

from __future__ import annotations

from pathlib import Path

from gamdss.data.records import AnnotationRecord

from .base import Column, Dataset
from .frames import DirIndex


class Mmew(Dataset):
    """The MMEW reader (see the module doc for its file and layout)."""

    name = "mmew"
    fps = 90.0
    annotation_names = ("MMEW_Micro_Exp.xlsx", "MMEW_Micro_Exp.xls")
    annotation_patterns = (r"^mmew.*micro.*\.(xlsx|xls|csv)$",)
    emotions = ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others")
    columns = (
        Column("subject", "Subject"),
        Column("video", "Filename"),
        Column("onset", "OnsetFrame", ("Onset", "Onset Frame")),
        Column("apex", "ApexFrame", ("Apex", "Apex Frame")),
        Column("offset", "OffsetFrame", ("Offset", "Offset Frame")),
        Column("aus", "Action Units", ("AU", "AUs")),
        Column("emotion", "Estimated Emotion", ("Emotion",)),
        Column("meta:remarks", "remarks", ("remark", "notes")),
    )
    containers = ("Micro_Expression", "MMEW/Micro_Expression")
    subject_prefix = "S"

    def clip_rel(self, record: AnnotationRecord) -> tuple[str, ...]:
        """``(emotion, video)``, the emotion as in the file (before corrections), lower case."""
        return (str(record.original("emotion")).strip().lower(), record.video)

    def locate_clip_dir(self, index: DirIndex, root: Path, record: AnnotationRecord) -> tuple[Path | None, list[str]]:
        """As :meth:`Dataset.locate_clip_dir`; failing that, the clip's folder in any emotion
        folder of a container (or of the root)."""
        found, tried = super().locate_clip_dir(index, root, record)
        if found is not None:
            return found, tried
        for container in (*self.containers, ""):
            folder = index.resolve(root, tuple(p for p in container.split("/") if p))
            if folder is None:
                continue
            tried.append(f"{container + '/' if container else ''}*/{record.video}")
            for emotion_dir in sorted(index.subdirs(folder)):
                clip = index.child(emotion_dir, record.video)
                if clip is not None:
                    return clip, tried
        return None, tried

    def frame_name(self, record: AnnotationRecord, frame_number: int) -> str:
        """``{N}.jpg``, N unpadded."""
        return f"{frame_number}.jpg"
