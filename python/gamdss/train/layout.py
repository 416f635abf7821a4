"""Where a LOSO run folder keeps its files (shared by the runner and the results writer).

See :mod:`gamdss.train.loso` for what each file holds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

#: Files a training run writes first (``demo`` looks for them). Their presence alone does
#: not make a folder a run: :func:`gamdss.train.loso.is_run` reads them.
RUN_MARKERS = ("config.yaml", "plan.json")
#: The ``format`` tag of a run's ``plan.json``.
PLAN_FORMAT = "gamdss-loso-plan"
#: Files a run writes into its folder whatever its config (a rerun with ``overwrite`` deletes them).
OWNED_FILES = (
    "config.yaml",
    "plan.json",
    "reselection.csv",
    "results.json",
    "predictions.csv",
    "folds.csv",
    "table.md",
    "table.tex",
)
#: Every prediction mode and feature phase a run can write files for.
ALL_MODES = ("rise", "fall", "fused")
ALL_PHASES = ("rise", "fall")


def tsne_files(out: Path, phase: str) -> tuple[Path, Path]:
    """(PNG, CSV) of the t-SNE of ``phase``'s held-out features in run folder ``out``."""
    return Path(out) / f"tsne_{phase}.png", Path(out) / f"tsne_{phase}.csv"


def mode_files(out: Path, mode: str) -> tuple[Path, Path]:
    """(per-class CSV, confusion-matrix PNG) of prediction ``mode`` in run folder ``out``."""
    return Path(out) / f"per_class_{mode}.csv", Path(out) / f"confusion_{mode}.png"


def owned_paths(out: Path, subjects: Iterable[str]) -> list[Path]:
    """The exact paths a run in ``out`` may have written, for any mode and phase, and the fold
    files of ``subjects`` (never a file merely named like one: a user's
    ``confusion_notes.png`` or ``folds/my.json`` is not here)."""
    out = Path(out)
    paths = [out / name for name in OWNED_FILES]
    for m in ALL_MODES:
        paths += list(mode_files(out, m))
    for phase in ALL_PHASES:
        paths += list(tsne_files(out, phase))
    for subject in dict.fromkeys(subjects):
        paths += list(fold_paths(out, subject).values())
    return paths


def safe_name(subject: str) -> str:
    """A file-name-safe, unique name for a subject key."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", subject).strip("._")[:60] or "subject"
    return f"{readable}-{hashlib.sha1(subject.encode('utf-8')).hexdigest()[:8]}"


def fold_paths(out: Path, subject: str) -> dict[str, Path]:
    """``json`` (the finished fold's record), ``features`` (its held-out features, npz) and
    ``checkpoint`` (the mid-fold checkpoint) of ``subject``'s fold in run folder ``out``."""
    base = Path(out) / "folds" / safe_name(subject)
    return {
        "json": base.with_suffix(".json"),
        "features": Path(f"{base}.features.npz"),
        "checkpoint": Path(f"{base}.ckpt.pt"),
    }
