"""Label mappings, LOSO splits and per-protocol counts against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from dataset_fixtures import FIXTURE_NAMES, make_fixture
from gamdss.data import read_annotations
from gamdss.data.protocols import PROTOCOLS, get_protocol, loso_folds, protocol_counts, protocols_for
from gamdss.data.records import AnnotationRecord


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    base = tmp_path_factory.mktemp("protocol_datasets")
    return {n: make_fixture(n, base / n) for n in FIXTURE_NAMES}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_counts_match_hand_computed(fixtures, name):
    info = fixtures[name]
    records = read_annotations(info.annotation_path, name).records
    assert info.counts, name
    for proto, expected in info.counts.items():
        got = protocol_counts(proto, records)
        assert got["classes"] == expected["classes"], proto
        assert (got["samples"], got["subjects"]) == (expected["samples"], expected["subjects"]), proto
    assert {p.name for p in protocols_for(name)} == set(info.counts)


def test_dropped_counts(fixtures):
    recs = read_annotations(fixtures["casme2"].annotation_path, "casme2").records
    assert protocol_counts("casme2-5", recs)["dropped"] == {"fear": 1, "sadness": 1}
    assert protocol_counts("megc2019", recs)["dropped"] == {"fear": 1, "others": 1, "sadness": 1}
    sq = read_annotations(fixtures["casme_sq"].annotation_path, "casme_sq").records
    assert protocol_counts("casme_sq-native", sq)["dropped"] == {"macro-expression": 1}


def test_label_indices_follow_released_order():
    p = get_protocol("casme2-5")
    assert [p.label_of("casme2", e) for e in ("happiness", "repression", "disgust", "surprise", "others")] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert p.label_of("casme2", "fear") is None and p.label_of("samm", "happiness") is None
    assert get_protocol("casme2-3").label_of("casme2", "Sadness") == 2
    assert get_protocol("casme2-3").label_of("casme2", "others") is None
    s5 = get_protocol("samm-5")
    assert [s5.label_of("samm", e) for e in ("Anger", "Contempt", "Happiness", "Surprise", "Other", "Others")] == [
        0,
        1,
        2,
        3,
        4,
        4,
    ]
    assert s5.label_of("samm", "Disgust") is None
    assert get_protocol("samm-3").label_of("samm", "Other") is None
    assert get_protocol("samm-3").label_of("samm", "Contempt") == 2
    c7 = get_protocol("casme3-7")
    assert [
        c7.label_of("casme3", e) for e in ("anger", "disgust", "fear", "happy", "sad", "surprise", "Others")
    ] == list(range(7))
    c4 = get_protocol("casme3-4")
    assert [c4.label_of("casme3", e) for e in ("happy", "surprise", "others", "sad")] == [0, 1, 2, 3]
    assert get_protocol("casme3-3").label_of("casme3", "others") is None
    m = get_protocol("megc2019")
    assert m.classes == ("negative", "positive", "surprise")
    assert (m.label_of("casme2", "repression"), m.label_of("samm", "contempt"), m.label_of("smic", "Positive")) == (
        0,
        0,
        1,
    )
    assert m.label_of("casme2", "fear") is None and m.label_of("samm", "other") is None
    sq = get_protocol("casme_sq-native")
    assert sq.label_of("casme_sq", "negative", {"expression_type": "macro-expression"}) is None
    assert sq.label_of("casme_sq", "negative", {"expression_type": "micro-expression"}) == 1


def test_registry():
    expected = {
        "casme2-5",
        "casme2-3",
        "samm-5",
        "samm-3",
        "casme3-7",
        "casme3-4",
        "casme3-3",
        "megc2019",
        "casme-native",
        "casme_sq-native",
        "mmew-native",
        "4dme-native",
        "casme2-native",
        "samm-native",
        "casme3-native",
    }
    assert set(PROTOCOLS) == expected
    with pytest.raises(ValueError, match="known protocols"):
        get_protocol("synthetic")


def _rec(dataset, subject, emotion, i):
    return AnnotationRecord(dataset, subject, f"{subject}/c{i}", f"c{i}", 1, 2, 3, emotion, (), 100.0, i + 2)


def test_megc_composite_with_smic_and_prefixed_subjects():
    recs = [
        _rec("casme2", "sub01", "happiness", 0),
        _rec("samm", "006", "anger", 1),
        _rec("smic", "s1", "negative", 2),
        _rec("smic", "s1", "surprise", 3),
        _rec("casme2", "sub01", "others", 4),
        _rec("mmew", "S01", "happiness", 5),
        _rec("samm", "sub01", "surprise", 6),
    ]
    c = protocol_counts("megc2019", recs)
    assert c["classes"] == {"negative": 2, "positive": 1, "surprise": 2}
    # casme2_sub01, samm_006, smic_s1, samm_sub01: equal subject names of two datasets stay apart
    assert c["subjects"] == 4 and c["per_dataset"] == {"casme2": 1, "samm": 2, "smic": 2}
    assert c["dropped"] == {"others": 1}
    assert get_protocol("megc2019").subject_key("casme2", "sub01") == "casme2_sub01"


def test_loso_folds():
    keys = ["samm_007", "casme2_sub02", "samm_007", "casme2_sub01", "casme2_sub02"]
    folds = loso_folds(keys)
    assert [f[0] for f in folds] == ["casme2_sub01", "casme2_sub02", "samm_007"]
    assert folds[1][2].tolist() == [1, 4] and folds[1][1].tolist() == [0, 2, 3]
    for _, train, test in folds:
        assert train.dtype == np.int64 and sorted(train.tolist() + test.tolist()) == list(range(len(keys)))
        assert not {keys[i] for i in train} & {keys[i] for i in test}
    assert sum(len(t) for _, _, t in folds) == len(keys)
    assert loso_folds([]) == []


def test_megc2019_excludes_meb_casme2_clips_and_reports_missing_datasets():
    p = get_protocol("megc2019")
    recs = [
        AnnotationRecord("casme2", s, f"{s}/{v}", v, 1, 2, 3, e, (), 200.0, i + 2)
        for i, (s, v, e) in enumerate(
            [
                ("sub04", "EP12_01f", "disgust"),
                ("sub05", "EP12_03f", "disgust"),
                ("sub24", "EP02_07", "happiness"),
                ("sub01", "EP02_01f", "happiness"),
                ("sub04", "EP12_02f", "disgust"),
            ]
        )
    ]
    c = protocol_counts(p, recs)
    assert c["classes"] == {"negative": 1, "positive": 1, "surprise": 0}
    assert c["dropped"] == {"excluded": 3} and c["subjects"] == 2
    assert c["missing_datasets"] == ["samm", "smic"]
    assert [p.sample_label(r.dataset, r.clip_id, r.emotion) for r in recs] == [None, None, None, 1, 0]
    # label_of stays per emotion; the exclusion is per clip and per dataset
    assert p.label_of("casme2", "disgust") == 0 and not p.excludes("samm", "sub04/EP12_01f")
    assert protocol_counts("casme2-3", recs)["missing_datasets"] == []
    assert protocol_counts("casme2-3", recs)["samples"] == 5
