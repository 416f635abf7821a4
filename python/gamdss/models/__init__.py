"""Models of the GAMDSS paper: RMT temporal branch, ViT spatial branch, the shared S-T unit.

Pick a model by name (timm-style registry)::

    from gamdss.models import build_model, list_models
    model = build_model("gamdss", num_classes=5)                 # the released configuration
    model = build_model("timm:resnet18", num_classes=5)          # Table VI backbones
    model = build_model("gamdss", num_classes=5, in_chans=2)     # optical-flow input (Table VII)
    out = model(rise_motion, fall_motion, rise_still, fall_still)  # GamdssOutput
    loss = gamdss_loss(out, target); pred, prob = predict(out, "fused")

Registered names (:func:`list_models`):

- ``gamdss``: RMT ``gamdss`` preset + spatial ViT, 12,789,413 parameters for 5 classes
  (the released code counts 12,793,003: we drop its 3,590 unused ViT parameters);
- ``gamdss_nospatial``: the same without the spatial branch (the paper's "W/O S");
- ``gamdss_rmt_t``: the published RMT-T as temporal branch (stem stride 4, 7x7 map);
- ``gamdss_tiny``: dims 16/32/64/128, a 128-wide spatial ViT, 256 features, built for
  112x112 (any size works; the map is H/16), for tests and CPU demos;
- ``timm:<name>``: any timm model as temporal branch, with the spatial branch.

Every builder takes :class:`GamdssModel`'s keyword arguments (``in_chans``, ``phases``,
``spatial``, ``img_size``, ``drop_path_rate``, ...), which override the preset's.
``checkpoint=PATH`` loads a state dict saved from the same model (``torch.save(
model.state_dict(), PATH)``); nothing is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .gamdss import PHASES, PREDICT_MODES, GamdssModel, GamdssOutput, gamdss_loss, predict
from .inputs import IMAGENET_MEAN, IMAGENET_STD, motion_inputs, still_inputs
from .rmt import RMT, RMT_PRESETS, RMTConfig, rmt_config
from .spatial_vit import SpatialViT
from .st_unit import STUnit, TimmTemporal, build_st_unit, build_temporal, count_parameters

__all__ = [
    "build_model",
    "check_checkpoint",
    "read_checkpoint",
    "list_models",
    "register_model",
    "GamdssModel",
    "GamdssOutput",
    "gamdss_loss",
    "predict",
    "PHASES",
    "PREDICT_MODES",
    "motion_inputs",
    "still_inputs",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RMT",
    "RMTConfig",
    "RMT_PRESETS",
    "rmt_config",
    "SpatialViT",
    "STUnit",
    "TimmTemporal",
    "build_st_unit",
    "build_temporal",
    "count_parameters",
]

_REGISTRY: dict[str, Callable[..., GamdssModel]] = {}
TIMM_PREFIX = "timm:"


def register_model(name: str):
    """Decorator: register ``fn(num_classes, **kwargs) -> GamdssModel`` under ``name``."""

    def decorate(fn):
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return decorate


def _with_defaults(kwargs: dict, **defaults) -> dict:
    return {**defaults, **kwargs}


@register_model("gamdss")
def gamdss(num_classes: int, **kwargs) -> GamdssModel:
    """Released GAMDSS configuration: RMT (64/128/256/512, depths 1/1/2/1) + spatial ViT."""
    return GamdssModel(num_classes, **_with_defaults(kwargs, temporal="rmt_gamdss"))


@register_model("gamdss_nospatial")
def gamdss_nospatial(num_classes: int, **kwargs) -> GamdssModel:
    """GAMDSS without the spatial branch."""
    return GamdssModel(num_classes, **_with_defaults(kwargs, temporal="rmt_gamdss", spatial=False))


@register_model("gamdss_rmt_t")
def gamdss_rmt_t(num_classes: int, **kwargs) -> GamdssModel:
    """The published RMT-T (depths 2/2/8/2, heads 4/4/8/16, stem stride 4) + spatial ViT."""
    return GamdssModel(num_classes, **_with_defaults(kwargs, temporal="rmt_t"))


@register_model("gamdss_tiny")
def gamdss_tiny(num_classes: int, **kwargs) -> GamdssModel:
    """A few-hundred-K-parameter GAMDSS for tests and CPU demos (map side = input side / 16)."""
    return GamdssModel(
        num_classes,
        **_with_defaults(
            kwargs,
            temporal="rmt_tiny",
            img_size=112,
            feature_dim=256,
            spatial_kwargs=dict(depth=2, num_heads=2, mlp_ratio=2.0),
        ),
    )


def list_models() -> list[str]:
    """Registered model names (plus ``timm:<name>`` for any timm model), sorted."""
    return sorted(_REGISTRY)


def read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """The state dict saved at ``path`` (a bare state dict, or one under ``"model"``), read
    with ``weights_only=True`` (never runs code from the file); ``ValueError`` naming the file
    when it is missing, damaged or not a state dict."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file; all mean: unusable
        last = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise ValueError(f"checkpoint {path} does not load as a plain-data state dict ({last})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"checkpoint {path} is not a state dict of tensors")
    return state


def _mismatches(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``state`` from loading strictly into ``model``: missing and unexpected keys,
    and tensors of another shape (e.g. ``head.weight: [3, 256] in the file, [5, 256] here``)."""
    own = model.state_dict()
    out = [f"missing {k}" for k in own if k not in state]
    out += [f"unexpected {k}" for k in state if k not in own]
    out += [
        f"{k}: {list(state[k].shape)} in the file, {list(v.shape)} in the model"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    return out


def check_checkpoint(model: torch.nn.Module, path: str, state: dict[str, torch.Tensor] | None = None) -> None:
    """``ValueError`` naming ``path`` unless its state dict (``state`` when already read) fits
    ``model`` (same keys and shapes); ``model`` may be on the meta device (nothing is copied
    into it)."""
    bad = _mismatches(model, read_checkpoint(path) if state is None else state)
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise ValueError(f"checkpoint {path} does not fit the model: {'; '.join(bad[:3])}{more}")


def build_model(name: str, num_classes: int, *, checkpoint: str | None = None, **kwargs) -> GamdssModel:
    """Build the model registered as ``name`` (or ``timm:<timm name>``) for ``num_classes``.

    ``kwargs`` go to :class:`GamdssModel`. ``checkpoint``: path of a saved state dict to load
    (strict; ``ValueError`` naming the file when it does not load or fit, see
    :func:`check_checkpoint`). Raises ValueError for an unknown name, listing the known ones.
    """
    if name.startswith(TIMM_PREFIX):
        model = GamdssModel(num_classes, **_with_defaults(kwargs, temporal=name))
    elif name in _REGISTRY:
        model = _REGISTRY[name](num_classes, **kwargs)
    else:
        raise ValueError(f"unknown model {name!r}; known: {list_models()} or '{TIMM_PREFIX}<timm model name>'")
    if checkpoint is not None:
        state = read_checkpoint(checkpoint)
        check_checkpoint(model, checkpoint, state)
        model.load_state_dict(state)
    return model
