"""Where a LOSO run folder keeps its files (shared by the runner and the results writer).

See :mod:`gamdss.train.loso` for what each file holds.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: Files whose presence marks a folder as a training run.
RUN_MARKERS = ("config.yaml", "plan.json")
#: Files and patterns a run writes into its folder (and a rerun with ``overwrite`` deletes).
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
OWNED_GLOBS = ("per_class_*.csv", "confusion_*.png", "tsne_*.png", "tsne_*.csv")
#: Patterns of the per-fold files under ``folds/``.
FOLD_GLOBS = ("*.json", "*.features.npz", "*.ckpt.pt")


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
