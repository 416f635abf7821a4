"""CASME II (Yan et al. 2014): 200 fps, 26 subjects ``sub01``-``sub26``.

Annotation file ``CASME2-coding-*.xlsx`` (header on row 1; two empty ``Unnamed`` columns;
integer subjects). Frames ``CASME2_RAW_selected/subXX/<Filename>/img{N}.jpg`` or
``Cropped/subXX/<Filename>/reg_img{N}.jpg``; N is the absolute, unpadded frame number.
"""

from __future__ import annotations

from .base import Column, Dataset


class Casme2(Dataset):
    """The CASME II reader (see the module doc for its file and layout)."""

    name = "casme2"
    fps = 200.0
    annotation_names = (
        "CASME2-coding-20190701.xlsx",
        "CASME2-coding-20140508.xlsx",
        "CASME2-coding-updated.xlsx",
        "CASME2-coding-20241216.xlsx",
        "CASME2-coding.xlsx",
        "CASME2-coding-20190701.xls",
        "CASME2-coding-20140508.xls",
    )
    annotation_patterns = (r"^casme2[-_ ]coding.*\.(xlsx|xls|csv)$",)
    emotions = ("happiness", "disgust", "surprise", "repression", "fear", "sadness", "others")
    columns = (
        Column("subject", "Subject", ("sub",)),
        Column("video", "Filename", ("clip", "material")),
        Column(None, None),
        Column("onset", "OnsetFrame", ("Onset", "Onset Frame")),
        Column("apex", "ApexFrame", ("Apex", "Apex Frame")),
        Column("offset", "OffsetFrame", ("Offset", "Offset Frame")),
        Column(None, None),
        Column("aus", "Action Units", ("AU", "AUs")),
        Column("emotion", "Estimated Emotion", ("Emotion",)),
    )
    containers = ("CASME2_RAW_selected", "CASME2-RAW", "CASME2_RAW", "Cropped", "CASME2_Cropped")
    subject_prefix = "sub"
