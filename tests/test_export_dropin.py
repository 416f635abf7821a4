"""``gamdss reselect`` exports a drop-in copy of the dataset's own annotation file: every row
(in the file's order, rows the reader skips and clips that were not cached included), every
column and every cell kept, only the reselected keyframe cells changed, and the ``Original
...``/``... Confidence`` columns added.

The oracle is independent of the writer: the source and exported files are read cell by cell
(openpyxl, xlrd, csv) and compared; each clip's row is found here from the planted cells.
Caches are made from the dataset fixtures (their real layout) without the face detector.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pytest

from dataset_fixtures import FIXTURE_NAMES, _write_xlsx, make_fixture
from gamdss.cli import main
from gamdss.data.cache import CacheEntry, CacheWriter, FrameCache, write_clip_file
from gamdss.data.datasets import read_annotations, scan_dataset
from gamdss.data.datasets.base import RESELECT_SOURCE
from gamdss.data.preprocess import annotation_fields
from gamdss.data.reselection_record import ClipReselection
from gamdss.reselection.export import CONFIDENCE_COLUMNS, ORIGINAL_COLUMNS, export_reselection, planned_outputs
from gamdss.settings.reselection import ReselectionSettings

ADDED = (*ORIGINAL_COLUMNS, *CONFIDENCE_COLUMNS)
KEYFRAMES = ("onset", "apex", "offset")
# 0-based keyframe columns of each fixture's annotation sheet
KEY_COLUMNS = {
    "casme2": (3, 4, 5),
    "samm": (3, 4, 5),
    "casme": (3, 4, 6),
    "casme_sq": (2, 3, 4),
    "casme3": (2, 3, 4),
    "mmew": (2, 3, 4),
    "4dme": (2, 3, 4),
}
VIDEO_COLUMN = {"casme2": 1, "samm": 1, "casme": 1, "casme_sq": 1, "casme3": 1, "mmew": 1, "4dme": 1}


# ----- making a cache and results -----------------------------------------------------------
def cache_from_fixture(root: Path, dataset: str, out: Path, seed: int = 0) -> FrameCache:
    """A frame cache of the fixture's usable clips as ``gamdss preprocess`` records them
    (annotation fields, absolute source paths), with small random pixels instead of faces."""
    scan = scan_dataset(root, dataset)
    rng = np.random.default_rng(seed)
    writer = CacheWriter(out, {"dataset": dataset, "size": [8, 8], "box_method": "test"})
    for clip in scan.clips:
        pixels = rng.integers(0, 256, size=(len(clip.frame_numbers), 8, 8, 3), dtype=np.uint8)
        rel, digest = write_clip_file(out, clip.clip_id, pixels)
        writer.add(
            CacheEntry(
                clip_id=clip.clip_id,
                frame_numbers=[int(n) for n in clip.frame_numbers],
                file=rel,
                shape=list(pixels.shape),
                sha256=digest,
                sources=[str(p) for p in clip.frame_paths],
                box=None,
                face_prob=None,
                box_method="test",
                **annotation_fields(clip),
            )
        )
    return FrameCache(out)


def planned_results(cache: FrameCache, seed: int = 1) -> list[ClipReselection]:
    """Results that move some keyframes and leave others where they are (fixed seed): each
    keyframe moves by -1, 0 or +1 frame, kept ordered and inside the clip; the first clip
    keeps all three."""
    rng = np.random.default_rng(seed)
    out = []
    for k, e in enumerate(cache.entries):
        ann = (e.onset_index, e.apex_index, e.offset_index)
        n = len(e.frame_numbers)
        shift = (0, 0, 0) if k == 0 else tuple(int(v) for v in rng.integers(-1, 2, size=3))
        o = min(max(ann[0] + shift[0], 0), n - 1)
        a = min(max(ann[1] + shift[1], o), n - 1)
        f = min(max(ann[2] + shift[2], a), n - 1)
        conf = (float("nan"), round(float(rng.random() * 5), 3), float("nan"))
        out.append(ClipReselection(e.clip_id, ann, (o, a, f), confidence=conf))
    return out


def export(cache: FrameCache, results, out: Path, **kw):
    return export_reselection(cache, results, out, ReselectionSettings(), **kw)


# ----- reading files cell by cell (the oracle) ----------------------------------------------
def read_cells(path: Path) -> dict[str, list[list[Any]]]:
    """Every sheet's cells as written (no stripping, no type changes)."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        wb = openpyxl.load_workbook(path)
        return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}
    if suffix == ".xls":
        import xlrd

        book = xlrd.open_workbook(str(path))
        sheets = {}
        for sh in book.sheets():
            rows = []
            for r in range(sh.nrows):
                row = []
                for c in range(sh.ncols):
                    cell = sh.cell(r, c)
                    v = None if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK) else cell.value
                    row.append(int(v) if isinstance(v, float) and v.is_integer() else v)
                rows.append(row)
            sheets[sh.name] = rows
        return sheets
    with open(path, newline="", encoding="utf-8-sig") as f:
        return {"": [[None if v == "" else v for v in row] for row in csv.reader(f)]}


