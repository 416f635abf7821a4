"""The normalisation of the model's RGB input: the one definition in gamdss.

Frames in [0, 1] units are normalised per channel as ``(x - mean) / std`` with the ImageNet
statistics the pretrained backbones expect (:mod:`gamdss.data.batch_transform` applies it;
:mod:`gamdss.models.inputs` undoes it where it needs pixels back)."""

from __future__ import annotations

#: ImageNet RGB mean and std, in [0, 1] units
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
