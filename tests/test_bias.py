"""Annotation-bias models: statistics of the presets over many draws, validity, clamping."""

from __future__ import annotations

import numpy as np
import pytest

from gamdss.data.synthetic import BIAS_PRESETS, BiasModel, get_bias, load_bias, save_bias

FPS = 200.0
TRUTH = (100, 130, 180)  # 250 ms expression, far from the clip's ends: no clamping
N_FRAMES = 400
DRAWS = 4000


def _errors(model: BiasModel, truth=TRUTH, n_frames=N_FRAMES, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ann = np.array([model.annotate(truth, FPS, rng, n_frames=n_frames) for _ in range(DRAWS)])
    return ann - np.array(truth)


def test_none_returns_the_truth():
    rng = np.random.default_rng(1)
    for truth in [(0, 0, 0), (3, 10, 40), (5, 5, 9)]:
        assert BIAS_PRESETS["none"].annotate(truth, FPS, rng, n_frames=41) == truth


def test_preset_spreads_are_ordered_and_offset_is_least_certain():
    sd = {name: _errors(get_bias(name)).std(axis=0) for name in ("careful", "typical", "multicultural")}
    for k in range(3):  # onset, apex, offset
        assert sd["multicultural"][k] > sd["typical"][k] > sd["careful"][k]
    for name, s in sd.items():
        assert s[2] > s[1], f"{name}: offset sd {s[2]:.2f} should exceed apex sd {s[1]:.2f}"


def test_typical_statistics_match_the_model():
    model = get_bias("typical")
    err = _errors(model)
    duration_ms = (TRUTH[2] - TRUTH[0]) * 1000 / FPS
    sds_frames = np.array(model.sds_ms(duration_ms)) * FPS / 1000
    # Rounding to whole frames adds about 1/12 frame^2 of variance.
    expected = np.sqrt(sds_frames**2 + 1 / 12)
    assert np.allclose(err.std(axis=0), expected, rtol=0.06)
    # apex marked late by 10 ms = 2 frames on average; onset and offset unbiased
    assert err[:, 1].mean() == pytest.approx(model.apex_shift_ms * FPS / 1000, abs=0.2)
    assert abs(err[:, 0].mean()) < 0.1 and abs(err[:, 2].mean()) < 0.3


def test_jitter_grows_with_duration():
    model = get_bias("typical")
    short = _errors(model, truth=(100, 110, 130))  # 150 ms
    long = _errors(model, truth=(100, 160, 300))  # 1 s
    assert long[:, 1].std() > short[:, 1].std() * 1.3
    assert long[:, 2].std() > short[:, 2].std() * 1.5


@pytest.mark.parametrize("name", list(BIAS_PRESETS) + ["extreme"])
def test_annotations_are_always_valid(name):
    model = BIAS_PRESETS.get(name) or BiasModel(
        "extreme", onset_sd_ms=200, apex_shift_ms=-150, apex_sd_ms=300, offset_sd_ms=400, offset_shift_ms=-300
    )
    rng = np.random.default_rng(2)
    for _ in range(800):
        n = int(rng.integers(1, 60))
        o, a, f = np.sort(rng.integers(0, n, size=3))
        oa, aa, fa = model.annotate((int(o), int(a), int(f)), FPS, rng, n_frames=n)
        assert all(isinstance(v, int) for v in (oa, aa, fa))
        assert 0 <= oa <= aa <= fa <= n - 1


def test_clamping_keeps_the_apex():
    # A huge late apex shift: the apex goes to T-1 (clipped), the offset is moved onto it.
    model = BiasModel("late", apex_shift_ms=10_000)
    assert model.annotate((2, 5, 8), FPS, np.random.default_rng(0), n_frames=12) == (2, 11, 11)
    # A huge early apex shift: apex clipped to 0, onset moved onto it, offset kept.
    model = BiasModel("early", apex_shift_ms=-10_000)
    assert model.annotate((2, 5, 8), FPS, np.random.default_rng(0), n_frames=12) == (0, 0, 8)


def test_bad_input_and_yaml(tmp_path):
    with pytest.raises(ValueError, match="truth"):
        get_bias("typical").annotate((5, 3, 8), FPS, np.random.default_rng(0), n_frames=10)
    with pytest.raises(ValueError, match="T=8"):
        get_bias("typical").annotate((1, 3, 8), FPS, np.random.default_rng(0), n_frames=8)
    with pytest.raises(ValueError, match="apex_sd_ms"):
        BiasModel("bad", apex_sd_ms=-1)
    with pytest.raises(ValueError, match="presets"):
        get_bias("sloppy")
    path = save_bias(get_bias("multicultural"), tmp_path / "bias.yaml")
    assert load_bias(path) == get_bias("multicultural")
    with pytest.raises(FileExistsError):
        save_bias(get_bias("careful"), path)
