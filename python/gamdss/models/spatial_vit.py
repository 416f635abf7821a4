"""The spatial branch: a small ViT on the resting frame (the paper's Eq. 6-7).

The resting frame (onset for the rise phase, offset or apex for the fall phase), a
normalised float ``[N, 3, H, W]`` tensor, is resized to the temporal branch's map size
``(h, w)`` (bilinear, antialiased by default), embedded with patch size 1 (a 1x1 conv
``in_chans -> embed_dim``), given a learnable position embedding, passed through ``depth``
timm ViT blocks (pre-LN, ``num_heads`` heads, MLP ``mlp_ratio·embed_dim``, qkv bias) and a
final LayerNorm, and reshaped to the map ``[N, embed_dim, h, w]`` that is summed with the
temporal map (Eq. 8).

The position embedding is learnt for ``grid_size`` (14x14 = 196 tokens in the GAMDSS
configuration); another map size (another input size, or a timm temporal branch with another
stride) uses it resampled bicubically to ``(h, w)``, so the branch follows the temporal map
for any input size.

Parameters versus the released code (``VisionTransformer_POS``, 5 classes): the released
module has 6,411,782 parameters, of which three parts never touch the output: the
``cls_token`` (512), the classification ``head`` (512·5 + 5 = 2,565) and ``to_Mask`` (513;
its size is not in our notes: it is the remainder of the count and matches a
``Linear(512, 1)``). We do not create them, so the GAMDSS spatial branch has
6,411,782 − 3,590 = **6,408,192** parameters (patch embedding 2,048, position embedding
100,352, two blocks 3,152,384 each, final norm 1,024). The output is the same function.

Resizing: the released code used torchvision ``Resize`` on tensors under torchvision 0.16,
which did not antialias; ``antialias=False`` reproduces that, the default ``True`` is what
torchvision does from 0.17 on (and what a 224 -> 14 reduction needs to avoid aliasing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from .weight_init import init_transformer_weights

__all__ = ["SpatialViT"]


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class SpatialViT(nn.Module):
    """Patch-size-1 ViT over the resting frame resized to the temporal map.

    Args:
        in_chans: channels of the resting frame (3, RGB normalised with ImageNet mean/std).
        embed_dim: token width; must equal the temporal map's channels (512 for GAMDSS).
        depth: number of timm ``Block`` layers (2). num_heads: heads per block (4).
        mlp_ratio: MLP hidden width / embed_dim (4 -> 2048). qkv_bias: bias on q/k/v (True).
        grid_size: token grid the position embedding is learnt for (``(14, 14)``).
        drop_path_rate: stochastic depth of the last block (0 in the released code).
        antialias: antialias the resize of the frame to the map size.

    ``forward(frame, size=None)``: ``frame`` float ``[N, in_chans, H, W]``; ``size`` the
    output ``(h, w)`` (default ``grid_size``) -> float ``[N, embed_dim, h, w]``.
    """

    def __init__(
        self,
        in_chans: int = 3,
        embed_dim: int = 512,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        grid_size: int | tuple[int, int] = 14,
        drop_path_rate: float = 0.0,
        antialias: bool = True,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"SpatialViT: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.grid_size = _pair(grid_size)
        self.antialias = antialias
        self.patch_embed = nn.Conv2d(in_chans, embed_dim, kernel_size=1)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid_size[0] * self.grid_size[1], embed_dim))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(
            *(Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop_path=r) for r in rates)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        trunc_normal_(self.pos_embed, std=0.02)
        self.apply(init_transformer_weights)

    def position_embedding(self, size: tuple[int, int]) -> Tensor:
        """``[1, h·w, embed_dim]``: the learnt embedding, resampled if ``size != grid_size``."""
        if tuple(size) == self.grid_size:
            return self.pos_embed
        return resample_abs_pos_embed(
            self.pos_embed, new_size=list(size), old_size=list(self.grid_size), num_prefix_tokens=0
        )

    def forward(self, frame: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """The spatial map of the resting frame, float ``[N, embed_dim, h, w]``.

        frame: float ``[N, in_chans, H, W]``, ImageNet-normalised; resized to ``(h, w)``
            when its size differs.
        size: the output ``(h, w)`` (an int: square), normally the temporal map's size; None:
            ``grid_size``.
        """
        if frame.ndim != 4 or frame.shape[1] != self.in_chans:
            raise ValueError(
                f"SpatialViT input (the resting frame) must be [N, {self.in_chans}, H, W], got {tuple(frame.shape)}"
            )
        h, w = _pair(size) if size is not None else self.grid_size
        if frame.shape[-2:] != (h, w):
            frame = F.interpolate(frame, size=(h, w), mode="bilinear", align_corners=False, antialias=self.antialias)
        tokens = self.patch_embed(frame).flatten(2).transpose(1, 2)  # [N, h·w, D]
        tokens = self.blocks(tokens + self.position_embedding((h, w)))
        tokens = self.norm(tokens)
        return tokens.transpose(1, 2).reshape(frame.shape[0], self.embed_dim, h, w)
