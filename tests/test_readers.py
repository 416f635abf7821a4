"""Dataset readers against tiny fixtures in each dataset's real layout (tests/dataset_fixtures.py)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from dataset_fixtures import FIXTURE_NAMES, make_fixture
from gamdss.data import DATASETS, get_dataset, read_annotations, scan_dataset
from gamdss.data.datasets.frames import FrameListError, list_frames, trailing_int
from gamdss.data.datasets.tables import TableError, normalise_name, read_table


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    base = tmp_path_factory.mktemp("datasets")
    return {n: make_fixture(n, base / n) for n in FIXTURE_NAMES}


def _comparable(r):
    d = dataclasses.asdict(r)
    d.pop("row")
    d.pop("corrections")
    return d


def test_registry_names():
    assert set(DATASETS) == {"casme", "casme2", "samm", "casme_sq", "casme3", "mmew", "4dme"}
    with pytest.raises(ValueError, match="known datasets: casme, casme2"):
        get_dataset("smic")


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_read_annotations_alone(fixtures, name):
    info = fixtures[name]
    rep = read_annotations(info.annotation_path, dataset=name)
    assert [r.clip_id for r in rep.records] == info.record_clip_ids
    assert {s.row: s.reason for s in rep.skipped}.keys() == info.skipped_rows.keys()
    for s in rep.skipped:
        assert info.skipped_rows[s.row] in s.reason
    for r in rep.records:
        assert r.onset <= r.apex <= r.offset and r.emotion == r.emotion.lower()
        assert r.fps == get_dataset(name).fps and r.dataset == name


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_scan_finds_frames_and_reports_missing(fixtures, name):
    info = fixtures[name]
    rep = scan_dataset(info.root, name)
    assert rep.annotations.path == info.annotation_path
    assert [c.clip_id for c in rep.clips] == info.clip_ids
    frame_skips = {s.clip: s for s in rep.skipped if s.reason.startswith("frames missing on disk")}
    assert {k: s.row for k, s in frame_skips.items()} == info.missing_frames
    for c in rep.clips:
        m = math.ceil(0.5 * (c.offset - c.onset))
        assert list(c.frame_numbers) == sorted(c.frame_numbers)
        assert all(c.onset - m <= n <= c.offset + m for n in c.frame_numbers)
        assert set(range(c.onset, c.offset + 1)) <= set(c.frame_numbers)
        assert c.frame_numbers[c.apex_index] == c.apex and all(p.is_file() for p in c.frame_paths)
        assert [trailing_int(p.name) for p in c.frame_paths] == list(c.frame_numbers)


def test_numeric_sort_and_span_casme2(fixtures):
    rep = scan_dataset(fixtures["casme2"].root, "casme2", margin=0.5)
    clip = next(c for c in rep.clips if c.clip_id == "sub01/EP02_01f")
    # onset 95, offset 103: m = 4, span [91, 107] limited to the frames on disk 93..105
    assert clip.frame_numbers == tuple(range(93, 106))
    names = [p.name for p in clip.frame_paths]
    assert names.index("img99.jpg") + 1 == names.index("img100.jpg")
    assert (clip.onset_index, clip.apex_index, clip.offset_index) == (2, 5, 10)
    narrow = scan_dataset(fixtures["casme2"].root, "casme2", margin=0.0)
    assert next(c for c in narrow.clips if c.clip_id == "sub01/EP02_01f").frame_numbers == tuple(range(95, 104))


def test_samm_padding_notes_block_and_subject_meta(fixtures):
    rep = scan_dataset(fixtures["samm"].root, "samm")
    by_id = {c.clip_id: c for c in rep.clips}
    assert by_id["007/007_3_1"].frame_paths[0].name == "007_0018.jpg"  # 4-digit padding elsewhere 5
    assert by_id["006/006_1_2"].frame_paths[0].name == "006_05560.jpg"
    assert by_id["006/006_1_2"].meta["ethnicity"] == "White British"
    assert by_id["006/006_1_2"].meta["objective_class"] == "I"
    assert "ethnicity" not in by_id["011/011_2_3"].meta
    emotions = {c.clip_id: c.emotion for c in rep.clips}
    assert emotions["007/007_3_1"] == "other" and emotions["007/007_4_2"] == "others"


def test_casme3_corrections_keep_originals(fixtures):
    info = fixtures["casme3"]
    rep = read_annotations(info.annotation_path, "casme3")
    by_id = {r.clip_id: r for r in rep.records}
    for clip, expected in info.corrections.items():
        r = by_id[clip]
        assert [(c.field, c.original, c.corrected) for c in r.corrections] == expected
        for fld, original, corrected in expected:
            assert getattr(r, fld) == corrected and r.original(fld) == original
        assert all(c.source == "casme3-corrections v1" and c.reason for c in r.corrections)
    assert all(not r.corrections for k, r in by_id.items() if k not in info.corrections)
    # several expressions of one video get distinct ids; 'spNo.1' on disk matched to 'spNO.1'
    assert {"spNO.1/a/10", "spNO.1/a/30"} <= set(by_id)


def test_user_corrections_file(fixtures, tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        "dataset: casme2-local\nversion: 3\ncorrections:\n"
        "  - {subject: sub04, video: EP12_01f, field: apex, original: '/', corrected: 25,"
        " reason: read from the frames}\n",
        encoding="utf-8",
    )
    rep = read_annotations(fixtures["casme2"].annotation_path, "casme2", corrections=extra)
    r = next(r for r in rep.records if r.clip_id == "sub04/EP12_01f")
    assert r.apex == 25 and r.original("apex") == "/" and r.corrections[0].source == "casme2-local-corrections v3"
    assert 5 not in {s.row for s in rep.skipped}


@pytest.mark.parametrize("name", ["casme2", "casme3"])
def test_xls_files(tmp_path, name):
    info = make_fixture(name, tmp_path / name, fmt="xls")
    assert info.annotation_path.suffix == ".xls"
    rep = scan_dataset(info.root, name)
    assert [r.clip_id for r in rep.annotations.records] == info.record_clip_ids
    assert [c.clip_id for c in rep.clips] == info.clip_ids
    assert {s.row for s in rep.annotations.skipped} == set(info.skipped_rows)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_written_annotations_reread_to_same_records(fixtures, tmp_path, name):
    ds = get_dataset(name)
    records = read_annotations(fixtures[name].annotation_path, name).records
    out = tmp_path / "out" / "annotations.xlsx"
    originals = [r.original("onset") for r in records]
    ds.write_annotations(records, out, extra_columns={"original onset": originals})
    again = read_annotations(out, name)
    assert again.skipped == []
    # SAMM's subject metadata comes from subjects.csv beside the original file, not the written one
    strip = ("ethnicity", "gender")
    assert [{**_comparable(r), "meta": {k: v for k, v in r.meta.items() if k not in strip}} for r in again.records] == [
        {**_comparable(r), "meta": {k: v for k, v in r.meta.items() if k not in strip}} for r in records
    ]
    with pytest.raises(FileExistsError):
        ds.write_annotations(records, out)
    ds.write_annotations(records[:1], out, overwrite=True)
    assert len(read_annotations(out, name).records) == 1
    with pytest.raises(ValueError, match="values for"):
        ds.write_annotations(records, tmp_path / "x.xlsx", extra_columns={"bad": [1]})


def test_samm_written_header_on_row_14(fixtures, tmp_path):
    import openpyxl

    records = read_annotations(fixtures["samm"].annotation_path, "samm").records
    out = get_dataset("samm").write_annotations(records, tmp_path / "samm.xlsx")
    ws = openpyxl.load_workbook(out).active
    assert ws.cell(14, 1).value == "Subject" and ws.cell(15, 1).value == 6 and ws.cell(15, 10).value == "Happiness"
    assert read_annotations(out, "samm").records[0].row == 15


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_layout_written_through_frame_path_is_found(fixtures, tmp_path, name):
    """What a synthetic-data writer does: frames at frame_path(), annotations through
    write_annotations() under the first accepted name; the scan must find every clip."""
    import numpy as np
    from PIL import Image

    ds = get_dataset(name)
    records = read_annotations(fixtures[name].annotation_path, name).records
    root = tmp_path / "synthetic"
    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    for r in records:
        for n in range(r.onset, r.offset + 1):
            p = ds.frame_path(root, r, n)
            p.parent.mkdir(parents=True, exist_ok=True)
            img.save(p)
    ds.write_annotations(records, root / ds.annotation_names[0])
    rep = scan_dataset(root, name)
    assert [c.clip_id for c in rep.clips] == [r.clip_id for r in records] and rep.skipped == []
    assert all(c.frame_paths[c.onset_index].parent == ds.clip_dir(root, c.annotation) for c in rep.clips)


def test_missing_annotation_file_lists_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="SAMM_Micro_FACS_Codes_v2.xlsx"):
        scan_dataset(tmp_path, "samm")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        scan_dataset(tmp_path / "nope", "samm")


def test_tables_header_by_content_and_errors(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("notes,,\nmore notes,,\n ON-SET frame ,Unnamed: 1,Subject\n5,,1\n,,\n7,x,2\n", encoding="utf-8")
    t = read_table(p, {"onset": ("onsetframe",), "subject": ("subject",)}, ("onset", "subject"))
    assert t.header_row == 3 and t.columns == {"onset": "ON-SET frame", "subject": "Subject"}
    assert [(r.number, dict(r.cells)) for r in t.rows if not r.is_empty()] == [
        (4, {"onset": "5", "subject": "1"}),
        (6, {"onset": "7", "subject": "2"}),
    ]
    assert normalise_name("Estimated  Emotion") == normalise_name("estimated_emotion") == "estimatedemotion"
    with pytest.raises(TableError, match="t.csv"):
        read_table(p, {"apex": ("apex",)}, ("apex",))
    with pytest.raises(TableError, match="does not exist"):
        read_annotations(tmp_path / "missing.xlsx", "casme2")
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TableError, match="bad.xlsx"):
        read_annotations(bad, "casme2")


def test_frames_trailing_int_and_duplicates(tmp_path):
    assert trailing_int("reg_img046.jpg") == 46 and trailing_int("006_05562.JPG") == 5562
    assert trailing_int("readme.txt") is None
    for n in (100, 46, 5, 99):
        (tmp_path / f"img{n}.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert [n for n, _ in list_frames(tmp_path)] == [5, 46, 99, 100]
    (tmp_path / "img0046.jpg").write_bytes(b"")
    with pytest.raises(FrameListError, match="frame number 46"):
        list_frames(tmp_path)


def _moved(r):
    """A 'reselected' (onset, apex, offset): onset one frame later and offset one frame
    earlier where that keeps onset <= apex <= offset."""
    return (r.onset + 1 if r.onset < r.apex else r.onset, r.apex, r.offset - 1 if r.offset > r.apex else r.offset)


@pytest.mark.parametrize("name", ["casme3", "casme_sq", "4dme"])
def test_reselect_export_rescans_to_same_clip_ids(fixtures, tmp_path, name):
    """The file `gamdss reselect` exports (reselected keyframes in the schema's columns, the
    annotated ones in 'Original ...' columns) identifies each clip by its annotated onset:
    same clip ids and frames as the original file, reselected keyframes, and original()
    giving the dataset file's values."""
    from gamdss.data.datasets.base import ORIGINAL_KEYFRAME_COLUMNS
    from gamdss.reselection.export import ORIGINAL_COLUMNS

    assert tuple(ORIGINAL_KEYFRAME_COLUMNS.values()) == ORIGINAL_COLUMNS
    info, ds = fixtures[name], get_dataset(name)
    records = read_annotations(info.annotation_path, name).records
    moved = [dataclasses.replace(r, **dict(zip(("onset", "apex", "offset"), _moved(r)))) for r in records]
    assert any(m.onset != r.onset for m, r in zip(moved, records))
    extra = {col: [getattr(r, k) for r in records] for col, k in zip(ORIGINAL_COLUMNS, ("onset", "apex", "offset"))}
    out = ds.write_annotations(moved, tmp_path / "reselected.xlsx", extra_columns=extra)
    rep = scan_dataset(info.root, name, annotations=out)
    assert [c.clip_id for c in rep.clips] == info.clip_ids
    assert [s.clip for s in rep.skipped] == list(info.missing_frames)
    by_id = {r.clip_id: r for r in records}
    for c in rep.clips:
        r = by_id[c.clip_id]
        assert (c.onset, c.apex, c.offset) == _moved(r)
        for k in ("onset", "apex", "offset"):
            assert c.annotation.original(k) == r.original(k)
        resel = [x for x in c.annotation.corrections if x.source == "gamdss reselect export"]
        assert [(x.field, x.original, x.corrected) for x in resel] == [
            (k, getattr(r, k), getattr(c, k)) for k in ("onset", "apex", "offset") if getattr(r, k) != getattr(c, k)
        ]
        assert all("Original " + x.field.capitalize() in x.reason for x in resel)