def cell(rows: list[list[Any]], r: int, c: int) -> Any:
    """Cell at 1-based row ``r``, 0-based column ``c`` (``None`` beyond the sheet)."""
    return rows[r - 1][c] if r - 1 < len(rows) and c < len(rows[r - 1]) else None


def as_frame(v: Any) -> int | None:
    try:
        return int(str(v).strip())
    except ValueError:
        return None


def file_value(e: CacheEntry, name: str) -> Any:
    """The keyframe as the source file has it: before the reader's corrections."""
    for c in e.corrections:
        if c["field"] == name:
            return c["original"]
    return getattr(e, name)


def expected_row(sheet: list[list[Any]], dataset: str, e: CacheEntry) -> int:
    """The one row of the source sheet holding ``e``'s clip: its filename, a subject cell
    with the subject's number, and its onset as written in the file."""
    digits = "".join(ch for ch in e.subject if ch.isdigit()).lstrip("0")
    hits = []
    for r, row in enumerate(sheet, start=1):
        if len(row) <= max(KEY_COLUMNS[dataset]):
            continue
        sub = "".join(ch for ch in str(row[0]) if ch.isdigit()).lstrip("0")
        if (
            str(row[VIDEO_COLUMN[dataset]]).strip().lower() == e.video.lower()
            and (sub == digits or dataset == "casme_sq")  # CAS(ME)^2: subject 1 is folder s15
            and as_frame(row[KEY_COLUMNS[dataset][0]]) == as_frame(file_value(e, "onset"))
        ):
            hits.append(r)
    assert len(hits) == 1, (e.clip_id, hits)
    return hits[0]


def check_dropin(
    source: Path,
    exported: Path,
    dataset: str,
    cache: FrameCache,
    results,
    *,
    sheet: str | None,
    header_row: int | None,
) -> None:
    """Every cell of ``exported`` equals ``source``'s, but the keyframe cells of the
    reselected rows (the reselected frames; a keyframe left alone identical, type included)
    and the added columns (originals and confidences in the reselected rows, empty elsewhere)."""
    src, out = read_cells(source), read_cells(exported)
    src_sheet = src[sheet] if sheet is not None else next(iter(src.values()))
    out_sheet = out[sheet] if sheet is not None and sheet in out else next(iter(out.values()))
    for name, rows in src.items():  # the other sheets are kept as they are
        if rows is src_sheet:
            continue
        assert [r for r in out[name] if any(v is not None for v in r)] == [
            r for r in rows if any(v is not None for v in r)
        ], name
    width = max(len(r) for r in src_sheet)
    entries = {e.clip_id: e for e in cache.entries}
    changed: dict[int, tuple[CacheEntry, ClipReselection]] = {}
    for r in results:
        changed[expected_row(src_sheet, dataset, entries[r.clip_id])] = (entries[r.clip_id], r)
    keys = KEY_COLUMNS[dataset]
    added_at: dict[str, int] = {}
    if header_row is not None:
        header = out_sheet[header_row - 1]
        assert [cell(out_sheet, header_row, c) for c in range(width)] == [
            cell(src_sheet, header_row, c) for c in range(width)
        ]
        assert tuple(v for v in header[width:] if v is not None) == ADDED
        added_at = {name: header.index(name) for name in ADDED}
    assert len([r for r in out_sheet if any(v is not None for v in r)]) == len(
        [r for r in src_sheet if any(v is not None for v in r)]
    )
    for r in range(1, len(src_sheet) + 1):
        if r == header_row:
            continue
        if r not in changed:
            assert [cell(out_sheet, r, c) for c in range(width)] == [cell(src_sheet, r, c) for c in range(width)], r
            assert all(cell(out_sheet, r, c) is None for c in added_at.values()), r
            continue
        e, res = changed[r]
        for c in range(width):
            if c not in keys:
                assert cell(out_sheet, r, c) == cell(src_sheet, r, c), (r, c)
        for j, c in enumerate(keys):
            frame = e.frame_numbers[res.reselected[j]]
            before, after = cell(src_sheet, r, c), cell(out_sheet, r, c)
            if as_frame(before) == frame:  # left where it was: the cell as written
                assert after == before and type(after) is type(before), (r, c)
            else:
                assert as_frame(after) == frame, (r, c, after)
        if header_row is not None:
            text = exported.suffix == ".csv"  # a CSV's cells are text
            for j, name in enumerate(ORIGINAL_COLUMNS):
                want = e.frame_numbers[res.annotated[j]]
                assert cell(out_sheet, r, added_at[name]) == (str(want) if text else want)
            for j, name in enumerate(CONFIDENCE_COLUMNS):
                c = res.confidence[j]
                want = None if c != c else round(c, 2)
                assert cell(out_sheet, r, added_at[name]) == (str(want) if text and want is not None else want)
    if header_row is None:  # headerless: the added columns are on the sheet gamdss_extra
        side = out["gamdss_extra"]
        assert tuple(side[0]) == ("row", "subject", "filename", *ADDED)
        assert sorted(row[0] for row in side[1:]) == sorted(changed)
        for row in side[1:]:
            e, res = changed[row[0]]
            assert row[2] == cell(src_sheet, row[0], 1)
            assert tuple(row[3:6]) == tuple(e.frame_numbers[i] for i in res.annotated)


