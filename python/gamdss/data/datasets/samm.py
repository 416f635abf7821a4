"""SAMM (Davison et al. 2018): 200 fps, 960x650 grayscale, 159 micro-expressions.

Annotation file ``SAMM_Micro_FACS_Codes_v2.xlsx``: a notes block on rows 1-13, the header on
row 14 (another version has it on row 1; the header is found by content). Frames
``SAMM/006/006_1_2/006_05562.jpg``: the padding of the frame number varies, so it is parsed.
Subject groups (ethnicity) are read from a sheet with ``Subject`` and ``Ethnicity`` columns
or from ``subjects.csv`` next to the annotation file.
"""

from __future__ import annotations

from gamdss.data.records import AnnotationRecord

from .base import Column, Dataset


class Samm(Dataset):
    """The SAMM reader (see the module doc for its file and layout)."""

    name = "samm"
    fps = 200.0
    annotation_names = (
        "SAMM_Micro_FACS_Codes_v2.xlsx",
        "SAMM_Micro_FACS_Codes_v2.xls",
        "SAMM_Micro_FACS_Codes.xlsx",
        "SAMM.xlsx",
    )
    annotation_patterns = (r"^samm.*(facs|codes|micro).*\.(xlsx|xls|csv)$",)
    emotions = ("anger", "contempt", "disgust", "fear", "happiness", "other", "sadness", "surprise")
    columns = (
        Column("subject", "Subject"),
        Column("video", "Filename"),
        Column("meta:inducement_code", "Inducement Code"),
        Column("onset", "Onset Frame", ("OnsetFrame", "Onset")),
        Column("apex", "Apex Frame", ("ApexFrame", "Apex")),
        Column("offset", "Offset Frame", ("OffsetFrame", "Offset")),
        Column("meta:duration", "Duration"),
        Column("meta:micro", "Micro"),
        Column("aus", "Action Units", ("AU", "AUs")),
        Column("emotion", "Estimated Emotion", ("Emotion",)),
        Column("meta:objective_class", "Objective Classes", ("Objective Class",)),
        Column("meta:notes", "Notes"),
    )
    sheets = ("FACS_Movement_Only", "Sheet1")
    header_notes = (
        "SAMM micro-movement FACS codes, written by gamdss in the layout of SAMM_Micro_FACS_Codes_v2.xlsx",
        "(a notes block on rows 1-13 and the header on row 14, as in the official file).",
        "Onset, apex and offset are the dataset's frame numbers.",
        "Extra columns to the right of 'Notes', if any, were added by gamdss",
        "(e.g. the original keyframes next to reselected ones).",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
    )
    first_frame = None
    containers = ("SAMM", "SAMM_CROP", "SAMM_cropped")
    subject_prefix = ""
    subject_digits = 3

    def emotion_cell(self, record: AnnotationRecord) -> str:
        """The emotion capitalised, as the official file writes it (``'Happiness'``)."""
        return record.emotion[:1].upper() + record.emotion[1:]

    def frame_name(self, record: AnnotationRecord, frame_number: int) -> str:
        """``<subject>_{N:05d}.jpg`` (``006_05562.jpg``)."""
        return f"{record.subject}_{frame_number:05d}.jpg"
