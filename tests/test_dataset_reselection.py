"""Reselection over a frame cache: against the pure-PyTorch reference on whole clips,
batching, CSV round trip and frame-number conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gamdss.op.reference
from cache_fixtures import first_frame_number, fixture_truth, make_cache
from gamdss.data.cache import CacheEntry, CacheWriter, FrameCache, write_clip_file
from gamdss.data.reselection_files import check_against_cache, load_reselection, recorded_settings, save_reselection
from gamdss.data.reselection_record import ClipReselection, frame_numbers
from gamdss.reselection.run import _batches, _spans, reselect_cache
from gamdss.settings.reselection import ReselectionSettings


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("cache") / "c", n_clips=6, seed=3)


@pytest.mark.parametrize(
    "window,distance", [("paper", "l2"), ("symmetric", "centered"), ("released", "released_uint8")]
)
def test_equals_reference_on_whole_clips(cache, window, distance):
    got = reselect_cache(
        cache, ReselectionSettings(window=window, lam_rise=0.3, lam_fall=0.4, distance=distance), progress=False
    )
    assert [r.clip_id for r in got] == [e.clip_id for e in cache.entries]
    for r, e in zip(got, cache.entries):
        clip = torch.from_numpy(np.array(cache.frames(e)))
        ref = gamdss.op.reference.reselect(
            [clip],
            [e.onset_index],
            [e.apex_index],
            [e.offset_index],
            lam_rise=0.3,
            lam_fall=0.4,
            window=window,
            distance=distance,
        )
        assert r.annotated == (e.onset_index, e.apex_index, e.offset_index)
        assert r.reselected == (int(ref.onset[0]), int(ref.apex[0]), int(ref.offset[0]))
        assert r.rise_distance == float(ref.rise_distance[0])
        assert r.fall_distance == float(ref.fall_distance[0])


def test_recovers_true_apex_inside_window(cache):
    truth = fixture_truth(cache)
    got = reselect_cache(cache, ReselectionSettings(lam_rise=0.3, lam_fall=0.3), progress=False)
    checked = 0
    for r in got:
        o, a, f = r.annotated
        reach = int(0.3 * (a - o))
        if abs(truth[r.clip_id][1] - a) <= reach:
            assert r.reselected[1] == truth[r.clip_id][1], r
            checked += 1
    assert checked >= 3


def test_lambda_zero_keeps_annotation(cache):
    got = reselect_cache(cache, ReselectionSettings(lam_rise=0.0, lam_fall=0.0), progress=False)
    assert all(r.reselected == r.annotated and not r.moved for r in got)


def test_small_batches_give_the_same_results(cache):
    one = reselect_cache(cache, ReselectionSettings(lam_rise=0.3, lam_fall=0.3), progress=False)
    frame = 32 * 32 * 3
    for limit in (1, 5 * frame, 40 * frame):
        assert (
            reselect_cache(
                cache, ReselectionSettings(lam_rise=0.3, lam_fall=0.3), progress=False, max_batch_bytes=limit
            )
            == one
        )


@pytest.mark.parametrize("limit_frames", [None, 7, 40])
def test_each_clip_as_if_reselected_alone_from_all_its_frames(cache, limit_frames):
    """Oracle: the float64 reference on each whole clip by itself. reselect_cache reads only
    the frames the windows reach, packs clips of different spans into padded batches (the
    frames past a span left unset) and shifts the indices back: none of it may show."""
    settings = ReselectionSettings(lam_rise=0.3, lam_fall=0.3)
    limit = {} if limit_frames is None else {"max_batch_bytes": limit_frames * 32 * 32 * 3}
    got = reselect_cache(cache, settings, progress=False, **limit)
    assert [r.clip_id for r in got] == [e.clip_id for e in cache.entries]
    assert len({last - first for first, last in _spans(cache.entries, settings)}) > 1  # padding is exercised
    for r in got:
        entry = cache[r.clip_id]
        frames = torch.from_numpy(np.array(cache.frames(entry)))
        o, a, f = r.annotated
        want = gamdss.op.reference.reselect([frames], [o], [a], [f], lam_rise=0.3, lam_fall=0.3)
        assert r.reselected == (int(want.onset[0]), int(want.apex[0]), int(want.offset[0])), r.clip_id
        assert r.rise_distance == pytest.approx(float(want.rise_distance[0]), rel=1e-12)
        assert r.fall_distance == pytest.approx(float(want.fall_distance[0]), rel=1e-12)


def test_batch_grouping():
    # (span frames, bytes per frame); a padded batch costs clips x longest span x bytes.
    sizes = [(10, 1), (10, 1), (10, 1), (30, 1), (5, 1)]
    assert _batches(sizes, 30) == [[0, 1, 2], [3], [4]]
    assert _batches(sizes, 60) == [[0, 1, 2], [3, 4]]  # 4 x 30 = 120 > 60; then 2 x 30 = 60 fits
    assert _batches(sizes, 1000) == [[0, 1, 2, 3, 4]]
    assert _batches([(50, 1)], 10) == [[0]]  # a clip over the limit goes alone
    assert _batches([], 10) == []


def test_batch_grouping_pairs_under_limit():
    assert _batches([(10, 1), (30, 1), (5, 1)], 60) == [[0, 1], [2]]


def test_subset_in_cache_order_and_unknown_id(cache):
    ids = [e.clip_id for e in cache.entries]
    got = reselect_cache(cache, ReselectionSettings(), clip_ids=[ids[4], ids[1]], progress=False)
    assert [r.clip_id for r in got] == [ids[1], ids[4]]
    with pytest.raises(KeyError, match="nope"):
        reselect_cache(cache, ReselectionSettings(), clip_ids=["nope"], progress=False)
    assert reselect_cache(cache, ReselectionSettings(), clip_ids=[], progress=False) == []


def test_frame_numbers_by_hand(cache):
    e = next(e for e in cache.entries if e.clip_id.endswith("/EP02"))  # the fixture's clip 2
    first = first_frame_number(2)  # 307
    assert frame_numbers(e, (0, 3, 29)) == (first, first + 3, first + 29)
    assert frame_numbers(e, (e.onset_index, e.apex_index, e.offset_index)) == (e.onset, e.apex, e.offset)
    with pytest.raises(IndexError, match=e.clip_id):
        frame_numbers(e, (30,))


def test_csv_round_trip(cache, tmp_path):
    got = reselect_cache(cache, ReselectionSettings(lam_rise=0.3, lam_fall=0.3), progress=False)
    path = save_reselection(got, tmp_path / "r.csv")
    assert load_reselection(path) == got
    rich = save_reselection(got, tmp_path / "rich.csv", cache=cache)
    assert load_reselection(rich) == got
    with pytest.raises(FileExistsError):
        save_reselection(got, path)
    save_reselection(got[:1], path, overwrite=True)
    assert load_reselection(path) == got[:1]


def test_results_chosen_on_pixels_the_cache_no_longer_holds_are_refused(tmp_path):
    """Preprocessed again (other pixels, the same keyframes): the old results file names the
    clip instead of steering training to frames picked on pixels that are gone. A file without
    the checksum column (written before it existed, or without the cache) is still read."""
    import dataclasses

    from gamdss.data.cache import file_stamp

    cache = make_cache(tmp_path / "c", n_clips=3, size=16)
    got = reselect_cache(cache, ReselectionSettings(), progress=False)
    rich = save_reselection(got, tmp_path / "rich.csv", cache=cache)
    plain = save_reselection(got, tmp_path / "plain.csv")
    assert [r.clip_sha256 for r in load_reselection(rich)] == [cache[r.clip_id].sha256 for r in got]
    check_against_cache(load_reselection(rich), cache)

    writer = CacheWriter(cache.root, cache.header)
    redone = cache.entries[1]
    pixels = np.random.default_rng(1).integers(0, 256, size=redone.shape, dtype=np.uint8)
    rel, digest = write_clip_file(cache.root, redone.clip_id, pixels)
    writer.add(dataclasses.replace(redone, sha256=digest, **file_stamp(cache.root / rel)))
    writer.flush()
    again = FrameCache(cache.root)
    with pytest.raises(ValueError, match=rf"rich\.csv: clip '{redone.clip_id}' was reselected on other pixels"):
        check_against_cache(load_reselection(rich), again, str(rich))
    check_against_cache(load_reselection(plain), again)  # nothing recorded to compare


def test_bad_csv_names_file_and_line(tmp_path):
    r = ClipReselection("a/b", (1, 2, 3), (1, 2, 4), 1.5, 2.5)
    path = save_reselection([r], tmp_path / "r.csv")
    text = path.read_text().replace(",4,", ",x,")
    path.write_text(text)
    with pytest.raises(ValueError, match=r"r\.csv, line 2 \(clip 'a/b'\)"):
        load_reselection(path)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a reselection results file"):
        load_reselection(tmp_path / "other.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00clip_id")
    with pytest.raises(ValueError, match=r"binary\.csv: not a reselection results file \(not UTF-8 text"):
        load_reselection(tmp_path / "binary.csv")
    with pytest.raises(ValueError, match=r"binary\.csv: not a reselection results file \(not UTF-8 text"):
        recorded_settings(tmp_path / "binary.csv")


@pytest.mark.parametrize(
    "onset, apex, offset, message",
    [
        # a keyframe outside the clip's frames: the manifest itself is refused, naming the clip
        (10, 12, 40, r"clip 0 \(s1/bad\) is not a valid entry \(offset 40 is not one of its frame numbers"),
        # keyframes among the frames but out of order: the reselection refuses, naming the clip
        (15, 12, 16, r"clip s1/bad: onset=5, apex=2, offset=6 violates 0 <= onset <= apex <= offset"),
    ],
)
def test_an_impossible_annotation_names_the_clip(tmp_path, onset, apex, offset, message):
    frames = np.zeros((8, 4, 4, 3), np.uint8)
    writer = CacheWriter(tmp_path, {"dataset": "casme2"})
    rel, digest = write_clip_file(tmp_path, "s1/bad", frames)
    writer.add(
        CacheEntry(
            clip_id="s1/bad",
            dataset="casme2",
            subject="s1",
            video="bad",
            emotion="x",
            aus=[],
            fps=200.0,
            row=2,
            frame_numbers=list(range(10, 18)),
            onset=onset,
            apex=apex,
            offset=offset,
            file=rel,
            shape=[8, 4, 4, 3],
            sha256=digest,
            sources=[],
            box=None,
            face_prob=None,
            box_method="fixture",
        )
    )
    writer.flush()
    with pytest.raises(ValueError, match=message):
        reselect_cache(FrameCache(tmp_path), ReselectionSettings(), progress=False)


@pytest.mark.parametrize(
    "field, value, kind",
    [
        ("frame_numbers", 5, "integer list"),
        ("fps", "fast", "number"),
        ("onset", "7", "integer"),
        ("shape", "abc", "integer list"),
        ("clip_id", 3, "text"),
        ("meta", ["ethnicity", "A"], "text map"),
        ("meta", {"ethnicity": 3}, "text map"),
        ("corrections", "none", "object list"),
        ("corrections", ["onset 40"], "object list"),
        ("box", [1, "2", 3, 4], "number list or null"),
        ("face_prob", "high", "number or null"),
        ("file_size", 1.5, "integer or null"),
        ("source_modes", {"RGB": "40"}, "integer map"),
        ("repaired_frames", {"frame": 3}, "object list"),
        ("mixed_mode_frames", [3], "object list"),
    ],
)
def test_a_manifest_field_of_the_wrong_type_is_one_line_naming_it(tmp_path, field, value, kind):
    import json

    cache = make_cache(tmp_path / "cache", n_clips=2)
    path = cache.root / "manifest.json"
    data = json.loads(path.read_text())
    data["clips"][1][field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as info:
        FrameCache(cache.root)
    message = str(info.value)
    assert "\n" not in message and f"field '{field}'" in message and f"expected {kind}" in message
    assert "clip 1" in message and str(path) in message


def test_a_manifest_correction_without_its_keys_is_one_line_naming_it(tmp_path):
    import json

    cache = make_cache(tmp_path / "cache", n_clips=2)
    path = cache.root / "manifest.json"
    data = json.loads(path.read_text())
    data["clips"][0]["corrections"] = [{"field": "onset", "original": 41}]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as info:
        FrameCache(cache.root)
    message = str(info.value)
    assert "\n" not in message and "a correction has the keys" in message and "clip 0" in message


def test_results_with_keyframes_out_of_order_are_refused(tmp_path):
    """An edited results file with its apex before its onset was accepted: training read an
    apex before the onset, and the exported annotation file lost the clip when read back."""
    import dataclasses

    cache = make_cache(tmp_path / "c", n_clips=3, size=16)
    got = reselect_cache(cache, ReselectionSettings(), progress=False)
    check_against_cache(got, cache)
    assert cache[got[1].clip_id].num_frames >= 4
    for bad in ((2, 1, 3), (1, 3, 2), (3, 2, 1)):  # apex before onset; offset before apex; both
        edited = [*got[:1], dataclasses.replace(got[1], reselected=bad), *got[2:]]
        with pytest.raises(ValueError, match=rf"clip '{got[1].clip_id}' reselected indices .* not in order"):
            check_against_cache(edited, cache, "edited.csv")
