"""Datasets: readers of the seven datasets' own layouts, protocols, preprocessing, the frame
cache and synthetic data.

``read_annotations``, ``scan_dataset``, ``get_dataset`` and ``DATASETS`` come from
:mod:`gamdss.data.datasets`; they are loaded on first use so that importing a light
submodule (e.g. :mod:`gamdss.data.cache`) does not import every reader.
"""

from __future__ import annotations

_FROM_DATASETS = ("read_annotations", "scan_dataset", "get_dataset", "DATASETS")


def __getattr__(name: str):
    if name in _FROM_DATASETS:
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
