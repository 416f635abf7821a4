"""Tiny datasets in each dataset's real layout, with its header quirks and known bad rows.

``make_fixture(name, root)`` writes one and returns a :class:`FixtureInfo` with what was
planted: the usable clip ids, the bad rows with a fragment of their expected reason, the
corrections, and hand-computed per-protocol counts. Paths and cells are written here by hand
(not through the readers), so the fixtures are an independent check of the readers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

FrameImage = Callable[[int], np.ndarray]


@dataclass
class FixtureInfo:
    """What a fixture planted.

    ``record_clip_ids``: usable records of the annotation file alone, in file order;
    ``clip_ids``: clips usable after the frames check; ``skipped_rows``: spreadsheet row ->
    fragment of the reason; ``missing_frames``: clip id -> row of clips whose frames are
    missing; ``corrections``: clip id -> [(field, original, corrected)]; ``counts``:
    protocol -> {"classes", "samples", "subjects"} over the usable records (hand-computed);
    ``meta``: subject -> expected metadata.
    """

    dataset: str
    root: Path
    annotation_path: Path
    record_clip_ids: list[str]
    clip_ids: list[str]
    skipped_rows: dict[int, str]
    missing_frames: dict[str, int]
    corrections: dict[str, list[tuple[str, Any, Any]]] = field(default_factory=dict)
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, dict[str, str]] = field(default_factory=dict)
    frame_spans: dict[str, tuple[int, int]] = field(default_factory=dict)


def default_frame_image(size: tuple[int, int]) -> FrameImage:
    h, w = size

    def image(n: int) -> np.ndarray:
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([(x * 4 + n * 3) % 256, (y * 5 + n * 7) % 256, ((x + y) * 2 + n) % 256], axis=-1)
        return img.astype(np.uint8)

    return image


class _Writer:
    """Collects frames per folder (several expressions may share one video) and writes them."""

    def __init__(self, root: Path, frame_image: FrameImage):
        self.root = root
        self.frame_image = frame_image
        self.folders: dict[Path, dict[int, str]] = {}

    def frames(self, rel: str, first: int, last: int, name: Callable[[int], str], drop: tuple[int, ...] = ()) -> None:
        folder = self.folders.setdefault(self.root / rel, {})
        for n in range(max(first, 1), last + 1):
            if n not in drop:
                folder[n] = name(n)

    def write(self) -> None:
        for folder, frames in self.folders.items():
            folder.mkdir(parents=True, exist_ok=True)
            for n, fname in frames.items():
                Image.fromarray(self.frame_image(n)).save(folder / fname, quality=90)


def _write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, v in enumerate(row, start=1):
                if v is not None:
                    ws.cell(row=r, column=c, value=v)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def _write_xls(path: Path, sheets: dict[str, list[list[Any]]]) -> None:
    import xlwt

    wb = xlwt.Workbook()
    for name, rows in sheets.items():
        ws = wb.add_sheet(name)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if v is not None:
                    ws.write(r, c, v)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(str(path))


def _counts(classes: dict[str, int], subjects: int) -> dict[str, Any]:
    return {"classes": classes, "samples": sum(classes.values()), "subjects": subjects}


# ---------------------------------------------------------------------------------------------
def _casme2(root: Path, w: _Writer, fmt: str) -> FixtureInfo:
    header = [
        "Subject",
        "Filename",
        None,
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        None,
        "Action Units",
        "Estimated Emotion",
    ]
    rows = [  # spreadsheet rows 2..10
        [1, "EP02_01f", None, 95, 98, 103, None, "1+2", "happiness"],  # img100 after img99: numeric sort
        [1, "EP03_02", None, 10, 12, 15, None, "4+L10", "disgust"],
        [2, "EP01_11f", None, 5, 7, 9, None, "12", "others"],
        [4, "EP12_01f", None, 20, "/", 30, None, "4", "repression"],  # row 5: missing apex
        [2, "EP05_02", None, 30, 33, 35, None, "14", "surprise"],
        [3, "EP07_01", None, 12, 14, 18, None, "?", "repression"],
        [3, "EP08_03", None, 40, 38, 45, None, "4", "disgust"],  # row 8: apex before onset
        [5, "EP09_05f", None, 7, 7, 10, None, "1", "fear"],  # apex == onset (valid)
        [16, "EP01_08", None, 3, 5, 8, None, "4", "sadness"],  # row 10: frame 6 missing on disk
    ]
    for r in rows:
        if r[4] == "/" or r[4] < r[3]:
            continue
        sub = f"sub{r[0]:02d}"
        w.frames(
            f"CASME2_RAW_selected/{sub}/{r[1]}",
            r[3] - 2,
            r[5] + 2,
            lambda n: f"img{n}.jpg",
            drop=(6,) if r[1] == "EP01_08" else (),
        )
    path = root / ("CASME2-coding-20190701.xlsx" if fmt == "xlsx" else "CASME2-coding-20190701.xls")
    (_write_xlsx if fmt == "xlsx" else _write_xls)(path, {"Sheet1": [header] + rows})
    ids = [
        "sub01/EP02_01f",
        "sub01/EP03_02",
        "sub02/EP01_11f",
        "sub02/EP05_02",
        "sub03/EP07_01",
        "sub05/EP09_05f",
        "sub16/EP01_08",
    ]
    return FixtureInfo(
        "casme2",
        root,
        path,
        ids,
        ids[:-1],
        {5: "apex missing", 8: "apex 38 before onset 40"},
        {"sub16/EP01_08": 10},
        counts={
            "casme2-5": _counts({"happiness": 1, "repression": 1, "disgust": 1, "surprise": 1, "others": 1}, 3),
            "casme2-3": _counts({"positive": 1, "surprise": 1, "negative": 4}, 5),
            "megc2019": _counts({"negative": 2, "positive": 1, "surprise": 1}, 3),
            "casme2-native": _counts(
                {"happiness": 1, "disgust": 1, "surprise": 1, "repression": 1, "fear": 1, "sadness": 1, "others": 1}, 5
            ),
        },
        frame_spans={"sub01/EP02_01f": (93, 105)},
    )


def _samm(root: Path, w: _Writer, fmt: str) -> FixtureInfo:
    notes = [[f"SAMM notes line {i}"] for i in range(1, 13)] + [[None]]  # rows 1-13
    header = [
        "Subject",
        "Filename",
        "Inducement Code",
        "Onset Frame",
        "Apex Frame",
        "Offset Frame",
        "Duration",
        "Micro",
        "Action Units",
        "Estimated Emotion",
        "Objective Classes",
        "Notes",
    ]
    rows = [  # spreadsheet rows 15..23
        [6, "006_1_2", 1, 5562, 5566, 5570, 9, "Micro - 1/2", "R12", "Happiness", "I", None],
        [6, "006_1_3", 1, 100, 104, 110, 11, "Micro - 1/2", "4", "Anger", "III", None],
        [7, "007_3_1", 3, 20, 25, 30, 11, "Micro - 1/2", "14", "Other", "VII", None],
        [7, "007_4_2", 4, 50, 52, 58, 9, "Micro - 1/2", "1+2", "Others", "VI", None],
        [28, "028_4_1", 4, 200, 230, 220, 21, "Micro - 1/2", "12", "Happiness", "I", None],  # row 19: apex > offset
        [32, "032_3_1", 3, 4896, 1930, 4920, 25, "Micro - 1/2", "4", "Contempt", "III", None],  # row 20
        [9, "009_2_1", 2, 10, 12, 0, 0, "Micro - 1/2", "12", "Surprise", "V", None],  # row 21: offset 0
        [9, "009_3_5", 3, 70, 72, 75, 6, "Micro - 1/2", "12", "Surprise", "V", None],  # row 22: no frames
        [11, "011_2_3", 2, 8, 9, 12, 5, "Micro - 1/2", "9", "Disgust", "IV", "or 10"],
    ]
    pad = {"007_3_1": 4}  # the number of leading zeros changes between folders
    for r in rows:
        if r[1] in ("028_4_1", "032_3_1", "009_2_1", "009_3_5"):
            continue
        s, p = f"{r[0]:03d}", pad.get(r[1], 5)
        w.frames(f"SAMM/{s}/{r[1]}", r[3] - 2, r[5] + 2, lambda n, s=s, p=p: f"{s}_{n:0{p}d}.jpg")
    path = root / "SAMM_Micro_FACS_Codes_v2.xlsx"
    _write_xlsx(path, {"FACS_Movement_Only": notes + [header] + rows})
    (root / "subjects.csv").write_text(
        "Subject,Ethnicity,Gender\n6,White British,M\n7,Chinese,F\n9,African,M\n", encoding="utf-8"
    )
    ids = ["006/006_1_2", "006/006_1_3", "007/007_3_1", "007/007_4_2", "009/009_3_5", "011/011_2_3"]
    return FixtureInfo(
        "samm",
        root,
        path,
        ids,
        [i for i in ids if i != "009/009_3_5"],
        {19: "apex 230 after offset 220", 20: "apex 1930 before onset 4896", 21: "offset is 0"},
        {"009/009_3_5": 22},
        counts={
            "samm-5": _counts({"anger": 1, "contempt": 0, "happiness": 1, "surprise": 1, "other": 2}, 3),
            "samm-3": _counts({"positive": 1, "surprise": 1, "negative": 2}, 3),
            "megc2019": _counts({"negative": 2, "positive": 1, "surprise": 1}, 3),
            "samm-native": _counts(
                {
                    "anger": 1,
                    "contempt": 0,
                    "disgust": 1,
                    "fear": 0,
                    "happiness": 1,
                    "other": 2,
                    "sadness": 0,
                    "surprise": 1,
                },
                4,
            ),
        },
        meta={"006": {"ethnicity": "White British", "gender": "M"}, "007": {"ethnicity": "Chinese", "gender": "F"}},
        frame_spans={"006/006_1_2": (5560, 5572)},
    )


def _casme(root: Path, w: _Writer, fmt: str) -> FixtureInfo:
    header = ["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None, "AUs", "Emotion"]
    rows = [  # rows 2..8
        [1, "EP01_5", None, 10, 13, None, 18, None, "4+9", "disgust"],
        [1, "EP02_6", None, 3, 5, 6, 8, None, "12", "tense"],
        [2, "EP03_1", None, 20, -1, None, 25, None, "4", "repression"],  # row 4: apex -1
        [3, "EP04_2", None, 30, 34, None, 40, None, "1", "surprise"],
        [3, "EP05_3", None, 50, 55, None, 0, None, "14", "repression"],  # row 6: offset 0
        [4, "EP06_1", None, 5, 6, None, 9, None, "4", "happiness"],  # not a CASME class: dropped by native
        [4, "EP07_2", None, 12, 14, None, 16, None, "4", "fear"],  # row 8: no frames
    ]
    for r in rows:
        if r[1] in ("EP03_1", "EP05_3", "EP07_2"):
            continue
        fmt_n = (lambda n, c=r[1]: f"{c}-{n:03d}.jpg") if r[0] >= 3 else (lambda n, c=r[1]: f"{c}-{n}.jpg")
        w.frames(f"CASME_raw_selected/sub{r[0]:02d}/{r[1]}", r[3] - 2, r[6] + 2, fmt_n)
    path = root / "casme.xlsx"
    _write_xlsx(path, {"Sheet1": [header] + rows})
    ids = ["sub01/EP01_5", "sub01/EP02_6", "sub03/EP04_2", "sub04/EP06_1", "sub04/EP07_2"]
    return FixtureInfo(
        "casme",
        root,
        path,
        ids,
        ids[:-1],
        {4: "apex missing", 6: "offset is 0"},
        {"sub04/EP07_2": 8},
        counts={
            "casme-native": _counts(
                {
                    "amusement": 0,
                    "contempt": 0,
                    "disgust": 1,
                    "fear": 1,
                    "repression": 0,
                    "sadness": 0,
                    "surprise": 1,
                    "tense": 1,
                },
                3,
            )
        },
    )


def _casme_sq(root: Path, w: _Writer, fmt: str) -> FixtureInfo:
    rows = [  # no header: rows 1..6
        [1, "disgust1_1", 10, 12, 15, "4+7", "negative", "micro-expression", "disgusting"],
        [1, "disgust1_2", 40, 44, 60, "4", "negative", "macro-expression", None],
        [1, "anger1_1", 5, 7, 0, "4", "negative", "micro-expression", None],  # row 3: offset 0
        [2, "disgust1_1", 20, 22, 25, "12", "positive", "micro-expression", None],
        [2, "anger1_1", 8, 9, 11, "1", "surprise", "micro-expression", None],  # row 5: no folder
        [2, "disgust1_3", 30, "/", 35, "1", "negative", "micro-expression", None],  # row 6: apex missing
    ]
    img = lambda n: f"img{n}.jpg"  # noqa: E731
    w.frames("rawpic/s15/15_0101disgustingteeth", 1, 62, img)
    w.frames("rawpic/s15/15_0401girlcrashing", 1, 12, img)
    w.frames("rawpic/s16/16_0101disgustingteeth", 15, 30, img)
    path = root / "CAS(ME)^2code_final.xlsx"
    # public layout: rule1 = (folder number, folder, subject id), rule2 = (code as a number, stimulus)
    _write_xlsx(
        path,
        {
            "CASFEcode_final": rows,
            "naming rule1": [[15, "s15", 1], [16, "s16", 2]],
            "naming rule2": [[101, "disgust1"], [401, "anger1"]],
        },
    )
    ids = ["s15/disgust1_1/10", "s15/disgust1_2/40", "s16/disgust1_1/20", "s16/anger1_1/8"]
    return FixtureInfo(
        "casme_sq",
        root,
        path,
        ids,
        ids[:-1],
        {3: "offset is 0", 6: "apex missing"},
        {"s16/anger1_1/8": 5},
        counts={"casme_sq-native": _counts({"positive": 1, "negative": 1, "surprise": 1, "others": 0}, 2)},
    )


def _casme3(root: Path, w: _Writer, fmt: str) -> FixtureInfo:
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    rows = [  # rows 2..10 of sheet 'label'
        ["spNO.1", "a", 10, 12, 15, "4", "III", "disgust"],
        ["spNO.1", "a", 30, 31, 34, "12", "I", "happy"],  # second ME in the same video
        ["spNO.1", "b", 5, 6, 8, "1+2", "VII", "Others"],
        ["spNO.40", "e", 20, 22, 0, "4", "III", "disgust"],  # row 5: offset 0
        ["spNO.149", "d", 112, 83, 120, "4", "III", "disgust"],  # row 6: apex before onset
        ["spNO.216", "d", 3647, 2650, 2694, "4+5", "V", "anger"],  # row 7: onset corrected -> 2647
        ["spNO.216", "e", 0, 0, 4, "1", "V", "surprise"],  # row 8: onset, apex corrected -> 1
        ["spNO.2", "c", 50, 53, 57, "4", "IV", "fear"],  # row 9: frame 55 missing on disk
        ["spNO.2", "c", 70, 71, 73, None, "II", "sad"],
    ]
    num = lambda n: f"{n}.jpg"  # noqa: E731
    w.frames("part_A/spNo.1/a/color", 8, 36, num)  # 'spNo' on disk, 'spNO' in the labels
    w.frames("part_A/spNo.1/b/color", 3, 10, num)
    w.frames("part_A/spNO.216/d/color", 2640, 2700, num)
    w.frames("part_A/spNO.216/e/color", 1, 6, num)
    w.frames("part_A/spNO.2/c/color", 48, 75, num, drop=(55,))
    sheets = {"Sheet1": [], "label": [header] + rows, "Sheet3": []}
    if fmt == "xls":
        path = root / "cas(me)3_part_A_ME_label_JpgIndex_v1.xls"
        _write_xls(path, sheets)
    else:
        path = root / "annotation" / "partA" / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
        _write_xlsx(path, sheets)
    ids = ["spNO.1/a/10", "spNO.1/a/30", "spNO.1/b/5", "spNO.216/d/2647", "spNO.216/e/1", "spNO.2/c/50", "spNO.2/c/70"]
    return FixtureInfo(
        "casme3",
        root,
        path,
        ids,
        [i for i in ids if i != "spNO.2/c/50"],
        {5: "offset is 0", 6: "apex 83 before onset 112"},
        {"spNO.2/c/50": 9},
        corrections={"spNO.216/d/2647": [("onset", 3647, 2647)], "spNO.216/e/1": [("onset", 0, 1), ("apex", 0, 1)]},
        counts={
            "casme3-7": _counts(
                {"anger": 1, "disgust": 1, "fear": 1, "happy": 1, "sad": 1, "surprise": 1, "others": 1}, 3
            ),
            "casme3-4": _counts({"positive": 1, "surprise": 1, "others": 1, "negative": 4}, 3),
            "casme3-3": _counts({"positive": 1, "surprise": 1, "negative": 4}, 3),
            "casme3-native": _counts(
                {"anger": 1, "disgust": 1, "fear": 1, "happy": 1, "sad": 1, "surprise": 1, "others": 1}, 3
            ),
        },
    )


def _mmew(root: Path, w: _Writer, fmt: str) -> FixtureInfo:
    header = [
        "Subject",
        "Filename",
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        "Action Units",
        "Estimated Emotion",
        "remarks",
    ]
    rows = [  # rows 2..7
        [1, "S01-01-001", 1, 5, 9, "6+12", "happiness", None],
        [1, "S01-02-001", 1, 4, 7, "1+2", "surprise", "blink"],
        [2, "S02-07-002", 1, 3, 6, "4", "others", None],
        [2, "S02-04-001", 1, "/", 8, "4", "disgust", None],  # row 5: apex missing
        [3, "S03-05-001", 1, 9, 5, "4", "fear", None],  # row 6: apex after offset
        [3, "S03-04-002", 1, 3, 6, "9", "disgust", None],  # row 7: no frames
    ]
    folders = {"happiness": "Happiness", "surprise": "surprise", "others": "Others"}  # case differs on disk
    for r in rows[:3]:
        w.frames(f"Micro_Expression/{folders[r[6]]}/{r[1]}", 1, r[4] + 2, lambda n: f"{n}.jpg")
    path = root / "MMEW_Micro_Exp.xlsx"
    _write_xlsx(path, {"Sheet1": [header] + rows})
    ids = ["S01/S01-01-001", "S01/S01-02-001", "S02/S02-07-002", "S03/S03-04-002"]
    return FixtureInfo(
        "mmew",
        root,
        path,
        ids,
        ids[:-1],
        {5: "apex missing", 6: "apex 9 after offset 5"},
        {"S03/S03-04-002": 7},
        counts={
            "mmew-native": _counts(
                {"happiness": 1, "surprise": 1, "anger": 0, "disgust": 1, "fear": 0, "sadness": 0, "others": 1}, 3
            )
        },
    )


def _fourdme(root: Path, w: _Writer, fmt: str) -> FixtureInfo:
    header = [
        "sub_ID",
        "fold_name",
        "Onset",
        "Apex",
        "Offset",
        "AUs",
        "Emotion",
        "Positive",
        "Negative",
        "fold",
        "eye blink",
        "Total",
    ]
    rows = [  # rows 2..7
        ["S01", "S01_01", 10, 12, 16, "AU4+AU7(k)", "Negative", 0, 1, 1, 0, 1],
        ["S01", "S01_01", 30, 33, 35, "AU12", "Positive", 1, 0, 1, 0, 1],
        ["S02", "S02_03", 5, 8, 12, "AU1+AU2", "Surprise", 0, 0, 2, 0, 1],
        ["S02", "S02_04", 20, 18, 25, "AU4", "Negative", 0, 1, 2, 0, 1],  # row 5: apex before onset
        ["S03", "S03_02", 7, 9, 11, "AU14", "Repression", 0, 0, 3, 0, 1],  # row 6: no frames
        ["S03", "S03_05", 3, 5, 9, "AU4", "Others", 0, 0, 3, 1, 1],
    ]
    w.frames("gray_micro/S01/S01_01", 8, 37, lambda n: f"img{n:04d}.jpg")
    w.frames("gray_micro/S02/S02_03", 3, 14, lambda n: f"img{n:04d}.jpg")
    w.frames("gray_micro/S03/S03_05", 1, 11, lambda n: f"img{n:04d}.jpg")
    path = root / "4DME_Labelling_Micro_release v1.xlsx"
    _write_xlsx(path, {"Sheet1": [header] + rows})
    ids = ["S01/S01_01/10", "S01/S01_01/30", "S02/S02_03/5", "S03/S03_02/7", "S03/S03_05/3"]
    return FixtureInfo(
        "4dme",
        root,
        path,
        ids,
        [i for i in ids if i != "S03/S03_02/7"],
        {5: "apex 18 before onset 20"},
        {"S03/S03_02/7": 6},
        counts={"4dme-native": _counts({"positive": 1, "negative": 1, "surprise": 1, "repression": 1, "others": 1}, 3)},
    )


_BUILDERS = {
    "casme2": _casme2,
    "samm": _samm,
    "casme": _casme,
    "casme_sq": _casme_sq,
    "casme3": _casme3,
    "mmew": _mmew,
    "4dme": _fourdme,
}
FIXTURE_NAMES = tuple(_BUILDERS)


def make_fixture(
    name: str,
    root: str | Path,
    *,
    frame_image: FrameImage | None = None,
    frame_size: tuple[int, int] = (48, 64),
    fmt: str = "xlsx",
) -> FixtureInfo:
    """Write the tiny ``name`` dataset under ``root`` (created) and describe what was planted.

    ``frame_image(frame_number) -> HxWx3 uint8`` gives the pixels of every frame (default:
    small generated images of ``frame_size`` = (H, W)); frames are written as JPEG.
    ``fmt``: ``'xls'`` writes the CASME II / CAS(ME)^3 (v1) annotation file as .xls.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    writer = _Writer(root, frame_image or default_frame_image(frame_size))
    info = _BUILDERS[name](root, writer, fmt)
    writer.write()
    return info


def set_annotation_cell(path: str | Path, sheet: str, row: int, column: int, value: Any) -> None:
    """Overwrite one cell (1-based ``row`` and ``column``, as a spreadsheet shows them) of a
    fixture's .xlsx annotation file, e.g. to plant an absurd frame number."""
    import openpyxl

    wb = openpyxl.load_workbook(path)
    wb[sheet].cell(row=row, column=column, value=value)
    wb.save(path)
