"""RMT (Retentive Networks Meet Vision Transformers, Fan et al., CVPR 2024): the temporal branch.

Our own implementation of the architecture, configured by :class:`RMTConfig`:

- **Manhattan self-attention.** Every head ``h`` has a decay ``γ_h = 1 − 2^−(a + r·h/H)``
  (``a`` = ``init_values[stage]``, ``r`` = ``heads_ranges[stage]``, ``H`` heads). The
  logit of query position ``n`` and key position ``m`` gets ``log γ_h · d(n, m)`` added before
  the softmax, ``d`` the Manhattan distance on the token grid (:func:`manhattan_decay_mask`).
  The prior is symmetric: retention here is bidirectional, not causal.
- **Decomposed (axial) retention** in the early stages (``chunkwise_stages``): attention
  along W inside each row with the 1-D decay ``γ^|Δw|``, then along H inside each column
  with ``γ^|Δh|`` (:class:`AxialRetention`), ``O(HW·(H+W))`` instead of ``O((HW)²)``.
  **Whole retention** (:class:`WholeRetention`) in the later stages: one softmax over all
  tokens with the 2-D decay ``γ^(|Δh|+|Δw|)``. With content-independent logits the two are
  the same operator (``γ^(|Δh|+|Δw|)`` factorises), which the tests check.
- **RoPE-style theta shift** of q and k on the raster index ``n = i·W + j`` (pairs of
  channels rotated by ``n·θ_k``, ``θ_k = 10000^−k/(d/2−1)``); k is scaled by ``d^−1/2``.
- **LePE**: a depthwise 5x5 conv of V added to the retention output.
- **CPE**: a depthwise 3x3 conv residual before each block.
- **FFN**: pre-LN, ``fc1`` (ratio ``mlp_ratios``), GELU, a depthwise 3x3 conv residual,
  ``fc2``; stochastic depth (drop path) on both residual branches, linear in block index
  from 0 to ``drop_path_rate``; optional layer scale.
- **Conv stem** (four 3x3 convs with BatchNorm, GELU between; total stride
  ``stem_stride`` 2 or 4) and **conv downsampling** between stages (3x3 stride 2 +
  BatchNorm).

Presets (:data:`RMT_PRESETS`): ``gamdss`` (the released GAMDSS configuration: dims
64/128/256/512, depths 1/1/2/1, 2 heads, stem stride 2, a 14x14x512 map for a 224x224
input), ``rmt_t`` (published RMT-T: depths 2/2/8/2, heads 4/4/8/16, stem stride 4, 7x7)
and ``tiny`` (dims 16/32/64/128, for tests and CPU demos).

The branch (:class:`RMT`) returns the last stage's map ``[N, embed_dims[-1], H/s/8, W/s/8]``
(``s`` = stem stride), float32 (or the autocast dtype). The classification head (1x1
projection, BatchNorm, Swish, pooling, linear) lives in :class:`gamdss.models.st_unit.STUnit`,
after the fusion with the spatial branch; RMT's own head has the same layers, so the
``gamdss`` branch plus that head has exactly the released ``RMT_T3`` parameter count
(6,381,221 for 5 classes).

Weight init, in the released code's order: every linear layer, q/k/v included, truncated
normal (std 0.02, zero bias), LayerNorm 1/0, convs and BatchNorm PyTorch defaults. The
released retention module first gives q/k/v Xavier normal weights (gain 2^−2.5), but the
model-wide truncated-normal init runs after it and overwrites them (released-code notes §3),
so only the truncated-normal init is applied here: q/k/v weights have std 0.02 in every stage.
No pretrained weights exist for these configurations; the model is trained from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import Tensor, nn

from .weight_init import init_transformer_weights

__all__ = [
    "RMTConfig",
    "RMT_PRESETS",
    "rmt_config",
    "RMT",
    "AxialRetention",
    "WholeRetention",
    "RetentionBlock",
    "RMTStage",
    "ConvStem",
    "Downsample",
    "RelativePosition",
    "RetentionPrior",
    "decay_log_gammas",
    "manhattan_decay_mask",
    "axial_decay_masks",
    "rope_sin_cos",
    "theta_shift",
]


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RMTConfig:
    """Hyper-parameters of an RMT branch (one entry per stage in the tuple fields).

    embed_dims: channels per stage. depths: blocks per stage. num_heads: heads per stage
    (``embed_dims[i] / num_heads[i]`` must be even for the rotary shift). init_values,
    heads_ranges: the decay schedule ``γ_h = 1 − 2^−(init + range·h/heads)``.
    mlp_ratios: FFN hidden width / dim. chunkwise_stages: True = decomposed (axial)
    retention, False = whole retention. layerscale: per-stage layer scale on the residual
    branches, initialised to ``layer_init_value``. stem_stride: 2 (GAMDSS) or 4 (RMT).
    drop_path_rate: stochastic depth of the last block (linear from 0). in_chans: input
    channels (3 difference frames, 2 optical flow).
    """

    embed_dims: tuple[int, ...] = (64, 128, 256, 512)
    depths: tuple[int, ...] = (1, 1, 2, 1)
    num_heads: tuple[int, ...] = (2, 2, 2, 2)
    init_values: tuple[float, ...] = (2.0, 2.0, 2.0, 2.0)
    heads_ranges: tuple[float, ...] = (4.0, 4.0, 6.0, 6.0)
    mlp_ratios: tuple[float, ...] = (3.0, 3.0, 3.0, 3.0)
    chunkwise_stages: tuple[bool, ...] = (True, True, False, False)
    layerscale: tuple[bool, ...] = (False, False, False, False)
    layer_init_value: float = 1e-6
    stem_stride: int = 2
    drop_path_rate: float = 0.1
    in_chans: int = 3

    def __post_init__(self) -> None:
        n = len(self.embed_dims)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, f.name, tuple(value))
                if len(value) != n:
                    raise ValueError(
                        f"RMTConfig.{f.name} has {len(value)} entries, embed_dims has {n}: give one per stage"
                    )
        for i, (dim, heads) in enumerate(zip(self.embed_dims, self.num_heads)):
            if heads < 1 or dim % heads or (dim // heads) % 2:
                raise ValueError(
                    f"RMTConfig stage {i}: embed_dim {dim} must split into "
                    f"{heads} heads of even size (the rotary shift rotates pairs)"
                )
        if self.stem_stride not in (2, 4):
            raise ValueError(f"RMTConfig.stem_stride must be 2 or 4, got {self.stem_stride}")
        if any(d < 1 for d in self.depths):
            raise ValueError(f"RMTConfig.depths must be >= 1 per stage, got {self.depths}")
        if self.in_chans < 1:
            raise ValueError(f"RMTConfig.in_chans must be >= 1, got {self.in_chans}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"RMTConfig.drop_path_rate must be in [0, 1), got {self.drop_path_rate}")

    @property
    def reduction(self) -> int:
        """Total stride: input side / output map side."""
        return self.stem_stride * 2 ** (len(self.embed_dims) - 1)


RMT_PRESETS: dict[str, RMTConfig] = {
    # The released GAMDSS temporal branch (RMT_T3 as modified by the authors).
    "gamdss": RMTConfig(),
    # Published RMT-T (qhfan/RMT RMT_T3), 14.3M parameters with its 1000-class head.
    "rmt_t": RMTConfig(depths=(2, 2, 8, 2), num_heads=(4, 4, 8, 16), stem_stride=4),
    # A tiny GAMDSS-shaped branch for tests and CPU demos (same strides as "gamdss").
    "tiny": RMTConfig(embed_dims=(16, 32, 64, 128), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), drop_path_rate=0.0),
}


def rmt_config(preset: str, **overrides) -> RMTConfig:
    """The preset ``preset`` (a key of :data:`RMT_PRESETS`) with fields replaced by ``overrides``."""
    if preset not in RMT_PRESETS:
        raise ValueError(f"unknown RMT preset {preset!r}; known: {sorted(RMT_PRESETS)}")
    return replace(RMT_PRESETS[preset], **overrides)


# ---------------------------------------------------------------------------------------------
# Spatial decay and rotary shift
# ---------------------------------------------------------------------------------------------


def decay_log_gammas(num_heads: int, init_value: float, heads_range: float) -> Tensor:
    """``log γ_h`` for each head, float32 ``[num_heads]``, ``γ_h = 1 − 2^−(init + range·h/heads)``."""
    h = torch.arange(num_heads, dtype=torch.float64)
    return torch.log1p(-torch.pow(2.0, -(init_value + heads_range * h / num_heads))).float()


def manhattan_decay_mask(height: int, width: int, log_gamma: Tensor) -> Tensor:
    """Additive 2-D decay prior ``[heads, H·W, H·W]``: ``log γ_h · (|i−i'| + |j−j'|)``.

    Tokens are in raster order (``n = i·W + j``). ``exp`` of an entry is ``γ_h^d`` with ``d``
    the Manhattan distance of the two grid cells; the diagonal is 0. Same dtype/device as
    ``log_gamma``.
    """
    ii = torch.arange(height, device=log_gamma.device, dtype=log_gamma.dtype)
    jj = torch.arange(width, device=log_gamma.device, dtype=log_gamma.dtype)
    i = ii[:, None].expand(height, width).reshape(-1)
    j = jj[None, :].expand(height, width).reshape(-1)
    dist = (i[:, None] - i[None, :]).abs() + (j[:, None] - j[None, :]).abs()
    return log_gamma[:, None, None] * dist


def _decay_1d(length: int, log_gamma: Tensor) -> Tensor:
    idx = torch.arange(length, device=log_gamma.device, dtype=log_gamma.dtype)
    return log_gamma[:, None, None] * (idx[:, None] - idx[None, :]).abs()


def axial_decay_masks(height: int, width: int, log_gamma: Tensor) -> tuple[Tensor, Tensor]:
    """1-D decay priors for axial retention: ``([heads, H, H], [heads, W, W])``, ``log γ·|Δ|``."""
    return _decay_1d(height, log_gamma), _decay_1d(width, log_gamma)


def rope_sin_cos(height: int, width: int, head_dim: int, *, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """Rotary angles on the raster index: ``(sin, cos)``, each ``[H, W, head_dim]``.

    Channel pair ``k`` (channels ``2k, 2k+1``) of position ``n = i·W + j`` rotates by
    ``n·θ_k``, ``θ_k = 10000^(−k/(head_dim/2 − 1))`` (a single pair rotates by ``n`` rad).
    """
    half = head_dim // 2
    exponent = torch.linspace(0.0, 1.0, half, dtype=torch.float64, device=device)
    theta = torch.pow(10000.0, -exponent).repeat_interleave(2)  # [head_dim]
    index = torch.arange(height * width, dtype=torch.float64, device=device)
    angle = (index[:, None] * theta[None, :]).reshape(height, width, head_dim)
    return angle.sin().to(dtype), angle.cos().to(dtype)


def theta_shift(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Rotate channel pairs of ``x [..., H, W, d]``: ``(a, b) -> (a·cos − b·sin, b·cos + a·sin)``."""
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * cos + rotated * sin


