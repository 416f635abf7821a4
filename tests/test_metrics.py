"""Pooled ACC / UF1 / UAR against hand-computed confusion matrices and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from gamdss.train.metrics import confusion_matrix, pooled_metrics, released_fold_f1


def test_confusion_matrix_hand_counted():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.dtype == np.int64


def test_hand_computed_three_classes():
    # true 0 0 0 1 1 2 ; pred 0 0 1 1 2 2
    # class 0: TP 2, FN 1, FP 0 -> P 1, R 2/3, F1 4/5
    # class 1: TP 1, FN 1, FP 1 -> P 1/2, R 1/2, F1 1/2
    # class 2: TP 1, FN 0, FP 1 -> P 1/2, R 1, F1 2/3
    m = pooled_metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], 3)
    assert m["acc"] == pytest.approx(4 / 6)
    assert m["uf1"] == pytest.approx((4 / 5 + 1 / 2 + 2 / 3) / 3)
    assert m["uar"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["macro_precision"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)
    assert m["absent_classes"] == []
    assert [r["support"] for r in m["per_class"]] == [3, 2, 1]
    assert [r["predicted"] for r in m["per_class"]] == [2, 2, 2]


def test_class_absent_from_one_fold_counts_once_pooled():
    # Fold A has no class-2 sample; fold B has no class-0 sample. Pooled, every class is present.
    fold_a = ([0, 0, 1], [0, 1, 1])
    fold_b = ([1, 2, 2], [1, 2, 0])
    y_true = fold_a[0] + fold_b[0]
    y_pred = fold_a[1] + fold_b[1]
    m = pooled_metrics(y_true, y_pred, 3)
    # pooled cm: [[1,1,0],[0,2,0],[1,0,1]]
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    f1 = [2 * 1 / (2 + 2), 2 * 2 / (2 + 3), 2 * 1 / (2 + 1)]
    assert m["uf1"] == pytest.approx(sum(f1) / 3)
    assert m["uar"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    # pooling differs from averaging the per-fold UF1s (a different, non-comparable number)
    per_fold = np.mean([pooled_metrics(*fold_a, 3)["uf1"], pooled_metrics(*fold_b, 3)["uf1"]])
    assert per_fold != pytest.approx(m["uf1"])


def test_class_absent_from_both_arrays_is_excluded_and_reported():
    # 4 classes, class 3 never true and never predicted
    m = pooled_metrics([0, 1, 2, 2], [0, 1, 2, 1], 4, class_names=["a", "b", "c", "d"])
    assert m["absent_classes"] == [3]
    assert m["present_classes"] == [0, 1, 2]
    assert m["uf1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["uar"] == pytest.approx((1 + 1 + 1 / 2) / 3)
    assert m["per_class"][3]["name"] == "d" and not m["per_class"][3]["present"]


def test_class_only_predicted_counts_with_zero_recall():
    m = pooled_metrics([0, 0, 1], [0, 2, 1], 3)
    assert m["absent_classes"] == []
    assert m["per_class"][2]["recall"] == 0.0 and m["per_class"][2]["f1"] == 0.0
    assert m["uar"] == pytest.approx((1 / 2 + 1 + 0) / 3)


@pytest.mark.parametrize("seed", range(5))
def test_equals_sklearn_macro_on_pooled_arrays(seed):
    rng = np.random.default_rng(seed)
    c = 5
    y_true = rng.integers(0, c - 1, 60)  # class 4 rarely or never true
    y_pred = np.where(rng.random(60) < 0.6, y_true, rng.integers(0, c, 60))
    m = pooled_metrics(y_true, y_pred, c)
    labels = m["present_classes"]
    assert m["uf1"] == pytest.approx(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    assert m["uar"] == pytest.approx(recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    assert m["macro_precision"] == pytest.approx(
        precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    assert m["acc"] == pytest.approx(np.mean(y_true == y_pred))


def test_uar_is_recall_not_the_released_codes_precision():
    # A model that predicts class 0 for everything uncertain: high precision on class 1 and 2,
    # low recall. The released code's "UAR" (TP / #predicted) would report the precision.
    y_true = [0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 0, 1, 0, 0, 0, 2, 0, 0, 0]
    m = pooled_metrics(y_true, y_pred, 3)
    assert m["uar"] == pytest.approx((1 + 1 / 4 + 1 / 4) / 3)  # 0.5
    assert m["macro_precision"] == pytest.approx((2 / 8 + 1 + 1) / 3)  # 0.75
    assert m["uar"] != pytest.approx(m["macro_precision"])


def test_released_fold_f1_averages_classes_of_the_fold():
    cm = confusion_matrix([0, 0, 1], [0, 0, 1], 5)
    assert released_fold_f1(cm) == 1.0


@pytest.mark.parametrize(
    "bad, msg",
    [
        (([0, 3], [0, 1]), "y_true holds class id 3"),
        (([0, 1], [0, -1]), "y_pred holds class id -1"),
        (([0, 1], [0]), "2 labels but y_pred has 1"),
    ],
)
def test_bad_input_names_the_argument(bad, msg):
    with pytest.raises(ValueError, match=msg):
        pooled_metrics(*bad, 3)
