"""CAS(ME)^3 Part A (Li et al. 2022): 30 fps, 94 subjects, 860 micro-expressions.

Annotation file ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx``: the labels are on sheet
``label`` (beside empty ``Sheet1``/``Sheet3``), header on row 1: ``Subject`` (``spNO.1``),
``Filename`` (``a``-``m``), ``Onset``, ``Apex``, ``Offset``, ``AU``, ``Objective class``
(``meta['objective_class']``), ``emotion``. One video holds up to 17 expressions, so clip ids
include the onset. Frames: raw ``part_A/spNO.1/a/color/{N}.jpg`` or the ME-clip release
``Part_A_ME_clip/frame/spNO.1_a_{Onset}/{N}.jpg``; folder names are matched ignoring case
(``spNo.1`` on disk).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gamdss.data.records import AnnotationRecord

from .base import Column, Dataset


class Casme3(Dataset):
    """The CAS(ME)^3 Part A reader (see the module doc for its file and layout)."""

    name = "casme3"
    fps = 30.0
    annotation_names = (
        "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx",
        "cas(me)3_part_A_ME_label_JpgIndex_v1.xls",
        "cas(me)3_part_A_ME_label_JpgIndex_v2.xls",
        "cas(me)3_part_A_ME_label_JpgIndex.xlsx",
    )
    annotation_patterns = (r"^cas\(me\)\^?3_part_a_me_label.*\.(xlsx|xls|csv)$",)
    emotions = ("anger", "disgust", "fear", "happy", "sad", "surprise", "others")
    columns = (
        Column("subject", "Subject", ("sub",)),
        Column("video", "Filename", ("material",)),
        Column("onset", "Onset", ("OnsetFrame",)),
        Column("apex", "Apex", ("ApexFrame",)),
        Column("offset", "Offset", ("OffsetFrame",)),
        Column("aus", "AU", ("AUs", "Action Units")),
        Column("meta:objective_class", "Objective class", ("Objective classes",)),
        Column("emotion", "emotion", ("Estimated Emotion",)),
    )
    sheets = ("label",)
    several_per_video = True
    containers = ("part_A", "Part_A", "partA")

    def normalise_subject(self, value: Any, context: Mapping[str, Any]) -> str:
        """``spNO.<n>`` from a number, ``'1'`` or any spelling of ``spNO.1`` (``'sp no 1'``);
        ``ValueError`` for anything else."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"spNO.{int(value)}"
        text = str(value).strip()
        m = re.fullmatch(r"sp\s*no\.?\s*(\d+)", text, re.I)
        if m:
            return f"spNO.{int(m.group(1))}"
        if re.fullmatch(r"\d+", text):
            return f"spNO.{int(text)}"
        raise ValueError(f"{value!r} is not a CAS(ME)^3 subject such as 'spNO.1'")

    def clip_rel(self, record: AnnotationRecord) -> tuple[str, ...]:
        """``(subject, video, 'color')``: the colour frames of the raw release."""
        return (record.subject, record.video, "color")

    def clip_dir_candidates(self, record: AnnotationRecord) -> list[tuple[str, ...]]:
        """The raw layout's clip folder (inside each container, then under the root), then the
        ME-clip release's ``<subject>_<video>_<onset>`` folder (the onset before any correction,
        :meth:`AnnotationRecord.original`) under ``Part_A_ME_clip/frame``, ``Part_A_ME_clip``,
        ``frame`` or the root."""
        rel = self.clip_rel(record)
        me_clip = f"{record.subject}_{record.video}_{record.original('onset')}"
        return (
            [(c, *rel) for c in self.containers]
            + [rel]
            + [("Part_A_ME_clip", "frame", me_clip), ("Part_A_ME_clip", me_clip), ("frame", me_clip), (me_clip,)]
        )

    def frame_name(self, record: AnnotationRecord, frame_number: int) -> str:
        """``{N}.jpg``, N unpadded."""
        return f"{frame_number}.jpg"