class RetentionPrior(NamedTuple):
    """What every block of a stage needs: rotary ``sin``/``cos`` ``[H, W, head_dim]`` and the
    decay mask(s): ``(mask_h [heads,H,H], mask_w [heads,W,W])`` for axial retention, or
    ``mask [heads, HW, HW]`` for whole retention (float32)."""

    sin: Tensor
    cos: Tensor
    mask: Tensor | tuple[Tensor, Tensor]


class RelativePosition(nn.Module):
    """Builds the :class:`RetentionPrior` of one stage for a ``(H, W)`` token grid."""

    def __init__(self, embed_dim: int, num_heads: int, init_value: float, heads_range: float, axial: bool):
        super().__init__()
        self.head_dim = embed_dim // num_heads
        self.axial = axial
        # Derived from the config, so not part of the state dict.
        self.register_buffer("log_gamma", decay_log_gammas(num_heads, init_value, heads_range), persistent=False)

    def forward(self, height: int, width: int, dtype: torch.dtype) -> RetentionPrior:
        """The prior of a ``height x width`` token grid: ``sin``/``cos`` ``[H, W, head_dim]`` in
        ``dtype``; the decay mask(s) float32, axial or whole as built, on the buffer's device."""
        sin, cos = rope_sin_cos(height, width, self.head_dim, device=self.log_gamma.device, dtype=dtype)
        log_gamma = self.log_gamma.float()
        if self.axial:
            mask = axial_decay_masks(height, width, log_gamma)
        else:
            mask = manhattan_decay_mask(height, width, log_gamma)
        return RetentionPrior(sin, cos, mask)