def test_casme3_reselect_export_finds_me_clip_folders(tmp_path):
    """CAS(ME)^3 ME-clip release: folders are named by the onset of the official file
    (before corrections), also when the exported file moves the onset."""
    import numpy as np
    from PIL import Image

    from gamdss.reselection.export import ORIGINAL_COLUMNS

    ds = get_dataset("casme3")
    for folder, first, last in (("spNO.1_a_10", 10, 20), ("spNO.216_d_3647", 2640, 2700)):
        d = tmp_path / "Part_A_ME_clip" / "frame" / folder
        d.mkdir(parents=True)
        for n in range(first, last + 1):
            Image.fromarray(np.full((4, 4, 3), n % 256, np.uint8)).save(d / f"{n}.jpg")
    original = tmp_path / "label.csv"
    original.write_text(
        "Subject,Filename,Onset,Apex,Offset,AU,Objective class,emotion\n"
        "spNO.1,a,10,15,20,12,I,happy\nspNO.216,d,3647,2650,2694,4+5,V,anger\n",
        encoding="utf-8",
    )
    first = ds.scan(tmp_path, annotations=original)
    assert [c.clip_id for c in first.clips] == ["spNO.1/a/10", "spNO.216/d/2647"] and first.skipped == []
    # what `gamdss reselect` writes: onset 10 -> 11 and 2647 -> 2649 (the corrected onset is the original)
    exported = tmp_path / "label_reselected.csv"
    exported.write_text(
        "Subject,Filename,Onset,Apex,Offset,AU,Objective class,emotion," + ",".join(ORIGINAL_COLUMNS) + "\n"
        "spNO.1,a,11,15,20,12,I,happy,10,15,20\nspNO.216,d,2649,2650,2694,4+5,V,anger,2647,2650,2694\n",
        encoding="utf-8",
    )
    again = ds.scan(tmp_path, annotations=exported)
    assert again.skipped == []
    assert [(c.clip_id, c.onset, c.annotation.original("onset")) for c in again.clips] == [
        ("spNO.1/a/10", 11, 10),
        ("spNO.216/d/2647", 2649, 3647),
    ]
    assert [c.frame_paths[0].parent.name for c in again.clips] == ["spNO.1_a_10", "spNO.216_d_3647"]
    assert [(x.field, x.original, x.corrected, x.source) for x in again.clips[1].annotation.corrections] == [
        ("onset", 3647, 2647, "casme3-corrections v1"),
        ("onset", 2647, 2649, "gamdss reselect export"),
    ]


