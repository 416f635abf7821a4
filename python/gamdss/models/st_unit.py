"""The spatio-temporal (S-T) unit: temporal map + spatial map -> features -> logits.

``STUnit.forward(motion, still)``:

1. temporal branch on the motion input (difference frame or optical flow,
   ``[N, in_chans, H, W]``) -> map ``[N, C, h, w]`` (C = 512 for GAMDSS);
2. spatial branch (:class:`~gamdss.models.spatial_vit.SpatialViT`) on the resting frame
   ``[N, 3, H, W]`` resized to ``(h, w)`` -> ``[N, C, h, w]``; the two maps are summed
   (Eq. 8). Without a spatial branch (``spatial=False``, the paper's "W/O S") the temporal
   map goes on alone;
3. head: 1x1 projection ``C -> feature_dim`` (1024), BatchNorm2d, Swish (SiLU), global
   average pool -> features ``[N, feature_dim]``, Linear -> logits ``[N, num_classes]``.

The temporal branch is pluggable (:func:`build_temporal`):

- ``"rmt_gamdss"`` (default), ``"rmt_t"``, ``"rmt_tiny"``: :class:`~gamdss.models.rmt.RMT`
  presets, or an :class:`~gamdss.models.rmt.RMTConfig`;
- ``"timm:<name>"`` or any other timm model name: :class:`TimmTemporal`, the model built
  with ``features_only=True`` (never pretrained unless ``pretrained=True`` is passed in
  ``timm_kwargs``), its last feature map projected to ``out_dim`` (512) channels by a 1x1
  conv. The spatial map follows whatever map size the branch gives (7x7 for a stride-32
  ResNet/ConvNeXt/Swin at 224x224). Models with a fixed input size (Swin, ViT-style; timm's
  ``fixed_input_size``) are built for ``img_size`` and must be fed exactly that size;
  channels-last (NHWC) feature maps such as Swin's are permuted to NCHW.
"""

from __future__ import annotations

from dataclasses import replace

import timm
from torch import Tensor, nn

from .rmt import RMT, RMT_PRESETS, RMTConfig
from .spatial_vit import SpatialViT

__all__ = ["STUnit", "TimmTemporal", "build_temporal", "build_st_unit", "count_parameters", "RMT_BRANCHES"]

