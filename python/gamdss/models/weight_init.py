"""Weight initialisation shared by the transformer backbones (:mod:`.rmt`, :mod:`.spatial_vit`)."""

from __future__ import annotations

from timm.layers import trunc_normal_
from torch import nn


def init_transformer_weights(module: nn.Module) -> None:
    """ViT-style init, for ``model.apply``: ``Linear`` weights truncated normal (sd 0.02) and
    zero biases; ``LayerNorm`` weight 1 and bias 0. Other modules are left as they are."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