# ---------------------------------------------------------------------------------------------
# Layers (the blocks work on channels-last maps [N, H, W, C])
# ---------------------------------------------------------------------------------------------


class DepthwiseConv(nn.Module):
    """Depthwise ``k x k`` conv (stride 1, same padding) on channels-last ``[N, H, W, C]``."""

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[N, H, W, C]`` -> ``[N, H, W, C]``."""
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class _Retention(nn.Module):
    """q/k/v/out projections and LePE shared by both retention forms."""

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scale = self.head_dim**-0.5
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.lepe = DepthwiseConv(embed_dim, 5)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def _heads(self, t: Tensor) -> Tensor:
        # [N, H, W, C] -> [N, heads, H, W, d]
        return t.unflatten(-1, (self.num_heads, self.head_dim)).permute(0, 3, 1, 2, 4)

    def _qkv(self, x: Tensor, prior: RetentionPrior) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        q = theta_shift(self._heads(self.q_proj(x)), prior.sin, prior.cos)
        k = theta_shift(self._heads(self.k_proj(x) * self.scale), prior.sin, prior.cos)
        v = self.v_proj(x)
        return q, k, self._heads(v), self.lepe(v)

    def _finish(self, out: Tensor, lepe: Tensor) -> Tensor:
        # out [N, heads, H, W, d] -> [N, H, W, C]
        return self.out_proj(out.permute(0, 2, 3, 1, 4).flatten(-2) + lepe)


def _attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    """softmax(q·kᵀ + mask)·v over the last-but-one axis (q, k already scaled); mask broadcasts."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), scale=1.0)


