"""CASME (Yan et al. 2013): 60 fps, 195 micro-expressions of 19 subjects.

Annotation file (e.g. meb's ``casme.xlsx``): ``Subject``, ``Filename``, an empty column,
``OnsetF``, ``ApexF1``, ``ApexF2``, ``OffsetF``, an empty column, AUs, ``Emotion``. ``ApexF1``
is the apex; ``ApexF2`` (a second apex, often empty) is kept in ``meta['apex2']``. Frames
``subXX/<clip>/<clip>-{N}.jpg`` (part of the set pads N to 3 digits; it is parsed).
"""

from __future__ import annotations

from gamdss.data.records import AnnotationRecord

from .base import Column, Dataset


class Casme(Dataset):
    """The CASME reader (see the module doc for its file and layout)."""

    name = "casme"
    fps = 60.0
    annotation_names = (
        "casme.xlsx",
        "CASME-coding.xlsx",
        "CASME_coding.xlsx",
        "casme.xls",
        "CASME-coding.xls",
        "CASME_coding.xls",
    )
    annotation_patterns = (r"^casme[-_ ]?(coding|label|annotation).*\.(xlsx|xls|csv)$",)
    emotions = ("amusement", "contempt", "disgust", "fear", "repression", "sadness", "surprise", "tense")
    columns = (
        Column("subject", "Subject"),
        Column("video", "Filename"),
        Column(None, None),
        Column("onset", "OnsetF", ("OnsetFrame", "Onset")),
        Column("apex", "ApexF1", ("ApexF", "ApexFrame", "Apex")),
        Column("meta:apex2", "ApexF2"),
        Column("offset", "OffsetF", ("OffsetFrame", "Offset")),
        Column(None, None),
        Column("aus", "AUs", ("AU", "Action Units")),
        Column("emotion", "Emotion", ("Estimated Emotion",)),
    )
    containers = ("CASME_raw_selected", "CASME_raw", "Cropped", "CASME_cropped")
    subject_prefix = "sub"

    def frame_name(self, record: AnnotationRecord, frame_number: int) -> str:
        """``<video>-{N}.jpg``, N unpadded."""
        return f"{record.video}-{frame_number}.jpg"
