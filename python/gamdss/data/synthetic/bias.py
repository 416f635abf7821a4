"""Annotation-bias models: how a human coder's onset, apex and offset differ from the truth.

These are modelling assumptions, not fits to any dataset. They encode what the GAMDSS paper
(Sec. V) and FACS coding practice describe qualitatively: the apex is marked systematically
late or early, the error grows with the expression's duration, the offset (the end of a
slow decay) is more uncertain than the apex, and coders of multicultural datasets (SAMM,
4DME) disagree more. Errors are Gaussian in milliseconds, then rounded to frames.

The presets (standard deviations ``sd = base + per_duration * D``, with ``D`` the true
onset-to-offset duration in ms):

=============== ======= ========== =============== ==================
preset          onset   apex shift apex sd         offset sd
=============== ======= ========== =============== ==================
none            0       0          0               0
careful         5 ms    0          5 ms + 0.01 D   10 ms + 0.03 D
typical         10 ms   +10 ms     10 ms + 0.03 D  20 ms + 0.08 D
multicultural   20 ms   +25 ms     20 ms + 0.06 D  40 ms + 0.15 D
=============== ======= ========== =============== ==================

For a 300 ms expression at 200 fps the ``typical`` apex sd is 19 ms (about 4 frames) and the
offset sd 44 ms (about 9 frames).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gamdss.settings import yaml_io as yaml_dataclass


@dataclass(frozen=True)
class BiasModel:
    """Gaussian keyframe errors in milliseconds.

    Attributes:
        name: preset or user name.
        onset_sd_ms: sd of the onset error.
        apex_shift_ms: mean apex error (positive: marked late, negative: early).
        apex_sd_ms, apex_sd_per_duration: apex error sd = ``apex_sd_ms +
            apex_sd_per_duration * D`` (D: true onset-to-offset duration, ms).
        offset_shift_ms: mean offset error.
        offset_sd_ms, offset_sd_per_duration: offset error sd, as for the apex.
        onset_sd_per_duration: onset sd also grows with D (default 0).
    """

    name: str = "custom"
    onset_sd_ms: float = 0.0
    apex_shift_ms: float = 0.0
    apex_sd_ms: float = 0.0
    apex_sd_per_duration: float = 0.0
    offset_shift_ms: float = 0.0
    offset_sd_ms: float = 0.0
    offset_sd_per_duration: float = 0.0
    onset_sd_per_duration: float = 0.0

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if key == "name":
                continue
            if not np.isfinite(value):
                raise ValueError(f"BiasModel {self.name!r}: {key} must be finite, got {value!r}")
            if (key.endswith("_sd_ms") or key.endswith("_per_duration")) and value < 0:
                raise ValueError(f"BiasModel {self.name!r}: {key} must be >= 0, got {value!r}")

    def sds_ms(self, duration_ms: float) -> tuple[float, float, float]:
        """(onset, apex, offset) error sds in ms for an expression lasting ``duration_ms``."""
        return (
            self.onset_sd_ms + self.onset_sd_per_duration * duration_ms,
            self.apex_sd_ms + self.apex_sd_per_duration * duration_ms,
            self.offset_sd_ms + self.offset_sd_per_duration * duration_ms,
        )

    def annotate(
        self, truth: tuple[int, int, int], fps: float, rng: np.random.Generator, *, n_frames: int
    ) -> tuple[int, int, int]:
        """One coder's (onset, apex, offset) for a clip whose true keyframes are ``truth``.

        Args:
            truth: true clip-relative (onset, apex, offset), ``0 <= o <= a <= f <= T - 1``.
            fps: frame rate (errors are drawn in ms and rounded to frames).
            rng: numpy Generator; three normal draws are consumed.
            n_frames: clip length T.

        Returns:
            Clip-relative annotated keyframes, always ``0 <= o <= a <= f <= T - 1``. Clamping:
            each is first clipped to ``[0, T - 1]``; the apex annotation is then kept and an
            onset after it is moved onto it, an offset before it likewise (a coder who marks
            the apex first and the ends relative to it).
        """
        o, a, f = (int(v) for v in truth)
        if not (0 <= o <= a <= f <= n_frames - 1):
            raise ValueError(
                f"BiasModel.annotate: truth {truth} violates 0 <= onset <= apex <= offset <= T-1 with T={n_frames}"
            )
        if not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"BiasModel.annotate: fps must be > 0, got {fps!r}")
        duration_ms = (f - o) * 1000.0 / fps
        sd_o, sd_a, sd_f = self.sds_ms(duration_ms)
        z = rng.standard_normal(3)
        err_ms = np.array([z[0] * sd_o, self.apex_shift_ms + z[1] * sd_a, self.offset_shift_ms + z[2] * sd_f])
        err = np.rint(err_ms * fps / 1000.0).astype(np.int64)
        oa, aa, fa = (int(np.clip(v + e, 0, n_frames - 1)) for v, e in zip((o, a, f), err))
        oa = min(oa, aa)
        fa = max(fa, aa)
        return oa, aa, fa

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, as plain values (for result files)."""
        return asdict(self)


BIAS_PRESETS: dict[str, BiasModel] = {
    "none": BiasModel("none"),
    "careful": BiasModel(
        "careful",
        onset_sd_ms=5.0,
        apex_sd_ms=5.0,
        apex_sd_per_duration=0.01,
        offset_sd_ms=10.0,
        offset_sd_per_duration=0.03,
    ),
    "typical": BiasModel(
        "typical",
        onset_sd_ms=10.0,
        apex_shift_ms=10.0,
        apex_sd_ms=10.0,
        apex_sd_per_duration=0.03,
        offset_sd_ms=20.0,
        offset_sd_per_duration=0.08,
    ),
    "multicultural": BiasModel(
        "multicultural",
        onset_sd_ms=20.0,
        apex_shift_ms=25.0,
        apex_sd_ms=20.0,
        apex_sd_per_duration=0.06,
        offset_sd_ms=40.0,
        offset_sd_per_duration=0.15,
    ),
}


def get_bias(bias: str | BiasModel) -> BiasModel:
    """A preset by name (``none``, ``careful``, ``typical``, ``multicultural``), or ``bias`` itself."""
    if isinstance(bias, BiasModel):
        return bias
    key = str(bias).strip().lower()
    if key not in BIAS_PRESETS:
        raise ValueError(f"unknown bias model {bias!r}; presets: {', '.join(BIAS_PRESETS)}")
    return BIAS_PRESETS[key]


def load_bias(path: str | Path) -> BiasModel:
    """A :class:`BiasModel` from a YAML mapping of its fields (missing ones take their defaults)."""
    return yaml_dataclass.load(BiasModel, path)


def save_bias(model: BiasModel, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``model`` as YAML (atomically); refuses to replace ``path`` unless ``overwrite``."""
    return yaml_dataclass.save(model, path, overwrite=overwrite)