def test_bad_original_keyframe_cell_is_reported(tmp_path):
    p = tmp_path / "label.csv"
    p.write_text(
        "Subject,Filename,Onset,Apex,Offset,AU,Objective class,emotion,Original Onset\n"
        "spNO.1,a,11,15,20,12,I,happy,ten\nspNO.1,b,5,6,8,12,I,happy,\n",
        encoding="utf-8",
    )
    rep = read_annotations(p, "casme3")
    assert [(s.row, s.reason) for s in rep.skipped] == [(2, "'Original Onset': 'ten' is not a frame number")]
    # an empty 'Original' cell: the row was not reselected
    assert [(r.clip_id, r.onset, r.corrections) for r in rep.records] == [("spNO.1/b/5", 5, ())]


def _xlsx(path, sheets):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def test_casme_sq_naming_rule1_keys_on_subject_id(tmp_path):
    """Public layout (folder number, folder, subject id): subject 15 is folder s40, not s15."""
    rows = [
        [1, "disgust1_1", 10, 12, 15, "4", "negative", "micro-expression", None],
        [15, "disgust1_1", 20, 22, 25, "4", "negative", "micro-expression", None],
    ]
    path = tmp_path / "CAS(ME)^2code_final.xlsx"
    _xlsx(
        path,
        {
            "CASFEcode_final": rows,
            "naming rule1": [[15, "s15", 1], [40, "s40", 15]],
            "naming rule2": [[101, "disgust1"]],
        },
    )
    rep = read_annotations(path, "casme_sq")
    assert [(r.subject, r.clip_id, r.meta["stimulus_code"]) for r in rep.records] == [
        ("s15", "s15/disgust1_1/10", "0101"),
        ("s40", "s40/disgust1_1/20", "0101"),
    ]
    # a subject whose id equals its folder number, and the two-cell form (subject, folder)
    _xlsx(
        path,
        {
            "CASFEcode_final": rows,
            "naming rule1": [["s15", 15, 15], [1, "s16"]],
            "naming rule2": [["0101", "disgust1"]],
        },
    )
    assert [r.subject for r in read_annotations(path, "casme_sq").records] == ["s16", "s15"]
    _xlsx(path, {"CASFEcode_final": rows, "naming rule1": [[15, "s15", 1], [15, "s15", 2]]})
    with pytest.raises(ValueError, match=r"subjects 1 and 2 to one folder 's15'"):
        read_annotations(path, "casme_sq")