class AxialRetention(_Retention):
    """Decomposed Manhattan self-attention: along W (1-D decay), then along H (1-D decay).

    ``forward(x [N, H, W, C], prior)`` -> ``[N, H, W, C]``, prior from an axial
    :class:`RelativePosition`.
    """

    def forward(self, x: Tensor, prior: RetentionPrior) -> Tensor:
        """``x`` float ``[N, H, W, C]`` (the block's LayerNorm output) -> ``[N, H, W, C]``; ``prior`` for
        the same ``(H, W)`` from an axial :class:`RelativePosition` (masks ``[heads, H, H]``,
        ``[heads, W, W]``)."""
        mask_h, mask_w = prior.mask
        q, k, v, lepe = self._qkv(x, prior)
        n, heads, h, w, d = q.shape
        # Along W: every row is a batch entry. [N, heads, H, W, d] -> [N·H, heads, W, d]
        rows = lambda t: t.transpose(1, 2).reshape(n * h, heads, w, t.shape[-1])  # noqa: E731
        v = _attend(rows(q), rows(k), rows(v), mask_w)
        v = v.reshape(n, h, heads, w, d)  # [N, H, heads, W, d]
        # Along H: every column is a batch entry. -> [N·W, heads, H, d]
        cols = lambda t: t.permute(0, 3, 1, 2, 4).reshape(n * w, heads, h, t.shape[-1])  # noqa: E731
        v = v.permute(0, 3, 2, 1, 4).reshape(n * w, heads, h, d)
        out = _attend(cols(q), cols(k), v, mask_h)  # [N·W, heads, H, d]
        out = out.reshape(n, w, heads, h, d).permute(0, 2, 3, 1, 4)
        return self._finish(out, lepe)


