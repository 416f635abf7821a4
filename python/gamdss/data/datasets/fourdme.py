"""4DME (Li et al. 2022): 60 fps, 2D grayscale frames of 4D recordings.

Annotation file ``4DME_Labelling_Micro_release v1.xlsx``: ``sub_ID``, ``fold_name``,
``Onset``, ``Apex``, ``Offset``, ``AUs``, ``Emotion`` (other columns are ignored; the
``(k)`` tags of AUs are kept as written). Frames ``gray_micro/<sub_ID>/<fold_name>/...``
(or ``gray_micro_crop``); frame numbers are parsed from the file names. Clip ids include the
onset (a folder may hold several expressions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gamdss.data.records import AnnotationRecord

from .base import Column, Dataset


class FourDME(Dataset):
    """The 4DME reader (see the module doc for its file and layout)."""

    name = "4dme"
    fps = 60.0
    annotation_names = (
        "4DME_Labelling_Micro_release v1.xlsx",
        "4DME_Labelling_Micro_release_v1.xlsx",
        "4DME_Labelling_Micro_release.xlsx",
    )
    annotation_patterns = (r"^4dme.*label.*\.(xlsx|xls|csv)$",)
    emotions = ("positive", "negative", "surprise", "repression", "others")
    columns = (
        Column("subject", "sub_ID", ("subject", "sub")),
        Column("video", "fold_name", ("filename", "folder")),
        Column("onset", "Onset"),
        Column("apex", "Apex"),
        Column("offset", "Offset"),
        Column("aus", "AUs", ("AU", "Action Units")),
        Column("emotion", "Emotion", ("Estimated Emotion",)),
    )
    several_per_video = True
    containers = ("gray_micro", "gray_micro_crop")

    def normalise_subject(self, value: Any, context: Mapping[str, Any]) -> str:
        """The cell's text as written (``1.0`` -> ``'1'``)."""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).strip()

    def subject_cell(self, record: AnnotationRecord) -> Any:
        """A number for an all-digit id without a leading zero (``'12'`` -> ``12``), else the id
        as text (so ``'012'`` keeps its zero)."""
        return (
            int(record.subject)
            if re.fullmatch(r"\d+", record.subject) and not record.subject.startswith("0")
            else record.subject
        )