def check_rereads(source: Path, exported: Path, dataset: str, cache: FrameCache, results) -> None:
    """The export reads through the dataset's reader to the source's rows, with the
    reselected keyframes; each move is a correction of source ``gamdss reselect export``."""
    before, after = read_annotations(source, dataset), read_annotations(exported, dataset)
    assert [(s.row, s.reason) for s in after.skipped] == [(s.row, s.reason) for s in before.skipped]
    assert [r.clip_id for r in after.records] == [r.clip_id for r in before.records]
    assert [r.row for r in after.records] == [r.row for r in before.records]
    by_id = {r.clip_id: r for r in results}
    for old, new in zip(before.records, after.records):
        assert (new.subject, new.video, new.emotion, new.aus) == (old.subject, old.video, old.emotion, old.aus)
        # subjects.csv next to the source (SAMM's ethnicity) is not beside the export
        assert new.meta == {k: v for k, v in old.meta.items() if k not in ("ethnicity", "gender")}
        res = by_id.get(old.clip_id)
        if res is None:
            assert (new.onset, new.apex, new.offset) == (old.onset, old.apex, old.offset)
            assert new.corrections == old.corrections
            continue
        e = cache[old.clip_id]
        frames = tuple(e.frame_numbers[i] for i in res.reselected)
        assert (new.onset, new.apex, new.offset) == frames
        moved = {c.field: c for c in new.corrections if c.source == RESELECT_SOURCE}
        for k, name in enumerate(KEYFRAMES):
            annotated = e.frame_numbers[res.annotated[k]]
            if frames[k] != annotated:
                assert (moved[name].original, moved[name].corrected) == (annotated, frames[k])
            else:
                assert name not in moved
            assert new.original(name) == old.original(name)


def check_export(source: Path, exported: Path, dataset: str, cache: FrameCache, results, *, sheet, header_row) -> None:
    """:func:`check_dropin` and :func:`check_rereads` of one export."""
    check_dropin(source, exported, dataset, cache, results, sheet=sheet, header_row=header_row)
    check_rereads(source, exported, dataset, cache, results)