class WholeRetention(_Retention):
    """Manhattan self-attention over all ``H·W`` tokens with the 2-D decay prior.

    ``forward(x [N, H, W, C], prior)`` -> ``[N, H, W, C]``, prior from a whole
    :class:`RelativePosition`.
    """

    def forward(self, x: Tensor, prior: RetentionPrior) -> Tensor:
        """``x`` float ``[N, H, W, C]`` (the block's LayerNorm output) -> ``[N, H, W, C]``; ``prior`` for
        the same ``(H, W)`` from a whole :class:`RelativePosition` (mask ``[heads, H·W, H·W]``)."""
        q, k, v, lepe = self._qkv(x, prior)
        n, heads, h, w, d = q.shape
        out = _attend(q.flatten(2, 3), k.flatten(2, 3), v.flatten(2, 3), prior.mask)
        return self._finish(out.unflatten(2, (h, w)), lepe)


class ConvFFN(nn.Module):
    """``fc1 -> GELU -> (+ depthwise 3x3 conv) -> fc2`` on ``[N, H, W, C]``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.dwconv = DepthwiseConv(hidden, 3)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[N, H, W, dim]`` -> ``[N, H, W, dim]`` (hidden width ``hidden`` inside)."""
        x = self.act(self.fc1(x))
        return self.fc2(x + self.dwconv(x))


class RetentionBlock(nn.Module):
    """CPE residual, pre-LN retention (+LePE), pre-LN conv FFN; ``[N, H, W, C]`` in and out."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        axial: bool,
        drop_path: float = 0.0,
        layerscale: bool = False,
        layer_init_value: float = 1e-6,
    ):
        super().__init__()
        self.cpe = DepthwiseConv(dim, 3)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.retention = (AxialRetention if axial else WholeRetention)(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.ffn = ConvFFN(dim, int(mlp_ratio * dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if layerscale:
            self.gamma1 = nn.Parameter(torch.full((dim,), float(layer_init_value)))
            self.gamma2 = nn.Parameter(torch.full((dim,), float(layer_init_value)))
        else:
            self.gamma1 = self.gamma2 = None

    def forward(self, x: Tensor, prior: RetentionPrior) -> Tensor:
        """``x`` ``[N, H, W, dim]`` -> ``[N, H, W, dim]``; ``prior``: the stage's
        :class:`RetentionPrior` for ``(H, W)``."""
        x = x + self.cpe(x)
        y = self.retention(self.norm1(x), prior)
        x = x + self.drop_path(y if self.gamma1 is None else self.gamma1 * y)
        y = self.ffn(self.norm2(x))
        return x + self.drop_path(y if self.gamma2 is None else self.gamma2 * y)


class ConvStem(nn.Module):
    """Four 3x3 convs with BatchNorm (GELU after the first three): ``[N, C_in, H, W]`` ->
    ``[N, dim, H/stride, W/stride]``; strides 2,1,1,1 (``stride=2``) or 2,1,2,1 (``stride=4``)."""

    def __init__(self, in_chans: int, dim: int, stride: int):
        super().__init__()
        half = dim // 2
        s3 = 2 if stride == 4 else 1
        layers: list[nn.Module] = []
        for c_in, c_out, s, act in (
            (in_chans, half, 2, True),
            (half, half, 1, True),
            (half, dim, s3, True),
            (dim, dim, 1, False),
        ):
            layers += [nn.Conv2d(c_in, c_out, 3, s, 1), nn.BatchNorm2d(c_out)]
            if act:
                layers.append(nn.GELU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` float ``[N, in_chans, H, W]`` -> ``[N, dim, h, w]`` (NCHW), ``h = ceil(H / stride)``."""
        return self.layers(x)


