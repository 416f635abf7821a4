"""Training samples and the keyframe Dataset, as the LOSO runner uses them.

The definitions live in :mod:`gamdss.data` (the public Dataset for users' own loops); this
module names them for the trainer:

- :class:`Sample`, :func:`build_samples` (:mod:`gamdss.data.samples`): protocol labels,
  subject keys and the keyframes to use per clip (a reselection table computed once
  beforehand).
- :class:`KeyframeDataset`, :func:`collate` (:mod:`gamdss.data.keyframes`): per sample
  only the three uint8 keyframes (and cached flow fields) and the augmentation draws.
- :class:`KeyframeTransform` (:mod:`gamdss.data.batch_transform`): resizing, ImageNet
  normalisation and the released code's augmentation, batched on the training device, with the
  same draws per sample as the per-sample path it replaces (:func:`augment_one`).
"""

from __future__ import annotations

from gamdss.data.batch import AugmentParams, KeyframeBatch
from gamdss.data.batch_transform import (
    CROP_PADDING,
    MAX_ROTATION_DEG,
    REFERENCE_SIZE,
    KeyframeInputs,
    KeyframeTransform,
    augment_one,
    crop_padding,
    draw_augment,
)
from gamdss.data.keyframes import KeyframeDataset, KeyframeItem, collate
from gamdss.data.samples import Keyframes, Sample, build_samples

__all__ = [
    "CROP_PADDING",
    "MAX_ROTATION_DEG",
    "REFERENCE_SIZE",
    "AugmentParams",
    "KeyframeBatch",
    "KeyframeDataset",
    "KeyframeInputs",
    "KeyframeItem",
    "KeyframeTransform",
    "Keyframes",
    "Sample",
    "augment_one",
    "build_samples",
    "collate",
    "crop_padding",
    "draw_augment",
]
