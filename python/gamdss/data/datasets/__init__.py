"""Readers of the seven micro-expression datasets in their original layouts.

``DATASETS`` maps a name to its :class:`~gamdss.data.datasets.base.Dataset` class;
``read_annotations(path, dataset)`` reads an annotation file on its own (no frames needed);
``scan_dataset(root, dataset)`` also finds every clip's frames. See ``docs/datasets.md``.
"""

from __future__ import annotations

from pathlib import Path

from gamdss.data.records import AnnotationReport, ScanReport

from .base import Column, Dataset
from .casme import Casme
from .casme2 import Casme2
from .casme3 import Casme3
from .casme_sq import CasmeSq
from .fourdme import FourDME
from .mmew import Mmew
from .samm import Samm
from .tables import TableError

DATASETS: dict[str, type[Dataset]] = {cls.name: cls for cls in (Casme, Casme2, Samm, CasmeSq, Casme3, Mmew, FourDME)}

__all__ = ["DATASETS", "Column", "Dataset", "TableError", "get_dataset", "read_annotations", "scan_dataset"]


def get_dataset(name: str) -> Dataset:
    """An instance of the dataset called ``name`` (``casme``, ``casme2``, ``samm``,
    ``casme_sq``, ``casme3``, ``mmew``, ``4dme``; case-insensitive).

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[key]()


def read_annotations(path: str | Path, dataset: str, *, corrections: str | Path | None = None) -> AnnotationReport:
    """Read an annotation file of ``dataset``: usable records (frame numbers as in the file,
    after the written corrections) and skipped rows with row numbers and reasons."""
    return get_dataset(dataset).read_annotations(path, corrections=corrections)


def scan_dataset(
    root: str | Path,
    dataset: str,
    *,
    annotations: str | Path | None = None,
    margin: float = 0.5,
    corrections: str | Path | None = None,
) -> ScanReport:
    """Read ``dataset``'s annotations (found under ``root`` unless given) and find every
    clip's frames under ``root``; see :meth:`Dataset.scan`."""
    return get_dataset(dataset).scan(root, annotations=annotations, margin=margin, corrections=corrections)