#: Temporal-branch names of the RMT presets (values: keys of :data:`RMT_PRESETS`).
RMT_BRANCHES = {"rmt_gamdss": "gamdss", "rmt_t": "rmt_t", "rmt_tiny": "tiny"}


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class TimmTemporal(nn.Module):
    """A timm backbone as temporal branch: last feature map, 1x1-projected to ``out_dim``.

    ``forward(x [N, in_chans, H, W])`` -> ``[N, out_dim, h, w]``. Attributes ``out_dim``,
    ``reduction`` (the backbone's total stride), ``name``.
    """

    def __init__(
        self, name: str, in_chans: int = 3, out_dim: int = 512, img_size: int | tuple[int, int] = 224, **timm_kwargs
    ):
        super().__init__()

        kwargs = dict(pretrained=False)
        kwargs.update(timm_kwargs)
        try:
            cfg = timm.models.get_pretrained_cfg(name)
        except Exception:  # noqa: BLE001 - a model without a default cfg
            cfg = None
        self.fixed_input_size = bool(cfg is not None and getattr(cfg, "fixed_input_size", False))
        if self.fixed_input_size and "img_size" not in kwargs:
            kwargs["img_size"] = _pair(img_size)
        try:
            self.backbone = timm.create_model(name, features_only=True, out_indices=(-1,), in_chans=in_chans, **kwargs)
        except RuntimeError as exc:
            if "Unknown model" in str(exc):
                raise ValueError(
                    f"temporal branch {name!r} is neither an RMT branch ({sorted(RMT_BRANCHES)}) nor a timm model name"
                ) from exc
            raise
        info = self.backbone.feature_info
        self.name = name
        self.channels = info.channels()[-1]
        self.reduction = info.reduction()[-1]
        fmt = getattr(self.backbone, "output_fmt", "NCHW")
        self.channels_last = str(getattr(fmt, "value", fmt)).upper() == "NHWC"
        self.out_dim = out_dim
        self.proj = nn.Conv2d(self.channels, out_dim, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` float32 ``[N, in_chans, H, W]`` (exactly ``img_size`` when
        :attr:`fixed_input_size`) -> float32 ``[N, out_dim, h, w]`` (or the autocast dtype), the
        last feature map (NCHW) projected; ``h ≈ H / reduction``, ``w ≈ W / reduction``."""
        feat = self.backbone(x)[-1]
        if self.channels_last:
            feat = feat.permute(0, 3, 1, 2)
        return self.proj(feat)


def build_temporal(
    temporal: str | RMTConfig | nn.Module = "rmt_gamdss",
    *,
    in_chans: int = 3,
    out_dim: int = 512,
    img_size: int | tuple[int, int] = 224,
    drop_path_rate: float | None = None,
    timm_kwargs: dict | None = None,
) -> nn.Module:
    """The temporal branch named by ``temporal`` (see the module docstring).

    ``out_dim`` applies to timm branches (an RMT branch has ``embed_dims[-1]`` channels);
    ``drop_path_rate`` overrides the preset's (RMT) or is passed to timm when given. A
    ready ``nn.Module`` with ``out_dim`` and ``reduction`` attributes is returned as is.
    """
    if isinstance(temporal, nn.Module):
        return temporal
    if isinstance(temporal, RMTConfig):
        config = replace(temporal, in_chans=in_chans)
    elif temporal in RMT_BRANCHES:
        config = replace(RMT_PRESETS[RMT_BRANCHES[temporal]], in_chans=in_chans)
    else:
        name = temporal[len("timm:") :] if temporal.startswith("timm:") else temporal
        kwargs = dict(timm_kwargs or {})
        if drop_path_rate is not None:
            kwargs.setdefault("drop_path_rate", drop_path_rate)
        return TimmTemporal(name, in_chans=in_chans, out_dim=out_dim, img_size=img_size, **kwargs)
    if drop_path_rate is not None:
        config = replace(config, drop_path_rate=drop_path_rate)
    return RMT(config)


class STUnit(nn.Module):
    """One spatio-temporal unit (used for both phases of GAMDSS).

    Args:
        temporal: the temporal branch (an ``nn.Module`` with ``out_dim``).
        spatial: the spatial branch (``embed_dim == temporal.out_dim``) or None.
        num_classes: logits per sample. feature_dim: width of the projected features (1024).

    ``forward(motion, still=None)`` -> ``(logits [N, num_classes], features [N, feature_dim])``,
    float32 (or the autocast dtype). ``motion``: ``[N, in_chans, H, W]``; ``still``: the
    resting frame ``[N, 3, H, W]``, required iff the unit has a spatial branch.
    """

    def __init__(self, temporal: nn.Module, spatial: SpatialViT | None, num_classes: int, feature_dim: int = 1024):
        super().__init__()
        channels = temporal.out_dim
        if spatial is not None and spatial.embed_dim != channels:
            raise ValueError(
                f"STUnit: spatial embed_dim {spatial.embed_dim} must equal the "
                f"temporal map's channels {channels} (the maps are summed)"
            )
        if num_classes < 1:
            raise ValueError(f"STUnit: num_classes must be >= 1, got {num_classes}")
        self.temporal = temporal
        self.spatial = spatial
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.proj = nn.Conv2d(channels, feature_dim, kernel_size=1)
        self.norm = nn.BatchNorm2d(feature_dim)
        self.act = nn.SiLU()
        self.head = nn.Linear(feature_dim, num_classes)
        # As RMT's head (its projection is a Linear there): truncated normal 0.02, zero bias.
        for layer in (self.proj, self.head):
            nn.init.trunc_normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def fused_map(self, motion: Tensor, still: Tensor | None = None) -> Tensor:
        """Temporal map plus spatial map, ``[N, C, h, w]`` (Eq. 8)."""
        x = self.temporal(motion)
        if self.spatial is not None:
            if still is None:
                raise ValueError(
                    "STUnit has a spatial branch: pass the resting frame `still` "
                    "[N, 3, H, W] (or build the model with spatial=False)"
                )
            x = x + self.spatial(still, size=tuple(x.shape[-2:]))
        return x

    def forward_features(self, motion: Tensor, still: Tensor | None = None) -> Tensor:
        """Pooled features ``[N, feature_dim]`` (before the classifier)."""
        x = self.act(self.norm(self.proj(self.fused_map(motion, still))))
        return x.mean(dim=(2, 3))

    def forward(self, motion: Tensor, still: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(logits [N, num_classes], features [N, feature_dim])`` for one phase.

        motion: float32 ``[N, in_chans, H, W]``, the phase's difference frame or flow.
        still: float32 ``[N, 3, H', W']`` normalised resting frame (resized to the temporal
            map), required iff the unit has a spatial branch; ignored otherwise.
        """
        features = self.forward_features(motion, still)
        return self.head(features), features


def build_st_unit(
    num_classes: int,
    temporal: str | RMTConfig | nn.Module = "rmt_gamdss",
    *,
    spatial: bool = True,
    in_chans: int = 3,
    img_size: int | tuple[int, int] = 224,
    feature_dim: int = 1024,
    drop_path_rate: float | None = None,
    spatial_kwargs: dict | None = None,
    timm_kwargs: dict | None = None,
) -> STUnit:
    """An :class:`STUnit` with the named temporal branch and (if ``spatial``) a matching ViT.

    The ViT's width is the temporal map's channels; its position grid is
    ``img_size // reduction`` (14x14 for GAMDSS at 224). ``spatial_kwargs`` override the
    other :class:`SpatialViT` arguments (depth, num_heads, mlp_ratio, antialias...).
    """
    branch = build_temporal(
        temporal, in_chans=in_chans, img_size=img_size, drop_path_rate=drop_path_rate, timm_kwargs=timm_kwargs
    )
    vit = None
    if spatial:
        h, w = _pair(img_size)
        r = int(branch.reduction)
        kwargs = dict(embed_dim=branch.out_dim, grid_size=(max(-(-h // r), 1), max(-(-w // r), 1)))
        kwargs.update(spatial_kwargs or {})
        vit = SpatialViT(**kwargs)
    return STUnit(branch, vit, num_classes, feature_dim=feature_dim)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())