class Downsample(nn.Module):
    """Conv 3x3 stride 2 + BatchNorm: ``[N, H, W, C_in]`` -> ``[N, ceil(H/2), ceil(W/2), C_out]``."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, out_dim, 3, 2, 1)
        self.norm = nn.BatchNorm2d(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[N, H, W, dim]`` -> ``[N, ceil(H/2), ceil(W/2), out_dim]`` (channels-last)."""
        return self.norm(self.conv(x.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)


class RMTStage(nn.Module):
    """Optional :class:`Downsample`, then ``depth`` :class:`RetentionBlock` sharing one prior."""

    def __init__(
        self,
        in_dim: int,
        dim: int,
        depth: int,
        num_heads: int,
        init_value: float,
        heads_range: float,
        mlp_ratio: float,
        axial: bool,
        drop_paths: list[float],
        layerscale: bool,
        layer_init_value: float,
        downsample: bool,
    ):
        super().__init__()
        self.downsample = Downsample(in_dim, dim) if downsample else None
        self.relpos = RelativePosition(dim, num_heads, init_value, heads_range, axial)
        self.blocks = nn.ModuleList(
            RetentionBlock(dim, num_heads, mlp_ratio, axial, drop_paths[i], layerscale, layer_init_value)
            for i in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[N, H, W, in_dim]`` -> ``[N, h, w, dim]`` channels-last, ``(h, w)`` halved
        (rounded up) when the stage downsamples, else ``(H, W)`` (then ``in_dim == dim``)."""
        if self.downsample is not None:
            x = self.downsample(x)
        prior = self.relpos(x.shape[1], x.shape[2], x.dtype)
        for block in self.blocks:
            x = block(x, prior)
        return x


class RMT(nn.Module):
    """RMT feature extractor.

    ``forward(x)``: ``x`` float ``[N, in_chans, H, W]`` (any H, W >= 1) -> last stage map
    ``[N, embed_dims[-1], h, w]``, ``h = ceil(ceil(H/stem)/8)`` roughly ``H / reduction``
    (14x14 for the ``gamdss`` preset at 224x224). ``forward_stages(x)`` returns every
    stage's map (NCHW). Attributes: ``out_dim`` (channels of the output map), ``reduction``.
    """

    def __init__(self, config: RMTConfig | None = None, **overrides):
        super().__init__()
        config = replace(config or RMTConfig(), **overrides)
        self.config = config
        self.out_dim = config.embed_dims[-1]
        self.reduction = config.reduction
        self.stem = ConvStem(config.in_chans, config.embed_dims[0], config.stem_stride)
        total = sum(config.depths)
        rates = [config.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages, start = [], 0
        for i, depth in enumerate(config.depths):
            stages.append(
                RMTStage(
                    in_dim=config.embed_dims[max(i - 1, 0)],
                    dim=config.embed_dims[i],
                    depth=depth,
                    num_heads=config.num_heads[i],
                    init_value=config.init_values[i],
                    heads_range=config.heads_ranges[i],
                    mlp_ratio=config.mlp_ratios[i],
                    axial=config.chunkwise_stages[i],
                    drop_paths=rates[start : start + depth],
                    layerscale=config.layerscale[i],
                    layer_init_value=config.layer_init_value,
                    downsample=i > 0,
                )
            )
            start += depth
        self.stages = nn.ModuleList(stages)
        # Last, as in the released code: it sets q/k/v too (std 0.02), see the module docstring.
        self.apply(init_transformer_weights)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Every stage's output map, NCHW, from the first (``H/stem``) to the last."""
        x = self.stem(x).permute(0, 2, 3, 1)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x.permute(0, 3, 1, 2))
        return outs

    def forward(self, x: Tensor) -> Tensor:
        """``x`` float ``[N, in_chans, H, W]`` -> the last stage's map, contiguous
        ``[N, embed_dims[-1], ceil(H / reduction), ceil(W / reduction)]`` (NCHW; 512 x 14 x 14
        for the ``gamdss`` preset at 224 x 224). ``ValueError`` for another input layout."""
        if x.ndim != 4 or x.shape[1] != self.config.in_chans:
            raise ValueError(f"RMT input must be [N, {self.config.in_chans}, H, W], got {tuple(x.shape)}")
        return self.forward_stages(x)[-1].contiguous()
