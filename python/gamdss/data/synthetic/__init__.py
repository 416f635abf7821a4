"""Synthetic micro-expressions with known keyframes (``gamdss.data.synthetic``).

Real face photographs that ship with installed packages, deformed by small action-unit-shaped
displacement fields whose intensity rises from a true onset to a true apex and decays to a
true offset, filmed by a simulated camera; annotated by a model of human coding errors; and
written in the CASME II or SAMM layout so the dataset readers read them unchanged.

What it is not: real facial muscle motion, real identities beyond 18 photographs, or real
annotator behaviour (the bias presets are assumptions). See each module's docstring.
"""

from __future__ import annotations

from .action_units import (
    AU_BLOBS,
    CASME2_EMOTIONS,
    EMOTION_AUS,
    SAMM_EMOTIONS,
    deformation_field,
    emotion_for_dataset,
    region_mask,
)
from .bias import BIAS_PRESETS, BiasModel, get_bias, load_bias, save_bias
from .camera import add_sensor_noise, flicker_offsets, head_motion_path, jpeg_roundtrip
from .faces import PHOTOS, FaceImage, load_photo, make_face
from .generator import SyntheticClip, SyntheticConfig, SyntheticSample, make_clip, make_dataset, render_frames
from .profile import PROFILE_SHAPES, intensity_profile
from .writers import GroundTruthRow, read_ground_truth, write_dataset

__all__ = [
    "AU_BLOBS",
    "BIAS_PRESETS",
    "CASME2_EMOTIONS",
    "EMOTION_AUS",
    "PHOTOS",
    "PROFILE_SHAPES",
    "SAMM_EMOTIONS",
    "BiasModel",
    "FaceImage",
    "SyntheticClip",
    "SyntheticConfig",
    "SyntheticSample",
    "add_sensor_noise",
    "deformation_field",
    "emotion_for_dataset",
    "flicker_offsets",
    "get_bias",
    "head_motion_path",
    "intensity_profile",
    "jpeg_roundtrip",
    "load_bias",
    "load_photo",
    "make_clip",
    "make_dataset",
    "make_face",
    "read_ground_truth",
    "region_mask",
    "render_frames",
    "save_bias",
    "write_dataset",
    "GroundTruthRow",
]
