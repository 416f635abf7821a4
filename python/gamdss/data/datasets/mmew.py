"""MMEW (Ben et al. 2021): 90 fps, 300 micro-expressions of 36 subjects.

Annotation file ``MMEW_Micro_Exp.xlsx``: ``Subject`` (integer), ``Filename``
(``S01-01-001`` = subject-emotion-sample), ``OnsetFrame`` (1), ``ApexFrame``, ``OffsetFrame``,
``Action Units``, ``Estimated Emotion``, ``remarks`` (``meta['remarks']``). Frames are grouped
by emotion: ``Micro_Expression/{emotion}/{Filename}/{N}.jpg``, N from 1.
"""

from __future__ import annotations

from gamdss.data.records import AnnotationRecord

from .base import Column, Dataset


class Mmew(Dataset):
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
        return (record.emotion, record.video)

    def frame_name(self, record: AnnotationRecord, frame_number: int) -> str:
        return f"{frame_number}.jpg"