# ----- the cases --------------------------------------------------------------------------------
def _casme2_user_file(info) -> None:
    """The reviewer's CASME II file: rows reordered, an extra column with notes, AUs written
    'AU6, AU12', an emotion capitalised, text in an unnamed column, a keyframe as text, and
    the fixture's skipped rows (apex '/', apex before onset) and uncached clip kept."""
    wb = openpyxl.load_workbook(info.annotation_path)
    rows = [list(r) for r in wb["Sheet1"].iter_rows(values_only=True)]
    header, body = rows[0] + ["My notes"], rows[1:]
    body = [r + [f"note {k}"] for k, r in enumerate(body)]
    body[0][7], body[0][8] = "AU6, AU12", "Happiness"  # EP02_01f
    body[1][2] = "unnamed content"  # EP03_02
    body[2][3] = "5"  # EP01_11f onset as text
    order = np.random.default_rng(7).permutation(len(body))
    _write_xlsx(info.annotation_path, {"Sheet1": [header] + [body[i] for i in order]})


@pytest.fixture()
def casme2(tmp_path):
    info = make_fixture("casme2", tmp_path / "data")
    _casme2_user_file(info)
    cache = cache_from_fixture(info.root, "casme2", tmp_path / "cache")
    return info, cache


def test_casme2_user_file_is_kept_cell_for_cell(casme2, tmp_path):
    info, cache = casme2
    results = planned_results(cache)
    assert any(r.moved for r in results) and not results[0].moved
    got = export(cache, results, tmp_path / "run")
    assert got.notes == []
    exported = tmp_path / "run" / "CASME2-coding-20190701_reselected.xlsx"
    assert got.annotation_files == [exported]
    check_export(info.annotation_path, exported, "casme2", cache, results, sheet="Sheet1", header_row=1)
    values = read_cells(exported)["Sheet1"]
    # the reviewer's cells, by name: kept as written
    flat = [v for row in values for v in row]
    for kept in ("AU6, AU12", "Happiness", "unnamed content", "/", "note 0"):
        assert kept in flat
    # every source row is there, in the file's order (the cache lists clips in id order)
    src = read_cells(info.annotation_path)["Sheet1"]
    assert [r[1] for r in values] == [r[1] for r in src]
    assert len(values) == len(src) == 10


def test_casme2_rows_moved_after_caching_are_found_by_content(casme2, tmp_path):
    """The recorded row numbers are verified, not trusted: rows reordered since the cache
    was made are found by subject, filename and keyframes."""
    info, cache = casme2
    rows = read_cells(info.annotation_path)["Sheet1"]
    _write_xlsx(info.annotation_path, {"Sheet1": [rows[0]] + rows[1:][::-1]})
    results = planned_results(cache, seed=3)
    got = export(cache, results, tmp_path / "run")
    assert got.notes == []
    exported = tmp_path / "run" / "CASME2-coding-20190701_reselected.xlsx"
    check_export(info.annotation_path, exported, "casme2", cache, results, sheet="Sheet1", header_row=1)


def test_casme2_through_the_command_line(casme2, tmp_path, capsys):
    info, cache = casme2
    out = tmp_path / "run"
    assert main(["reselect", str(cache.root), "--preset", "paper", "--out", str(out), "--no-progress"]) == 0
    assert "note:" not in capsys.readouterr().out
    from gamdss.data.reselection_files import load_reselection

    results = load_reselection(out / "reselection.csv")
    exported = out / "CASME2-coding-20190701_reselected.xlsx"
    check_export(info.annotation_path, exported, "casme2", cache, results, sheet="Sheet1", header_row=1)


def test_samm_notes_block_and_extra_column(tmp_path):
    info = make_fixture("samm", tmp_path / "data")
    wb = openpyxl.load_workbook(info.annotation_path)
    ws = wb["FACS_Movement_Only"]
    ws.cell(row=14, column=13, value="Reviewer")
    ws.cell(row=15, column=13, value="checked")
    ws.cell(row=21, column=13, value="offset unknown")  # a row the reader skips
    ws.cell(row=16, column=9, value="AU6, AU12")
    wb.save(info.annotation_path)
    cache = cache_from_fixture(info.root, "samm", tmp_path / "cache")
    results = planned_results(cache, seed=5)
    got = export(cache, results, tmp_path / "run")
    assert got.notes == []
    exported = tmp_path / "run" / "SAMM_Micro_FACS_Codes_v2_reselected.xlsx"
    check_export(info.annotation_path, exported, "samm", cache, results, sheet="FACS_Movement_Only", header_row=14)


