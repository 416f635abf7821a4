"""Classification metrics of micro-expression recognition, pooled over LOSO folds.

The MEGC definitions: predictions of all folds are concatenated first, then

- ``acc`` = correct / samples,
- ``uf1`` = mean over classes of F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c) (macro F1),
- ``uar`` = mean over classes of recall_c = TP_c / N_c (macro recall, the real one).

Classes that occur in neither ``y_true`` nor ``y_pred`` are left out of the means and listed
under ``absent_classes``; a class that is only predicted (never true) counts with recall 0 and
F1 0. ``macro_precision`` is reported too because the released GAMDSS code prints it under the
name "UAR" (TP / #predicted); it is not UAR. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _as_labels(y: Sequence[int] | np.ndarray, num_classes: int, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {list(arr.shape)}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= num_classes)]
    if bad.size:
        raise ValueError(
            f"{name} holds class id {int(bad[0])} outside [0, {num_classes - 1}] (num_classes={num_classes})"
        )
    return arr


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int
) -> np.ndarray:
    """Counts ``cm[t, p]`` of samples with true class ``t`` predicted as ``p``: int64 [C, C]."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    t = _as_labels(y_true, num_classes, "y_true")
    p = _as_labels(y_pred, num_classes, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    return (
        np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
        .reshape(num_classes, num_classes)
        .astype(np.int64)
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def per_class_report(cm: np.ndarray, class_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per class of confusion matrix ``cm`` [C, C]: ``class``, ``name``, ``support``
    (true count), ``predicted`` (predicted count), ``tp``, ``precision``, ``recall``, ``f1``
    (fractions; 0 where undefined) and ``present`` (true or predicted at least once)."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    names = list(class_names) if class_names is not None else [str(c) for c in range(len(cm))]
    if len(names) != len(cm):
        raise ValueError(f"{len(names)} class names for {len(cm)} classes")
    return [
        {
            "class": c,
            "name": names[c],
            "support": int(support[c]),
            "predicted": int(predicted[c]),
            "tp": int(tp[c]),
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "present": bool(support[c] + predicted[c] > 0),
        }
        for c in range(len(cm))
    ]


def metrics_from_confusion(cm: np.ndarray, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """:func:`pooled_metrics` from a confusion matrix ``cm`` [C, C] (rows true, columns predicted)."""
    cm = np.asarray(cm, dtype=np.int64)
    report = per_class_report(cm, class_names)
    present = [r["class"] for r in report if r["present"]]
    absent = [r["class"] for r in report if not r["present"]]
    n = int(cm.sum())

    def mean(key: str) -> float:
        return float(np.mean([report[c][key] for c in present])) if present else float("nan")

    return {
        "acc": float(np.trace(cm)) / n if n else float("nan"),
        "uf1": mean("f1"),
        "uar": mean("recall"),
        "macro_precision": mean("precision"),
        "num_samples": n,
        "num_classes": len(cm),
        "present_classes": present,
        "absent_classes": absent,
        "confusion_matrix": cm.tolist(),
        "per_class": report,
    }


def pooled_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    num_classes: int,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """ACC, UF1 and UAR of pooled predictions (all LOSO folds concatenated).

    Args:
        y_true, y_pred: int class ids in ``[0, num_classes)``, one per test sample, same length.
        num_classes: C, the protocol's number of classes.
        class_names: optional names for the per-class report.

    Returns:
        dict with ``acc``, ``uf1``, ``uar`` (fractions in [0, 1]), ``macro_precision`` (what the
        released code calls "UAR"), ``num_samples``, ``present_classes`` and
        ``absent_classes`` (ids in neither array; excluded from the means),
        ``confusion_matrix`` (list of lists, [true][pred]) and ``per_class`` (see
        :func:`per_class_report`).
    """
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, num_classes), class_names)


def released_fold_f1(cm: np.ndarray) -> float:
    """The released code's per-fold selection F1: mean F1 over the classes with a true sample
    or a prediction in this fold (used only by the ``released`` protocol)."""
    return metrics_from_confusion(cm)["uf1"]
