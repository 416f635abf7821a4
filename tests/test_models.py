"""Tests of gamdss.models: shapes, parameter counts, weight sharing, retention math, inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gamdss.models import (
    GamdssOutput,
    build_model,
    count_parameters,
    gamdss_loss,
    list_models,
    motion_inputs,
    predict,
    still_inputs,
)
from gamdss.models.inputs import IMAGENET_MEAN, IMAGENET_STD, to_grey_uint8
from gamdss.models.rmt import (
    RMT,
    AxialRetention,
    RelativePosition,
    RMTConfig,
    WholeRetention,
    axial_decay_masks,
    decay_log_gammas,
    manhattan_decay_mask,
    rmt_config,
    rope_sin_cos,
    theta_shift,
)
from gamdss.models.spatial_vit import SpatialViT


@pytest.fixture(autouse=True)
def _seed_and_threads():
    # One thread: on a small shared machine two OpenMP threads competing with other work
    # are several times slower than one.
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(num_classes=3, **kwargs):
    return build_model("gamdss_tiny", num_classes=num_classes, **kwargs)


def _inputs(n=2, size=32, in_chans=3):
    g = torch.Generator().manual_seed(1)
    return (
        torch.randn(n, in_chans, size, size, generator=g),
        torch.randn(n, in_chans, size, size, generator=g),
        torch.randn(n, 3, size, size, generator=g),
        torch.randn(n, 3, size, size, generator=g),
    )


# ------------------------------------------------------------------------------------------
# Parameter counts
# ------------------------------------------------------------------------------------------


def _rmt_block(d, ratio=3):
    f = ratio * d
    return (
        9 * d
        + d  # CPE depthwise 3x3
        + 2 * d  # LayerNorm before retention
        + 4 * (d * d + d)  # q, k, v, out projections
        + 25 * d
        + d  # LePE depthwise 5x5
        + 2 * d  # LayerNorm before the FFN
        + d * f
        + f
        + 9 * f
        + f
        + f * d
        + d
    )  # fc1, depthwise 3x3, fc2


def test_gamdss_parameter_count_matches_released_notes():
    num_classes = 5
    model = build_model("gamdss", num_classes=num_classes)
    unit = model.unit

    # RMT branch + head, by hand from the reference notes (section 3).
    stem = (3 * 32 * 9 + 32 + 64) + (32 * 32 * 9 + 32 + 64) + (32 * 64 * 9 + 64 + 128) + (64 * 64 * 9 + 64 + 128)
    dims, depths = (64, 128, 256, 512), (1, 1, 2, 1)
    blocks = sum(n * _rmt_block(d) for d, n in zip(dims, depths))
    downsample = sum(a * b * 9 + b + 2 * b for a, b in zip(dims[:-1], dims[1:]))
    head = (512 * 1024 + 1024) + 2 * 1024 + (1024 * num_classes + num_classes)
    assert stem + blocks + downsample + head == 6_381_221  # the released RMT count
    rmt_and_head = count_parameters(unit.temporal) + sum(count_parameters(m) for m in (unit.proj, unit.norm, unit.head))
    assert rmt_and_head == 6_381_221

    # Spatial ViT: the released module has 6,411,782 parameters; three parts of it never
    # reach the output and are not built here: cls_token (512), the head 512->5 (2,565) and
    # to_Mask. to_Mask's size is not in the notes: it is what remains, 513 (= Linear(512, 1)).
    d = 512
    vit_block = 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * 2048 + 2048) + (2048 * d + d)
    ours_vit = (3 * d + d) + 196 * d + 2 * vit_block + 2 * d  # patch, pos, 2 blocks, norm
    cls_token, released_head = 512, 512 * num_classes + num_classes
    to_mask = 6_411_782 - ours_vit - cls_token - released_head
    assert to_mask == 512 + 1
    assert count_parameters(unit.spatial) == ours_vit == 6_408_192

    total = count_parameters(model)
    assert total == 6_381_221 + 6_408_192 == 12_789_413
    assert 6_381_221 + 6_411_782 - total == cls_token + released_head + to_mask == 3_590


def test_rmt_t_parameter_count_matches_published():
    # The notes' counter gives 14.33M for qhfan/RMT RMT_T3 with its 1000-class head.
    model = build_model("gamdss_rmt_t", num_classes=1000, spatial=False)
    assert abs(count_parameters(model) - 14.33e6) < 5e3
    assert model.unit.temporal.config.depths == (2, 2, 8, 2)
    assert model.unit.temporal.reduction == 32


def test_tiny_is_small():
    assert 200_000 < count_parameters(_tiny()) < 800_000


# ------------------------------------------------------------------------------------------
# Shapes
# ------------------------------------------------------------------------------------------


def test_gamdss_shapes_224():
    model = build_model("gamdss", num_classes=5).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert model.unit.temporal(x).shape == (1, 512, 14, 14)
        out = model(x, x, x, x)
    assert isinstance(out, GamdssOutput)
    assert out.rise_logits.shape == out.fall_logits.shape == (1, 5)
    assert out.rise_features.shape == out.fall_features.shape == (1, 1024)
    assert out.rise_logits.dtype == torch.float32


@pytest.mark.parametrize("size, side", [(64, 4), (112, 7), (50, 4)])
def test_tiny_shapes_any_size(size, side):
    model = _tiny(num_classes=4)
    x = torch.randn(2, 3, size, size)
    assert model.unit.temporal(x).shape == (2, 128, side, side)
    out = model(x, x, x, x)
    assert out.rise_logits.shape == (2, 4) and out.fall_features.shape == (2, 256)


def test_flow_input_two_channels():
    model = _tiny(in_chans=2)
    rise, fall, rs, fs = _inputs(in_chans=2)
    out = model(rise, fall, rs, fs)
    assert out.rise_logits.shape == (2, 3)
    assert model.unit.temporal.stem.layers[0].in_channels == 2
    with pytest.raises(ValueError, match="in_chans=2"):
        model(torch.randn(2, 3, 32, 32), fall, rs, fs)


@pytest.mark.parametrize("name", ["resnet18", "convnext_atto"])
def test_timm_temporal_branch(name):
    model = build_model(f"timm:{name}", num_classes=3, img_size=64, spatial_kwargs=dict(depth=1))
    x = torch.randn(2, 3, 64, 64)
    assert model.unit.temporal(x).shape == (2, 512, 2, 2)  # stride 32, projected to 512
    out = model(x, x, x, x)
    assert out.rise_logits.shape == (2, 3) and out.rise_features.shape == (2, 1024)


def test_timm_swin_fixed_size_and_channels_last():
    # Swin has a fixed input size (built for img_size) and channels-last feature maps.
    model = build_model(
        "timm:swin_tiny_patch4_window7_224",
        num_classes=3,
        img_size=64,
        spatial_kwargs=dict(depth=1),
        timm_kwargs=dict(embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=2),
    )
    assert model.unit.temporal.fixed_input_size and model.unit.temporal.channels_last
    x = torch.randn(2, 3, 64, 64)
    assert model.unit.temporal(x).shape == (2, 512, 2, 2)
    assert model(x, x, x, x).rise_logits.shape == (2, 3)


def test_registry():
    names = list_models()
    for name in ("gamdss", "gamdss_nospatial", "gamdss_rmt_t", "gamdss_tiny"):
        assert name in names
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope", num_classes=3)
    with pytest.raises(ValueError, match="neither an RMT branch"):
        build_model("timm:not_a_model_xyz", num_classes=3)
    nospatial = build_model("gamdss_nospatial", num_classes=5)
    assert nospatial.unit.spatial is None
    assert count_parameters(nospatial) == 6_381_221
    rise, fall, _, _ = _inputs()
    assert _tiny(spatial=False)(rise, fall).rise_logits.shape == (2, 3)


def test_checkpoint_round_trip(tmp_path):
    model = _tiny().eval()
    path = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), path)
    loaded = build_model("gamdss_tiny", num_classes=3, checkpoint=str(path)).eval()
    args = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(model(*args).rise_logits, loaded(*args).rise_logits)


# ------------------------------------------------------------------------------------------
# Rise/fall sharing, phases, loss, prediction
# ------------------------------------------------------------------------------------------


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}


def test_rise_fall_share_one_unit():
    model = _tiny()
    assert count_parameters(model) == count_parameters(model.unit)
    assert [n for n, _ in model.named_children()] == ["unit"]
    target = torch.tensor([0, 2])
    args = _inputs()

    g_rise = _grads(model, F.cross_entropy(model(*args).rise_logits, target))
    g_fall = _grads(model, F.cross_entropy(model(*args).fall_logits, target))
    g_both = _grads(model, gamdss_loss(model(*args), target))
    for name in (
        "unit.temporal.stem.layers.0.weight",
        "unit.head.weight",
        "unit.spatial.patch_embed.weight",
        "unit.proj.weight",
    ):
        assert g_rise[name].abs().sum() > 0, name
        assert g_fall[name].abs().sum() > 0, name
    for name, g in g_both.items():
        torch.testing.assert_close(g, g_rise[name] + g_fall[name], rtol=1e-4, atol=1e-6)
    # Every trainable parameter receives gradient from both phases.
    for name in dict(model.named_parameters()):
        assert g_rise[name].abs().sum() > 0 and g_fall[name].abs().sum() > 0, name


def test_single_phase_and_loss():
    target = torch.tensor([1, 0])
    rise, fall, rs, fs = _inputs()
    rise_only = _tiny(phases=("rise",))
    out = rise_only(rise, None, rs, None)
    assert out.fall_logits is None and out.fall_features is None
    torch.testing.assert_close(gamdss_loss(out, target), F.cross_entropy(out.rise_logits, target))
    with pytest.raises(ValueError, match="fall"):
        predict(out, "fused")
    fall_only = _tiny(phases=("fall",))
    assert fall_only(None, fall, None, fs).rise_logits is None

    model = _tiny()
    out = model(rise, fall, rs, fs)
    expected = F.cross_entropy(out.rise_logits, target) + 0.3 * F.cross_entropy(out.fall_logits, target)
    torch.testing.assert_close(gamdss_loss(out, target, fall_weight=0.3), expected)
    with pytest.raises(ValueError, match="rise_still"):
        model(rise, fall, None, fs)
    with pytest.raises(ValueError, match="phases"):
        _tiny(phases=("up",))


def test_predict_modes_hand_computed():
    rise_p = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    fall_p = torch.tensor([[0.1, 0.2, 0.7], [0.3, 0.1, 0.6]])
    out = GamdssOutput(rise_p.log() + 3.0, fall_p.log() - 1.0, None, None)  # softmax is shift-free
    pred, prob = predict(out, "rise")
    assert pred.tolist() == [0, 1] and pred.dtype == torch.int64
    torch.testing.assert_close(prob, rise_p)
    pred, prob = predict(out, "fall")
    assert pred.tolist() == [2, 2]
    pred, prob = predict(out, "fused")
    torch.testing.assert_close(prob, torch.tensor([[0.35, 0.25, 0.40], [0.25, 0.30, 0.45]]))
    assert pred.tolist() == [2, 2]
    with pytest.raises(ValueError, match="mode"):
        predict(out, "max")


# ------------------------------------------------------------------------------------------
# Retention math
# ------------------------------------------------------------------------------------------


def test_decay_values_of_the_presets():
    torch.testing.assert_close(decay_log_gammas(2, 2, 4).exp(), torch.tensor([0.75, 0.9375]))
    torch.testing.assert_close(decay_log_gammas(2, 2, 6).exp(), torch.tensor([0.75, 0.96875]))


def test_manhattan_decay_mask_hand_computed():
    gamma = torch.tensor([0.5, 0.9])
    mask = manhattan_decay_mask(2, 3, gamma.log())  # tokens (i, j) in raster order
    assert mask.shape == (2, 6, 6)
    coords = [(i, j) for i in range(2) for j in range(3)]
    for h, g in enumerate(gamma.tolist()):
        for a, (i, j) in enumerate(coords):
            for b, (k, lane) in enumerate(coords):
                assert math.isclose(mask[h, a, b].exp().item(), g ** (abs(i - k) + abs(j - lane)), rel_tol=1e-6)
    # token (0,0) vs (1,2): distance 3
    assert math.isclose(mask[0, 0, 5].exp().item(), 0.125, rel_tol=1e-6)
    torch.testing.assert_close(mask, mask.transpose(1, 2))  # bidirectional, not causal
    mask_h, mask_w = axial_decay_masks(2, 3, gamma.log())
    torch.testing.assert_close(mask_w[1].exp(), torch.tensor([[1, 0.9, 0.81], [0.9, 1, 0.9], [0.81, 0.9, 1]]))
    # 2-D mask = 1-D masks added (the decay factorises over the two axes)
    torch.testing.assert_close(mask, (mask_h[:, :, None, :, None] + mask_w[:, None, :, None, :]).reshape(2, 6, 6))


def test_theta_shift_is_relative():
    sin, cos = rope_sin_cos(3, 4, 8)
    q, k = torch.randn(8), torch.randn(8)
    rq = theta_shift(q.expand(3, 4, 8), sin, cos).reshape(12, 8)
    rk = theta_shift(k.expand(3, 4, 8), sin, cos).reshape(12, 8)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm().expand(12))
    dots = rq @ rk.T  # depends only on the raster offset n − m
    for off in (-5, 0, 3):
        vals = torch.stack([dots[n, n - off] for n in range(12) if 0 <= n - off < 12])
        torch.testing.assert_close(vals, vals[:1].expand_as(vals), rtol=1e-4, atol=1e-5)


def _pair_of_retentions(dim=8, heads=2):
    axial, whole = AxialRetention(dim, heads), WholeRetention(dim, heads)
    whole.load_state_dict(axial.state_dict())
    return axial, whole


def _priors(h, w, dim=8, heads=2):
    rel_a = RelativePosition(dim, heads, 2.0, 4.0, axial=True)
    rel_w = RelativePosition(dim, heads, 2.0, 4.0, axial=False)
    return rel_a(h, w, torch.float32), rel_w(h, w, torch.float32)


def test_axial_equals_whole_when_logits_are_content_free():
    # With q = 0 the logits are just the decay: γ^(|Δh|+|Δw|) = γ^|Δh|·γ^|Δw| factorises,
    # so the W-then-H axial pass equals whole retention exactly.
    axial, whole = _pair_of_retentions()
    for m in (axial, whole):
        torch.nn.init.zeros_(m.q_proj.weight)
        torch.nn.init.zeros_(m.q_proj.bias)
    prior_a, prior_w = _priors(3, 5)
    x = torch.randn(2, 3, 5, 8)
    torch.testing.assert_close(axial(x, prior_a), whole(x, prior_w), rtol=1e-5, atol=1e-5)


def test_axial_equals_whole_on_a_single_row():
    # H = 1: the H pass is a softmax over one key, so both reduce to 1-D retention along W.
    axial, whole = _pair_of_retentions()
    prior_a, prior_w = _priors(1, 6)
    x = torch.randn(2, 1, 6, 8)
    torch.testing.assert_close(axial(x, prior_a), whole(x, prior_w), rtol=1e-5, atol=1e-5)
    # ...and they differ once content-dependent logits meet a second axis
    prior_a, prior_w = _priors(3, 4)
    x = torch.randn(2, 3, 4, 8)
    assert not torch.allclose(axial(x, prior_a), whole(x, prior_w), atol=1e-4)


def test_whole_retention_matches_explicit_formula():
    _, whole = _pair_of_retentions()
    _, prior = _priors(2, 3)
    x = torch.randn(1, 2, 3, 8)
    heads, d = 2, 4

    def split(t):
        return t.reshape(1, 6, heads, d).permute(0, 2, 1, 3)

    sin, cos = (t.reshape(6, d) for t in (prior.sin, prior.cos))
    q = theta_shift(split(whole.q_proj(x)), sin, cos)
    k = theta_shift(split(whole.k_proj(x)) * d**-0.5, sin, cos)
    v = split(whole.v_proj(x))
    attn = torch.softmax(q @ k.transpose(-1, -2) + prior.mask, dim=-1)
    out = (attn @ v).permute(0, 2, 1, 3).reshape(1, 2, 3, 8)
    lepe = whole.lepe(whole.v_proj(x))
    torch.testing.assert_close(whole(x, prior), whole.out_proj(out + lepe), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axial", [True, False])
def test_retention_is_bidirectional(axial):
    # Not causal: the first token's output depends on the last token (raster order).
    module = (AxialRetention if axial else WholeRetention)(8, 2)
    torch.nn.init.zeros_(module.lepe.conv.weight)  # only the attention path is left
    torch.nn.init.zeros_(module.lepe.conv.bias)
    prior = RelativePosition(8, 2, 2.0, 4.0, axial=axial)(4, 4, torch.float32)
    x = torch.randn(1, 4, 4, 8)
    y = x.clone()
    y[0, 3, 3] += 5.0
    assert not torch.allclose(module(x, prior)[0, 0, 0], module(y, prior)[0, 0, 0])


def test_rmt_config_validation_and_presets():
    assert RMT(rmt_config("gamdss")).reduction == 16
    with pytest.raises(ValueError, match="even"):
        RMTConfig(num_heads=(3, 2, 2, 2))
    with pytest.raises(ValueError, match="one per stage"):
        RMTConfig(depths=(1, 1, 1))
    cfg = rmt_config("gamdss")
    assert cfg.chunkwise_stages == (True, True, False, False) and cfg.stem_stride == 2
    model = RMT(cfg)
    kinds = [type(s.blocks[0].retention).__name__ for s in model.stages]
    assert kinds == ["AxialRetention", "AxialRetention", "WholeRetention", "WholeRetention"]
    rates = [
        b.drop_path.drop_prob if hasattr(b.drop_path, "drop_prob") else 0.0 for s in model.stages for b in s.blocks
    ]
    assert rates == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1])


def _stage_weights(stage, names):
    """The weights of the linear layers ``names`` of every block of ``stage``, flattened together."""
    return torch.cat([getattr(b.retention, n).weight.detach().flatten() for b in stage.blocks for n in names])


def test_init_follows_the_released_order_qkv_std_002_in_every_stage():
    # The released code's model-wide truncated-normal init (std 0.02) runs after the retention
    # module's own Xavier init (gain 2^-2.5), so it wins (released-code notes section 3). With
    # Xavier winning the stds would be 0.022, 0.016, 0.011, 0.0078 (it scales with 1/sqrt(dim)).
    model = RMT(rmt_config("gamdss"))
    for i, stage in enumerate(model.stages):
        w = _stage_weights(stage, ("q_proj", "k_proj", "v_proj"))
        dim = model.config.embed_dims[i]
        assert w.numel() == 3 * dim * dim * model.config.depths[i]
        # The sd of n normal samples has a standard error of sd / sqrt(2 n); the mean one of sd / sqrt(n).
        # (The truncation at +-2 is 100 sd away: the distribution is normal here.)
        n = w.numel()
        assert w.std().item() == pytest.approx(0.02, abs=5 * 0.02 / math.sqrt(2 * n)), f"stage {i}"
        assert w.mean().item() == pytest.approx(0.0, abs=5 * 0.02 / math.sqrt(n)), f"stage {i}"
        xavier = 2**-2.5 * math.sqrt(2 / (2 * dim))
        assert abs(xavier - 0.02) > 10 * 0.02 / math.sqrt(2 * n)  # the test tells the two orders apart


def test_init_of_the_other_layers_is_unchanged():
    model = RMT(rmt_config("gamdss"))
    for stage in model.stages:
        w = _stage_weights(stage, ("out_proj",))
        assert w.std().item() == pytest.approx(0.02, abs=5 * 0.02 / math.sqrt(2 * w.numel()))
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            assert module.weight.abs().max().item() <= 2.0, name  # truncated at +-2 (absolute)
            assert torch.count_nonzero(module.bias) == 0, name
            if not name.endswith(("q_proj", "k_proj", "v_proj", "out_proj")):  # FFN: large enough alone
                sd = module.weight.std().item()
                assert sd == pytest.approx(0.02, abs=5 * 0.02 / math.sqrt(2 * module.weight.numel())), name
        elif isinstance(module, (torch.nn.LayerNorm, torch.nn.BatchNorm2d)):
            assert torch.all(module.weight == 1) and torch.count_nonzero(module.bias) == 0, name
        elif isinstance(module, torch.nn.Conv2d):
            # PyTorch's default: uniform in +-1/sqrt(fan_in) (sd bound / sqrt(3)), bias likewise.
            fan_in = module.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            assert module.weight.abs().max().item() <= bound, name
            assert module.bias.abs().max().item() <= bound, name
            n = module.weight.numel()
            if n >= 1000:
                sd = bound / math.sqrt(3)
                # uniform: the sample variance has sd sqrt(0.8 / n) * sd^2 (excess kurtosis -1.2)
                assert module.weight.var().item() == pytest.approx(sd**2, abs=5 * math.sqrt(0.8 / n) * sd**2), name


# ------------------------------------------------------------------------------------------
# Spatial branch
# ------------------------------------------------------------------------------------------


def test_spatial_branch_follows_map_size():
    vit = SpatialViT(embed_dim=16, depth=1, num_heads=2, grid_size=7)
    frame = torch.randn(2, 3, 56, 56)
    assert vit(frame).shape == (2, 16, 7, 7)
    assert vit(frame, size=(4, 5)).shape == (2, 16, 4, 5)  # resampled position embedding
    with pytest.raises(ValueError, match="resting frame"):
        vit(torch.randn(2, 2, 56, 56))


def test_spatial_resize_antialias():
    # 56 -> 7 of white noise: the antialiased resize averages ~8x8 pixels per output, the
    # plain bilinear one (released code, torchvision 0.16) interpolates only 2x2 of them.
    seen = {}

    def grab(key):
        return lambda module, args: seen.__setitem__(key, args[0])

    frame = torch.randn(1, 3, 56, 56)
    for antialias in (True, False):
        vit = SpatialViT(embed_dim=16, depth=1, num_heads=2, grid_size=7, antialias=antialias)
        vit.patch_embed.register_forward_pre_hook(grab(antialias))
        vit(frame)
    assert seen[True].shape == seen[False].shape == (1, 3, 7, 7)
    assert seen[True].std() < 0.5 * seen[False].std()


def test_still_inputs_choice():
    a, b, c = (torch.full((1, 3, 2, 2), float(i)) for i in range(3))
    assert still_inputs(a, b, c)[1] is c
    assert still_inputs(a, b, c, fall_still="apex")[1] is b


# ------------------------------------------------------------------------------------------
# Motion inputs
# ------------------------------------------------------------------------------------------


def test_difference_inputs():
    onset, apex, offset = (torch.randn(2, 3, 8, 8) for _ in range(3))
    rise, fall = motion_inputs(onset, apex, offset)
    torch.testing.assert_close(rise, apex - onset)
    torch.testing.assert_close(fall, apex - offset)
    with pytest.raises(TypeError, match="normalised float"):
        motion_inputs(onset.to(torch.uint8), apex, offset)


def _texture(h, w, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 255, (h, w)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 2.0)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return np.repeat(img[..., None], 3, axis=2).round().astype(np.uint8)


def test_flow_of_a_known_shift():
    base = _texture(64, 64)
    apex = np.roll(base, shift=(1, 2), axis=(0, 1))  # content moves 2 px right, 1 down
    offset = np.roll(base, shift=(1, 3), axis=(0, 1))  # offset -> apex: 1 px left
    frames = [torch.from_numpy(f[None]) for f in (base, apex, offset)]  # uint8 [1, H, W, 3]
    rise, fall = motion_inputs(*frames, kind="flow")
    assert rise.shape == (1, 2, 64, 64) and rise.dtype == torch.float32
    inner = (slice(None), slice(16, 48), slice(16, 48))
    assert rise[0, 0][inner[1:]].median().item() == pytest.approx(2.0, abs=0.2)
    assert rise[0, 1][inner[1:]].median().item() == pytest.approx(1.0, abs=0.2)
    assert fall[0, 0][inner[1:]].median().item() == pytest.approx(-1.0, abs=0.2)
    assert fall[0, 1][inner[1:]].median().item() == pytest.approx(0.0, abs=0.2)
    rise_half, _ = motion_inputs(*frames, kind="flow", flow_scale=2.0)
    torch.testing.assert_close(rise_half, rise / 2)

    # Normalised float frames [N, 3, H, W] give the same grey images, hence the same flow.
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    normed = [(f.permute(0, 3, 1, 2).float() / 255 - mean) / std for f in frames]
    assert torch.equal(to_grey_uint8(normed[1]), to_grey_uint8(frames[1]))
    rise_f, _ = motion_inputs(*normed, kind="flow")
    torch.testing.assert_close(rise_f, rise)