def test_casme_sq_fixture_subject_ids_map_to_folders(fixtures):
    # fixture naming rule1: (15, s15, 1), (16, s16, 2)
    rep = read_annotations(fixtures["casme_sq"].annotation_path, "casme_sq")
    assert {r.row: r.subject for r in rep.records} == {1: "s15", 2: "s15", 4: "s16", 5: "s16"}


def test_split_aus_unknown_cells():
    from gamdss.data.datasets.base import split_aus

    for cell in ("?", " / ", "-", "n/a", None):
        assert split_aus(cell) == ()
    assert split_aus("R12 or 14") == ("R12 or 14",)
    assert split_aus("4+L10") == ("4", "L10") and split_aus(12.0) == ("12",)


def test_casme2_fixture_question_mark_aus(fixtures):
    rep = read_annotations(fixtures["casme2"].annotation_path, "casme2")
    assert {r.clip_id: r.aus for r in rep.records}["sub03/EP07_01"] == ()


def _user_list(path, entry):
    path.write_text(f"dataset: mine\nversion: 1\ncorrections:\n  - {{{entry}, reason: test}}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("subject", ["'006'", "6", "006"])
def test_user_corrections_unquoted_names(fixtures, tmp_path, subject):
    """YAML reads unquoted 006_1_3 as 395 and 006 as 6: the written text is kept."""
    y = _user_list(
        tmp_path / "mine.yaml", f"subject: {subject}, video: 006_1_3, field: offset, original: 110, corrected: 109"
    )
    rep = read_annotations(fixtures["samm"].annotation_path, "samm", corrections=y)
    r = next(r for r in rep.records if r.video == "006_1_3")
    assert (r.offset, [(c.field, c.original, c.corrected) for c in r.corrections]) == (109, [("offset", 110, 109)])
    assert type(r.corrections[0].original) is int and rep.unmatched_corrections == []


@pytest.mark.parametrize("subject", ["sub01", "1", "'01'"])
def test_user_corrections_subject_normalised(fixtures, tmp_path, subject):
    y = _user_list(
        tmp_path / "mine.yaml", f"subject: {subject}, video: EP03_02, field: offset, original: 15, corrected: 14"
    )
    rep = read_annotations(fixtures["casme2"].annotation_path, "casme2", corrections=y)
    assert next(r for r in rep.records if r.video == "EP03_02").offset == 14


def test_user_corrections_refused_and_unmatched(fixtures, tmp_path):
    from gamdss.data.datasets.corrections import parse_corrections

    y = _user_list(tmp_path / "bad.yaml", "subject: 6, video: 1.5, field: offset, original: 1, corrected: 2")
    with pytest.raises(ValueError, match=r"bad.yaml: entry 1 has video 1.5 .*quote it"):
        read_annotations(fixtures["samm"].annotation_path, "samm", corrections=y)
    # an already-loaded list whose video YAML turned into a number cannot be trusted
    with pytest.raises(ValueError, match=r"x.yaml: entry 1 has video 395"):
        parse_corrections(
            {
                "corrections": [
                    {"subject": 6, "video": 395, "field": "offset", "original": 1, "corrected": 2, "reason": "r"}
                ]
            },
            "x.yaml",
        )
    y = tmp_path / "mine.yaml"
    y.write_text(
        "dataset: mine\nversion: 2\ncorrections:\n"
        "  - {subject: 6, video: '006_1_3', field: offset, original: 111, corrected: 109, reason: a}\n"
        "  - {subject: 6, video: '006_9_9', field: offset, original: 110, corrected: 109, reason: b}\n"
        "  - {subject: 7, video: '007_3_1', field: apex, original: 25, corrected: 24, reason: c}\n",
        encoding="utf-8",
    )
    rep = read_annotations(fixtures["samm"].annotation_path, "samm", corrections=y)
    got = [(u.entry.video, u.entry.source, u.reason) for u in rep.unmatched_corrections]
    assert got == [
        ("006_1_3", "mine-corrections v2", "row 16: offset is 110, not 111"),
        ("006_9_9", "mine-corrections v2", "no row with subject '006' and filename '006_9_9'"),
    ]
    assert next(r for r in rep.records if r.video == "007_3_1").apex == 24


def test_mmew_emotion_correction_keeps_frame_folder(fixtures, tmp_path):
    info = fixtures["mmew"]
    y = _user_list(
        tmp_path / "mine.yaml",
        "subject: S01, video: S01-01-001, field: emotion, original: happiness, corrected: surprise",
    )
    rep = scan_dataset(info.root, "mmew", corrections=y)
    clip = next(c for c in rep.clips if c.clip_id == "S01/S01-01-001")
    assert clip.emotion == "surprise" and clip.frame_paths[0].parent.parent.name == "Happiness"
    assert [c.clip_id for c in rep.clips] == info.clip_ids


def test_mmew_clip_in_another_emotion_folder(tmp_path):
    import numpy as np
    from PIL import Image

    d = tmp_path / "Micro_Expression" / "fear" / "S02-04-001"
    d.mkdir(parents=True)
    for n in range(1, 8):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(d / f"{n}.jpg")
    (tmp_path / "MMEW_Micro_Exp.csv").write_text(
        "Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Estimated Emotion\n"
        "2,S02-04-001,1,3,6,4,disgust\n",
        encoding="utf-8",
    )
    rep = scan_dataset(tmp_path, "mmew", annotations=tmp_path / "MMEW_Micro_Exp.csv")
    assert rep.skipped == [] and rep.clips[0].frame_paths[0].parent == d


def test_a_corrections_list_of_another_dataset_is_refused(fixtures, tmp_path):
    """A list that declares it is for SAMM is not applied to CASME II (its subject and video
    names could match rows by chance); a list named otherwise (``dataset: mine``) applies."""
    entry = "  - {subject: '01', video: EP03_02, field: offset, original: 15, corrected: 14, reason: r}\n"
    samm = tmp_path / "samm-list.yaml"
    samm.write_text("dataset: SAMM\nversion: 1\ncorrections:\n" + entry, encoding="utf-8")
    with pytest.raises(ValueError, match=r"samm-list.yaml is for dataset samm, not casme2"):
        read_annotations(fixtures["casme2"].annotation_path, "casme2", corrections=samm)
    mine = tmp_path / "mine.yaml"
    mine.write_text("dataset: mine\nversion: 1\ncorrections:\n" + entry, encoding="utf-8")
    rep = read_annotations(fixtures["casme2"].annotation_path, "casme2", corrections=mine)
    assert next(r for r in rep.records if r.video == "EP03_02").offset == 14


def test_casme_sq_records_with_stimulus_codes_are_not_written_to_a_csv(tmp_path):
    """A CSV has no ``naming rule2`` sheet: the codes were dropped, and the written file read
    back to records whose clip folders could not be found (``s15/disgust1_1`` for ``15_0101``)."""
    rows = [[1, "disgust1_1", 10, 12, 15, "4", "negative", "micro-expression", None]]
    path = tmp_path / "CAS(ME)^2code_final.xlsx"
    _xlsx(path, {"CASFEcode_final": rows, "naming rule2": [[101, "disgust1"]]})
    records = read_annotations(path, "casme_sq").records
    ds = get_dataset("casme_sq")
    assert ds.clip_rel(records[0]) == ("s01", "1_0101")
    with pytest.raises(ValueError, match=r"out\.csv: .*'naming rule2'.*write \.xlsx"):
        ds.write_annotations(records, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    back = read_annotations(ds.write_annotations(records, tmp_path / "out.xlsx"), "casme_sq").records
    assert [ds.clip_rel(r) for r in back] == [("s01", "1_0101")]
    # records without codes still go to a CSV
    plain = [type(r)(**{**r.__dict__, "meta": {}}) for r in records]
    assert ds.write_annotations(plain, tmp_path / "plain.csv").exists()