def test_casme3_keeps_the_file_order_and_its_corrected_keyframes(tmp_path):
    """CAS(ME)^3: the cache lists spNO.2 after spNO.1 and before spNO.216 (id order); the
    export keeps the file's order. A keyframe the reader corrects (onset 3647 -> 2647) and
    the reselection leaves gets the corrected frame (the export's keyframe cells are final:
    the reader applies corrections to the ``Original`` columns, never to them)."""
    info = make_fixture("casme3", tmp_path / "data")
    wb = openpyxl.load_workbook(info.annotation_path)
    wb["label"].append(["spNO.10", "a", 1, 2, 3, "4", "III", "disgust"])  # no frames: not cached
    wb.save(info.annotation_path)
    cache = cache_from_fixture(info.root, "casme3", tmp_path / "cache")
    ids = [e.clip_id for e in cache.entries]
    assert ids.index("spNO.2/c/70") < ids.index("spNO.216/d/2647")
    results = planned_results(cache, seed=2)
    got = export(cache, results, tmp_path / "run")
    assert got.notes == []
    exported = tmp_path / "run" / "cas(me)3_part_A_ME_label_JpgIndex_v2_reselected.xlsx"
    src = read_cells(info.annotation_path)
    out = read_cells(exported)
    assert list(out)[:3] == ["Sheet1", "label", "Sheet3"]
    assert [r[:2] for r in out["label"]] == [r[:2] for r in src["label"]]
    check_rereads(info.annotation_path, exported, "casme3", cache, results)
    # the corrected onset of spNO.216/d: 2647 unless moved, never the typo 3647
    row = next(r for r in out["label"] if r[0] == "spNO.216" and r[1] == "d")
    res = next(r for r in results if r.clip_id == "spNO.216/d/2647")
    assert row[2] == cache["spNO.216/d/2647"].frame_numbers[res.reselected[0]]
    rows_ok = {}
    for r in results:  # every other cell: as in the source
        e = cache[r.clip_id]
        rows_ok[expected_row(src["label"], "casme3", e)] = r
    for k, (a, b) in enumerate(zip(src["label"], out["label"]), start=1):
        if k in rows_ok:
            assert [a[c] for c in (0, 1, 5, 6, 7)] == [b[c] for c in (0, 1, 5, 6, 7)]
        else:
            assert b[: len(a)] == a


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_dataset_fixture(name, tmp_path):
    info = make_fixture(name, tmp_path / "data")
    cache = cache_from_fixture(info.root, name, tmp_path / "cache")
    results = planned_results(cache, seed=11)
    got = export(cache, results, tmp_path / "run")
    assert got.notes == []
    (exported,) = got.annotation_files
    assert exported.name == f"{info.annotation_path.stem}_reselected.xlsx"
    assert planned_outputs(cache, tmp_path / "run")[1] == exported
    src = read_cells(info.annotation_path)
    sheet = {"samm": "FACS_Movement_Only", "casme_sq": "CASFEcode_final", "casme3": "label"}.get(name, "Sheet1")
    header = {"samm": 14, "casme_sq": None}.get(name, 1)
    check_export(info.annotation_path, exported, name, cache, results, sheet=sheet, header_row=header)
    if name == "casme_sq":
        assert read_cells(exported)["naming rule1"] == src["naming rule1"]


def test_xls_source_becomes_xlsx_with_the_same_values(tmp_path):
    info = make_fixture("casme2", tmp_path / "data", fmt="xls")
    cache = cache_from_fixture(info.root, "casme2", tmp_path / "cache")
    results = planned_results(cache, seed=4)
    got = export(cache, results, tmp_path / "run")
    assert got.notes == []
    exported = tmp_path / "run" / "CASME2-coding-20190701_reselected.xlsx"
    assert got.annotation_files == [exported]
    check_export(info.annotation_path, exported, "casme2", cache, results, sheet="Sheet1", header_row=1)


def test_csv_source_stays_csv(tmp_path):
    info = make_fixture("casme2", tmp_path / "data")
    rows = read_cells(info.annotation_path)["Sheet1"]
    rows[1][7] = "AU6, AU12"
    rows[2] = rows[2] + ["extra cell"]
    source = info.root / "CASME2-coding-mine.csv"
    with open(source, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["" if v is None else v for v in r] for r in rows])
    info.annotation_path.unlink()
    cache = cache_from_fixture(info.root, "casme2", tmp_path / "cache")
    results = planned_results(cache, seed=6)
    got = export(cache, results, tmp_path / "run")
    assert got.notes == []
    exported = tmp_path / "run" / "CASME2-coding-mine_reselected.csv"
    assert got.annotation_files == [exported]
    check_export(source, exported, "casme2", cache, results, sheet=None, header_row=1)


