"""The GAMDSS model: one shared S-T unit applied to the rise and the fall phase.

``GamdssModel.forward(rise_motion, fall_motion, rise_still, fall_still)``:

- ``rise_motion`` float32 ``[N, in_chans, H, W]``: apex − onset (Eq. 9) in normalised
  space, or the optical flow onset -> apex (see :func:`gamdss.models.inputs.motion_inputs`);
- ``fall_motion``: apex − offset (Eq. 10), or the flow offset -> apex;
- ``rise_still`` / ``fall_still`` float32 ``[N, 3, H, W]``: the resting frames fed to the
  spatial branch, the onset for rise and the offset for fall (the paper: "onset or offset";
  the released code used the **apex** for fall; :func:`gamdss.models.inputs.still_inputs`
  picks either). Ignored (may be None) without a spatial branch.

The same :class:`~gamdss.models.st_unit.STUnit` (same parameters, same BatchNorm running
statistics, updated by both passes as in the released code) runs on each enabled phase,
one pass per phase. Returns :class:`GamdssOutput`; a disabled phase (``phases=("rise",)``:
the paper's DRT; ``("fall",)``: ADRT) gives None and needs no inputs.

:func:`gamdss_loss` is CE(rise) + ``fall_weight``·CE(fall) (Eq. 12 with weight 1);
:func:`predict` gives the ``rise``, ``fall`` or ``fused`` (mean of the two softmax
distributions) prediction. The released scripts predicted from the rise logits only.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .rmt import RMTConfig
from .st_unit import STUnit, build_st_unit

__all__ = ["GamdssModel", "GamdssOutput", "gamdss_loss", "predict", "PHASES", "PREDICT_MODES"]

PHASES = ("rise", "fall")
PREDICT_MODES = ("rise", "fall", "fused")


class GamdssOutput(NamedTuple):
    """Logits ``[N, C]`` and pooled features ``[N, feature_dim]`` per phase (None if disabled)."""

    rise_logits: Tensor | None
    fall_logits: Tensor | None
    rise_features: Tensor | None
    fall_features: Tensor | None


class GamdssModel(nn.Module):
    """GAMDSS: a shared spatio-temporal unit over the rise and fall phases.

    Args:
        num_classes: number of emotion classes.
        temporal: temporal branch: ``"rmt_gamdss"`` (default), ``"rmt_t"``, ``"rmt_tiny"``,
            an :class:`~gamdss.models.rmt.RMTConfig`, or a timm name (``"timm:resnet18"``).
        spatial: with the spatial ViT branch (False: the paper's "W/O S" ablation).
        in_chans: channels of the motion input: 3 (difference frames) or 2 (optical flow).
        phases: enabled phases, a non-empty subset of ``("rise", "fall")``.
        img_size: the input side the model is built for (position grid of the spatial
            branch, fixed-size timm branches); other sizes work with RMT/CNN branches.
        feature_dim: width of the pooled features (1024).
        drop_path_rate: stochastic depth override for the temporal branch (None: preset).
        spatial_kwargs / timm_kwargs: extra arguments of the spatial ViT / timm model.
    """

    def __init__(
        self,
        num_classes: int,
        temporal: str | RMTConfig = "rmt_gamdss",
        *,
        spatial: bool = True,
        in_chans: int = 3,
        phases=PHASES,
        img_size: int | tuple[int, int] = 224,
        feature_dim: int = 1024,
        drop_path_rate: float | None = None,
        spatial_kwargs: dict | None = None,
        timm_kwargs: dict | None = None,
    ):
        super().__init__()
        phases = tuple(phases)
        if not phases or any(p not in PHASES for p in phases) or len(set(phases)) != len(phases):
            raise ValueError(f"phases must be a non-empty subset of {PHASES}, got {phases!r}")
        self.phases = tuple(p for p in PHASES if p in phases)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.unit: STUnit = build_st_unit(
            num_classes,
            temporal,
            spatial=spatial,
            in_chans=in_chans,
            img_size=img_size,
            feature_dim=feature_dim,
            drop_path_rate=drop_path_rate,
            spatial_kwargs=spatial_kwargs,
            timm_kwargs=timm_kwargs,
        )

    @property
    def has_spatial(self) -> bool:
        """Whether the unit has the spatial ViT branch (then each enabled phase needs its still frame)."""
        return self.unit.spatial is not None

    def _phase(self, name: str, motion: Tensor | None, still: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        if name not in self.phases:
            return None, None
        if motion is None:
            raise ValueError(f"phase {name!r} is enabled: pass {name}_motion [N, {self.in_chans}, H, W]")
        if motion.ndim != 4 or motion.shape[1] != self.in_chans:
            raise ValueError(
                f"{name}_motion must be [N, {self.in_chans}, H, W] "
                f"(in_chans={self.in_chans}), got {tuple(motion.shape)}"
            )
        if self.has_spatial and still is None:
            raise ValueError(f"the model has a spatial branch: pass {name}_still [N, 3, H, W]")
        return self.unit(motion, still if self.has_spatial else None)

    def forward(
        self,
        rise_motion: Tensor | None,
        fall_motion: Tensor | None,
        rise_still: Tensor | None = None,
        fall_still: Tensor | None = None,
    ) -> GamdssOutput:
        """Logits and pooled features of each enabled phase (one pass of the shared unit per phase).

        rise_motion, fall_motion: float32 ``[N, in_chans, H, W]``: with ``in_chans=3`` the
            differences apex − onset and apex − offset of ImageNet-normalised frames; with
            ``in_chans=2`` the flows onset -> apex and offset -> apex (dx, dy, pixels at H x W
            divided by any ``flow_scale``). None for a disabled phase.
        rise_still, fall_still: float32 ``[N, 3, H, W]``, ImageNet-normalised resting frames
            (onset; offset or apex, :func:`~gamdss.models.inputs.still_inputs`), resized inside
            to the temporal map; needed for an enabled phase with a spatial branch, else ignored.

        Returns a :class:`GamdssOutput`: logits ``[N, num_classes]`` and features
        ``[N, feature_dim]`` per enabled phase, float32 (or the autocast dtype); None for a
        disabled phase. H and W are free for RMT and CNN branches (``img_size`` for a
        fixed-size timm branch). ``ValueError`` when an enabled phase lacks an input or the
        motion input is not ``[N, in_chans, H, W]``.
        """
        rise_logits, rise_features = self._phase("rise", rise_motion, rise_still)
        fall_logits, fall_features = self._phase("fall", fall_motion, fall_still)
        return GamdssOutput(rise_logits, fall_logits, rise_features, fall_features)


def gamdss_loss(output: GamdssOutput, target: Tensor, fall_weight: float = 1.0) -> Tensor:
    """CE(rise) + ``fall_weight``·CE(fall) over the enabled phases (mean over the batch).

    ``target``: int64 class indices ``[N]``. Returns a scalar float32 tensor.
    """
    terms = []
    if output.rise_logits is not None:
        terms.append(F.cross_entropy(output.rise_logits.float(), target))
    if output.fall_logits is not None:
        terms.append(fall_weight * F.cross_entropy(output.fall_logits.float(), target))
    if not terms:
        raise ValueError("gamdss_loss: the output has no logits (no phase enabled)")
    return sum(terms[1:], terms[0])


@torch.no_grad()
def predict(output: GamdssOutput, mode: str = "fused") -> tuple[Tensor, Tensor]:
    """Predicted class (int64 ``[N]``) and probabilities (float32 ``[N, C]``).

    ``mode``: ``"rise"`` / ``"fall"``: softmax of that phase's logits; ``"fused"``: the mean
    of the two phases' softmax probabilities (needs both phases). Ties go to the lower class.
    """
    if mode not in PREDICT_MODES:
        raise ValueError(f"predict mode must be one of {PREDICT_MODES}, got {mode!r}")
    probs = {}
    for phase, logits in (("rise", output.rise_logits), ("fall", output.fall_logits)):
        if logits is not None:
            probs[phase] = torch.softmax(logits.float(), dim=-1)
    needed = ("rise", "fall") if mode == "fused" else (mode,)
    missing = [p for p in needed if p not in probs]
    if missing:
        raise ValueError(f"predict mode {mode!r} needs the {' and '.join(missing)} logits, but that phase is disabled")
    p = (probs["rise"] + probs["fall"]) / 2 if mode == "fused" else probs[mode]
    return p.argmax(dim=-1), p
