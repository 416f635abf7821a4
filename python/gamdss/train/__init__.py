"""LOSO training of GAMDSS models: configs, metrics, the runner and its results files.

- :mod:`gamdss.train.config`: :class:`TrainConfig` (YAML presets in ``gamdss/configs``).
- :mod:`gamdss.train.metrics`: :func:`pooled_metrics` (ACC, UF1, UAR pooled over folds).
- :mod:`gamdss.train.loso`: :func:`run_loso` (honest protocol by default; resumable).
- :mod:`gamdss.train.reselection`: the reselected keyframes a run uses (``gamdss reselect``
  outputs, or computed with its function).
- :mod:`gamdss.train.fold`: one fold; :mod:`gamdss.train.layout`: the run folder's files.
- :mod:`gamdss.train.executors`: local and Ray executors.
- :mod:`gamdss.train.results`, :mod:`gamdss.train.tsne`: the files a run writes.
"""

from gamdss.train.config import TrainConfig, apply_overrides, load_config, preset_names
from gamdss.train.metrics import confusion_matrix, pooled_metrics

__all__ = [
    "TrainConfig",
    "load_config",
    "apply_overrides",
    "preset_names",
    "pooled_metrics",
    "confusion_matrix",
    "run_loso",
]


def __getattr__(name):
    if name == "run_loso":
        from gamdss.train.loso import run_loso

        return run_loso
    raise AttributeError(name)