def test_without_the_source_file_the_summary_says_so(casme2, tmp_path):
    """Frames moved away since preprocessing: the source file cannot be found, the file is
    written from the cache alone (as before) and the summary says what it lacks."""
    info, cache = casme2
    shutil.move(str(info.root), str(tmp_path / "elsewhere"))
    results = planned_results(cache)
    got = export(cache, results, tmp_path / "run")
    (exported,) = got.annotation_files
    assert exported.name == "CASME2-coding-20190701_reselected.xlsx"
    assert "not as a drop-in copy" in got.summary() and "source annotation file was not found" in got.summary()
    report = read_annotations(exported, "casme2")
    assert len(report.records) == len(results)
    # given explicitly, the moved file is used (and verified)
    moved = tmp_path / "elsewhere" / info.annotation_path.name
    got = export(cache, results, tmp_path / "run2", annotations={"casme2": moved})
    assert got.notes == []
    check_dropin(moved, got.annotation_files[0], "casme2", cache, results, sheet="Sheet1", header_row=1)


def test_a_file_that_no_longer_matches_the_cache_is_not_used(casme2, tmp_path):
    """A clip's row changed since caching (another onset): the file is not the cache's
    source; the export falls back and names the clip."""
    info, cache = casme2
    wb = openpyxl.load_workbook(info.annotation_path)
    ws = wb["Sheet1"]
    r = next(k for k in range(2, ws.max_row + 1) if ws.cell(row=k, column=2).value == "EP02_01f")
    ws.cell(row=r, column=4, value=94)
    wb.save(info.annotation_path)
    got = export(cache, planned_results(cache), tmp_path / "run")
    assert len(got.notes) == 1 and "sub01/EP02_01f" in got.notes[0]


