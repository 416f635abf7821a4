"""Datasets: readers of the seven datasets' own layouts, protocols, preprocessing, the frame
cache, synthetic data, and the torch Dataset that feeds keyframes (and cached flow) to a model.

``read_annotations``, ``scan_dataset``, ``get_dataset`` and ``DATASETS`` come from
:mod:`gamdss.data.datasets`; ``KeyframeDataset``, ``keyframe_dataset`` and ``collate`` from
:mod:`gamdss.data.keyframes`; ``KeyframeTransform`` from
:mod:`gamdss.data.batch_transform`; ``FlowStore`` from :mod:`gamdss.data.flow_cache`. They
are loaded on first use so that importing a light submodule (e.g. :mod:`gamdss.data.cache`)
does not import every reader, torch or OpenCV.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "read_annotations": "datasets",
    "scan_dataset": "datasets",
    "get_dataset": "datasets",
    "DATASETS": "datasets",
    "KeyframeDataset": "keyframes",
    "keyframe_dataset": "keyframes",
    "collate": "keyframes",
    "KeyframeTransform": "batch_transform",
    "FlowStore": "flow_cache",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is not None:
        # Deferred: a light submodule (the cache, protocols) must not import torch, OpenCV or every reader.
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
