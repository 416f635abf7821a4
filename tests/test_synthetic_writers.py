"""Synthetic datasets written in the CASME II and SAMM layouts round-trip through the real
readers: every clip is found with the annotated keyframes, ground_truth.csv holds the truth."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from gamdss.data import scan_dataset
from gamdss.data.synthetic import SyntheticConfig, emotion_for_dataset, make_dataset, read_ground_truth, write_dataset

CFG = SyntheticConfig(
    size=(40, 40),
    fps=200,
    rise_ms=(20, 40),
    fall_ms=(30, 50),
    pad_before_ms=(15, 25),
    pad_after_ms=(15, 25),
    jpeg_quality=None,
)


@pytest.fixture(scope="module")
def samples():
    emotions = ("happiness", "anger", "repression", "surprise")
    return make_dataset(
        CFG, n_subjects=2, clips_per_subject=2, seed=3, bias="multicultural", emotions=emotions, progress=False
    )


def _check_round_trip(root, layout, samples):
    report = scan_dataset(root, layout)
    assert report.skipped == [] and report.annotations.skipped == []
    assert len(report.clips) == len(samples)
    truth = read_ground_truth(root)
    assert set(truth) == {c.clip_id for c in report.clips}
    by_sample = {s.clip_id: s for s in samples}
    for clip in report.clips:
        gt = truth[clip.clip_id]
        s = by_sample[gt.sample_id]
        first = gt.first_frame
        assert first >= 1  # absolute dataset frame numbers, not 0-based
        # the spreadsheet holds the annotated keyframes, ground_truth.csv the true ones
        assert (clip.onset, clip.apex, clip.offset) == tuple(first + v for v in s.annotated) == gt.annotated
        assert gt.truth == tuple(first + v for v in s.truth)
        assert clip.emotion == emotion_for_dataset(s.clip.emotion, layout) == gt.emotion
        assert clip.aus == s.clip.aus and clip.fps == 200.0
        # every frame of the clip is on disk with consecutive numbers; the reader's span covers
        # the annotation plus its margin, within the frames written
        assert gt.last_frame - gt.first_frame + 1 == len(s.clip)
        assert list(clip.frame_numbers) == list(range(clip.frame_numbers[0], clip.frame_numbers[-1] + 1))
        assert first <= clip.frame_numbers[0] <= clip.onset and clip.offset <= clip.frame_numbers[-1] <= gt.last_frame
        # the frame on disk at the true apex is the generated apex frame: of all generated
        # frames, it is the closest to it in luma (JPEG q95 on top; sensor noise makes frames unique)
        img = cv2.imread(str(clip.frame_paths[clip.index_of(gt.true_apex)]), cv2.IMREAD_UNCHANGED)
        if layout == "samm":
            assert img.ndim == 2  # SAMM is grey
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        luma = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in s.clip.frames.numpy()]).astype(float)
        err = np.abs(luma - img.astype(float)).mean(axis=(1, 2))
        assert int(np.argmin(err)) == s.truth[1] and err.min() < 2.0
    return report


def test_casme2_layout_round_trip(tmp_path, samples):
    root = write_dataset(samples, tmp_path / "casme2", "casme2", progress=False)
    assert (root / "CASME2-coding-20190701.xlsx").is_file() and (root / "synthetic_config.yaml").is_file()
    report = _check_round_trip(root, "casme2", samples)
    clip = report.clips[0]
    rel = clip.frame_paths[0].relative_to(root)
    assert rel.parts[:3] == ("CASME2_RAW_selected", "sub01", "EP01_01")
    assert rel.name == f"img{clip.frame_numbers[0]}.jpg"
    assert SyntheticConfig.load(root / "synthetic_config.yaml") == CFG


def test_samm_layout_round_trip(tmp_path, samples):
    root = write_dataset(samples, tmp_path / "samm", "samm", progress=False)
    report = _check_round_trip(root, "samm", samples)
    rel = report.clips[0].frame_paths[0].relative_to(root)
    assert rel.parts[:3] == ("SAMM", "006", "006_1_1")
    assert rel.name == f"006_{report.clips[0].frame_numbers[0]:05d}.jpg"
    emotions = {c.emotion for c in report.clips}
    assert emotions <= {"happiness", "anger", "other", "surprise"} and "other" in emotions


def test_ground_truth_csv_columns(tmp_path, samples):
    root = write_dataset(samples, tmp_path / "d", "casme2", progress=False)
    with open(root / "ground_truth.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(samples)
    for row, s in zip(rows, samples):
        first = int(row["first_frame"])
        assert [int(row[k]) - first for k in ("true_onset", "true_apex", "true_offset")] == list(s.truth)
        annotated = [int(row[k]) - first for k in ("annotated_onset", "annotated_apex", "annotated_offset")]
        assert annotated == list(s.annotated)
        assert row["bias"] == "multicultural" and float(row["fps"]) == 200.0 and row["sample_id"] == s.clip_id


def test_refuses_to_overwrite_and_overwrite_replaces_clips(tmp_path, samples):
    root = write_dataset(samples, tmp_path / "d", "casme2", progress=False)
    with pytest.raises(FileExistsError, match="not empty"):
        write_dataset(samples, root, "casme2", progress=False)
    # a different dataset over the old one: stale frames of the old clips must not survive
    other = make_dataset(CFG, n_subjects=2, clips_per_subject=2, seed=4, bias="none", progress=False)
    write_dataset(other, root, "casme2", overwrite=True, progress=False)
    report = _check_round_trip(root, "casme2", other)
    for clip in report.clips:
        n_on_disk = len(list(clip.frame_paths[0].parent.iterdir()))
        gt = read_ground_truth(root)[clip.clip_id]
        assert n_on_disk == gt.last_frame - gt.first_frame + 1


def test_rejects_wrong_fps_and_layout(tmp_path):
    at_90 = make_dataset(CFG.replace(fps=90), n_subjects=1, clips_per_subject=1, seed=0, progress=False)
    with pytest.raises(ValueError, match="s01_01.*90 fps"):
        write_dataset(at_90, tmp_path / "x", "casme2", progress=False)
    with pytest.raises(ValueError, match="layout"):
        write_dataset(at_90, tmp_path / "x", "smic", progress=False)