def test_the_command_line_takes_the_annotation_file(casme2, tmp_path, capsys):
    """The dataset moved since preprocessing: --annotations gives its file, which is copied
    (and verified: a file of other clips, or no file, is bad input naming it, exit 2, and
    nothing is written)."""
    info, cache = casme2
    shutil.move(str(info.root), str(tmp_path / "elsewhere"))
    moved = tmp_path / "elsewhere" / info.annotation_path.name
    out = tmp_path / "run"
    args = ["reselect", str(cache.root), "--preset", "paper", "--out", str(out), "--no-progress"]
    assert main([*args, "--annotations", str(moved)]) == 0
    assert "note:" not in capsys.readouterr().out
    from gamdss.data.reselection_files import load_reselection

    results = load_reselection(out / "reselection.csv")
    check_dropin(
        moved,
        out / moved.name.replace(".xlsx", "_reselected.xlsx"),
        "casme2",
        cache,
        results,
        sheet="Sheet1",
        header_row=1,
    )
    other = tmp_path / "other.xlsx"
    wb = openpyxl.load_workbook(moved)
    ws = wb["Sheet1"]
    ws.delete_rows(2, ws.max_row)  # the header alone: no clip of the cache has a row
    wb.save(other)
    for bad, message in ((other, f"--annotations {other}: "), (tmp_path / "none.xlsx", "is not a file")):
        assert main([*args, "--out", str(tmp_path / "run2"), "--annotations", str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]
        assert not (tmp_path / "run2").exists()


def test_a_merged_cell_at_the_sheets_right_edge_is_kept(casme2, tmp_path):
    """A header merged across two columns right of the data (J1:K1), and a merge inside a
    data row (J3:L3): the added columns go right of both, and every cell stays."""
    info, _ = casme2
    wb = openpyxl.load_workbook(info.annotation_path)
    ws = wb["Sheet1"]
    ws.cell(row=1, column=10, value="Notes")
    ws.merge_cells("J1:K1")
    ws.cell(row=3, column=10, value="see the video")
    ws.merge_cells("J3:L3")
    wb.save(info.annotation_path)
    cache = cache_from_fixture(info.root, "casme2", tmp_path / "cache2")
    results = planned_results(cache)
    got = export(cache, results, tmp_path / "run")
    assert got.notes == []
    exported = got.annotation_files[0]
    check_dropin(info.annotation_path, exported, "casme2", cache, results, sheet="Sheet1", header_row=1)
    header = [c.value for c in openpyxl.load_workbook(exported)["Sheet1"][1]]
    assert header[9] == "Notes" and header[12:15] == list(ORIGINAL_COLUMNS)


def test_a_copy_with_other_labels_is_not_taken_for_the_source(casme2, tmp_path):
    """The cache was made from the user's copy, whose one clip is 'surprise'; the official
    file beside it has the same keyframes but 'happiness' there: the search must not copy
    the official file (its labels would replace the user's); with no file that matches, the
    export falls back and says why, naming the clip."""
    info, cache = casme2
    rows = read_cells(info.annotation_path)["Sheet1"]
    clip = cache.entries[0]
    k = next(i for i, r in enumerate(rows) if i > 0 and str(r[1]) == clip.video)
    rows[k][8] = "surprise" if clip.emotion != "surprise" else "disgust"
    mine = tmp_path / "mine" / "CASME2-coding-fixed.xlsx"
    mine.parent.mkdir()
    _write_xlsx(mine, {"Sheet1": rows})
    entries = [
        e if e.clip_id != clip.clip_id else CacheEntry.from_json({**e.to_json(), "emotion": rows[k][8]})
        for e in cache.entries
    ]
    writer = CacheWriter(tmp_path / "cache-mine", dict(cache.header))
    for e in entries:
        shutil.copy(cache.root / e.file, (tmp_path / "cache-mine" / e.file).parent)
        writer.add(e)
    writer.flush()
    mine_cache = FrameCache(tmp_path / "cache-mine")
    results = planned_results(mine_cache)
    got = export(mine_cache, results, tmp_path / "run")
    assert len(got.notes) == 1 and clip.clip_id in got.notes[0] and rows[k][8] in got.notes[0]
    # given explicitly, the user's copy is used
    got = export(mine_cache, results, tmp_path / "run2", annotations={"casme2": mine})
    assert got.notes == []
    record = next(r for r in read_annotations(got.annotation_files[0], "casme2").records if r.clip_id == clip.clip_id)
    assert record.emotion == rows[k][8]


def test_a_csv_column_of_the_same_name_is_reused_not_renamed(tmp_path):
    """A CSV (BOM, CRLF) that already has an `original_onset` column: its header cell stays as
    written, the values go in it, and the bytes outside the reselected cells are kept."""
    info = make_fixture("casme2", tmp_path / "data")
    rows = read_cells(info.annotation_path)["Sheet1"]
    rows = [[*("" if v is None else v for v in r), "original_onset" if i == 0 else ""] for i, r in enumerate(rows)]
    source = info.root / "CASME2-coding-mine.csv"
    text = "\r\n".join(",".join(str(v) for v in r) for r in rows) + "\r\n"
    source.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    info.annotation_path.unlink()
    cache = cache_from_fixture(info.root, "casme2", tmp_path / "cache")
    got = export(cache, planned_results(cache), tmp_path / "run")
    assert got.notes == []
    out = got.annotation_files[0].read_bytes()
    assert out.startswith(b"\xef\xbb\xbf") and b"\r\n" in out
    header = out[3:].split(b"\r\n")[0].decode("utf-8").split(",")
    assert header[len(rows[0]) - 1] == "original_onset" and header.count("Original Onset") == 0


def test_rows_shifted_in_a_large_file_are_matched_in_linear_time(tmp_path):
    """3,000 rows, every recorded row off by one (a line inserted at the top since caching):
    each clip is found by content through an index of (subject, video), not by rescanning
    the file per clip; counted, not timed: _row_is is called about once per clip."""
    from gamdss.data.datasets import get_dataset
    from gamdss.data.datasets.base import ReselectedRow

    info = make_fixture("casme2", tmp_path / "data")
    rows = read_cells(info.annotation_path)["Sheet1"]
    header, body = rows[0], rows[1:]
    big = [header] + [
        [f"{1 + i // 100:02d}", f"EP{i:04d}", *r[2:]] for i, r in enumerate(body * (3000 // len(body) + 1))
    ][:3000]
    path = tmp_path / "big.xlsx"
    _write_xlsx(path, {"Sheet1": big})
    spec = get_dataset("casme2")
    report = read_annotations(path, "casme2")
    clips = [
        ReselectedRow(
            r.clip_id, r.subject, r.video, r.row + 1, (r.onset, r.apex, r.offset), (r.onset, r.apex, r.offset), (), ()
        )
        for r in report.records
    ]
    calls = 0
    original = type(spec)._row_is

    def counted(self, *args):
        nonlocal calls
        calls += 1
        return original(self, *args)

    type(spec)._row_is = counted
    try:
        found = spec.match_rows(path, clips)
    finally:
        type(spec)._row_is = original
    assert found == {r.clip_id: r.row for r in report.records}
    assert calls <= 3 * len(clips)


def test_frames_recorded_by_relative_paths_are_found_from_the_same_folder(tmp_path, monkeypatch):
    """`gamdss preprocess data/CASME2` now records absolute paths, so `gamdss reselect` finds
    the source file from any folder. A cache made before that holds paths relative to where
    preprocessing ran: found from there; from elsewhere the export falls back with its note."""
    import json
    import os

    info = make_fixture("casme2", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    cache = cache_from_fixture(info.root.relative_to(tmp_path), "casme2", tmp_path / "cache")
    assert all(Path(s).is_absolute() for e in cache.entries for s in e.sources)
    results = planned_results(cache)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    got = export(cache, results, tmp_path / "run0")
    assert got.notes == []
    check_dropin(info.annotation_path, got.annotation_files[0], "casme2", cache, results, sheet="Sheet1", header_row=1)

    manifest = tmp_path / "cache" / "manifest.json"  # as an older gamdss wrote it
    data = json.loads(manifest.read_text())
    for e in data["clips"]:
        e["sources"] = [os.path.relpath(s, tmp_path) for s in e["sources"]]
    manifest.write_text(json.dumps(data))
    cache = FrameCache(tmp_path / "cache")
    assert not Path(cache.entries[0].sources[0]).is_absolute()
    monkeypatch.chdir(tmp_path)
    got = export(cache, results, tmp_path / "run")
    assert got.notes == []
    check_dropin(info.annotation_path, got.annotation_files[0], "casme2", cache, results, sheet="Sheet1", header_row=1)
    monkeypatch.chdir(elsewhere)
    got = export(cache, results, tmp_path / "run2")
    assert len(got.notes) == 1 and "not found" in got.notes[0]


def test_a_cache_made_from_an_export_keeps_the_annotators_keyframes_as_original(casme2, tmp_path):
    """A cache built from a ``gamdss reselect`` export, reselected again: the second file's
    ``Original`` columns held the first run's output, and the annotators' values were gone."""
    info, cache = casme2
    first = planned_results(cache, seed=1)
    assert any(r.moved for r in first)
    export(cache, first, tmp_path / "run1")
    exported = tmp_path / "run1" / "CASME2-coding-20190701_reselected.xlsx"
    human = {r.clip_id: [cache[r.clip_id].frame_numbers[i] for i in r.annotated] for r in first}
    shutil.copy(exported, info.annotation_path)  # the export in place of the annotation file
    cache2 = cache_from_fixture(info.root, "casme2", tmp_path / "cache2")
    assert {e.clip_id for e in cache2.entries} == set(human)
    kept = [ClipReselection(e.clip_id, (a := (e.onset_index, e.apex_index, e.offset_index)), a) for e in cache2.entries]
    got = export(cache2, kept, tmp_path / "run2")
    assert len(got.notes) == 1 and "earlier gamdss reselect export" in got.notes[0]
    rows = read_cells(tmp_path / "run2" / "CASME2-coding-20190701_reselected.xlsx")["Sheet1"]
    header = rows[0]
    cols = [header.index(c) for c in ORIGINAL_COLUMNS]
    by_name = {(str(r[0]), str(r[1])): r for r in rows[1:]}
    for e in cache2.entries:
        row = next(r for (s, v), r in by_name.items() if v == e.video and e.subject.endswith(s.zfill(2)))
        assert [row[c] for c in cols] == human[e.clip_id], e.clip_id
    # and reading the second file gives the annotators' values as original()
    records = read_annotations(tmp_path / "run2" / "CASME2-coding-20190701_reselected.xlsx", "casme2").records
    cached = [rec for rec in records if rec.clip_id in human]
    assert len(cached) == len(human)
    for rec in cached:
        assert [rec.original(k) for k in ("onset", "apex", "offset")] == human[rec.clip_id], rec.clip_id
