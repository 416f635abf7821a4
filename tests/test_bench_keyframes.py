"""The keyframe-recovery benchmark (gamdss.bench) on a tiny configuration."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("gamdss.data.synthetic")

from gamdss.bench import keyframes  # noqa: E402
from gamdss.bench.metrics import METRICS, error_stats  # noqa: E402


def test_error_stats_by_hand():
    # errors in frames [1, 0, 3, -2]; in ms [10, 0, 60, -10]
    stats = error_stats([1, 2, 5, 4], [0, 2, 2, 6], [100, 100, 50, 200])
    assert stats["n"] == 4
    assert stats["mean_abs_frames"] == pytest.approx(1.5)
    assert stats["median_abs_frames"] == pytest.approx(1.5)
    assert stats["p90_abs_frames"] == pytest.approx(2.7)  # sorted 0 1 2 3, position 2.7
    assert stats["mean_abs_ms"] == pytest.approx(20.0)
    assert stats["median_abs_ms"] == pytest.approx(10.0)
    assert stats["p90_abs_ms"] == pytest.approx(45.0)  # sorted 0 10 10 60, 10 + 0.7 * 50
    assert stats["mean_signed_frames"] == pytest.approx(0.5)
    assert stats["mean_signed_ms"] == pytest.approx(15.0)
    assert stats["exact_rate"] == pytest.approx(0.25)
    assert set(stats) == set(METRICS)
    empty = error_stats([], [], 200)
    assert empty["n"] == 0 and np.isnan(empty["mean_abs_ms"])
    with pytest.raises(ValueError, match="predicted has 2 values, truth 3"):
        error_stats([1, 2], [1, 2, 3], 30)


def test_stat_rows_group_by_frame_rate():
    pred = np.array([[0, 5, 9], [1, 4, 8], [0, 2, 3]])
    truth = np.array([[0, 4, 9], [0, 4, 8], [0, 2, 3]])
    fps = np.array([30.0, 30.0, 200.0])
    rows = keyframes.stat_rows({"bias": "x", "flicker_gl": 0.0, "method": "m", "window": "", "distance": "",
                                "lam": ""}, pred, truth, fps, keyframes=("onset", "apex"))
    by = {(r["keyframe"], r["fps"]): r for r in rows}
    assert set(by) == {(k, f) for k in ("onset", "apex") for f in ("all", "30", "200")}
    assert by[("apex", "all")]["mean_abs_frames"] == pytest.approx(1 / 3)
    assert by[("apex", "30")]["mean_abs_ms"] == pytest.approx(1000 / 30 / 2)
    assert by[("onset", "200")]["n"] == 1 and by[("onset", "200")]["mean_abs_frames"] == 0


TINY = dict(clips=4, fps=(60.0, 90.0), size=32, biases=("none", "typical"), flicker_gl=(0.0, 2.0),
            lams=(0.0, 0.2), table_lams=(0.2,), seed=5)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "keyframes"
    config = keyframes.KeyframeBenchConfig(**TINY)
    return config, out, keyframes.run_keyframe_bench(config, out, progress=False)


def test_outputs_and_csv_columns(tiny_run):
    config, out, outputs = tiny_run
    with open(outputs.csv, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        n_rows = sum(1 for _ in reader)
    assert tuple(header) == keyframes.COLUMNS
    # per (bias, flicker): annotation + 3 windows x 3 distances x 2 lams, 3 keyframes, 3 fps groups
    # (all, 60, 90); plus 4 spotters x apex x 3 fps groups.
    assert n_rows == 2 * 2 * ((1 + 18) * 3 * 3 + 4 * 3)
    for plot in outputs.plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert keyframes.KeyframeBenchConfig.load(outputs.config) == config
    assert "apex: mean abs ms" in outputs.table_text and "optical_flow" in outputs.table_text


def test_unbiased_annotation_and_lambda_zero_have_zero_error(tiny_run):
    _, _, outputs = tiny_run
    rows = keyframes.read_csv(outputs.csv)
    annotation = {(r["flicker_gl"], r["keyframe"], r["fps"]): r for r in rows
                  if r["method"] == "annotation" and r["bias"] == "none"}
    assert annotation and all(r["mean_abs_frames"] == 0 and r["exact_rate"] == 1 for r in annotation.values())
    lam0 = [r for r in rows if r["method"] == "gamdss" and r["lam"] == 0.0]
    assert len(lam0) == 2 * 2 * 9 * 3 * 3
    for r in lam0:  # with lam = 0 reselection returns the annotation, for every bias model
        ann = next(a for a in rows if a["method"] == "annotation" and
                   all(a[k] == r[k] for k in ("bias", "flicker_gl", "keyframe", "fps")))
        assert all(r[m] == ann[m] for m in METRICS), (r, ann)


def test_biased_annotation_has_errors_and_flicker_leaves_it_alone(tiny_run):
    _, _, outputs = tiny_run
    rows = keyframes.read_csv(outputs.csv)
    typical = {r["flicker_gl"]: r for r in rows if r["method"] == "annotation" and r["bias"] == "typical"
               and r["keyframe"] == "offset" and r["fps"] == "all"}
    assert typical[0.0]["mean_abs_frames"] > 0
    assert typical[0.0]["mean_abs_frames"] == typical[2.0]["mean_abs_frames"]


def test_refuses_to_overwrite(tiny_run):
    config, out, outputs = tiny_run
    before = outputs.csv.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        keyframes.run_keyframe_bench(config, out, progress=False)
    assert outputs.csv.read_bytes() == before
    from gamdss.cli import main

    assert main(["bench", "keyframes", "--out", str(out), "--clips", "2", "--no-progress"]) == 1
    assert outputs.csv.read_bytes() == before


def test_clips_are_deterministic_and_shared_across_biases():
    config = keyframes.KeyframeBenchConfig(**{**TINY, "clips": 2})
    specs = keyframes.clip_specs(config)
    assert [s.fps for s in specs] == [60.0, 90.0]
    synthetic = keyframes.synthetic_config(config, specs[0].fps, 0.0)
    a = keyframes.generated_clip(synthetic, specs[0].seed, specs[0].subject)
    keyframes.generated_clip.cache_clear()
    b = keyframes.generated_clip(synthetic, specs[0].seed, specs[0].subject)
    assert a is not b and bool((a.frames == b.frames).all())
    ann1 = keyframes.annotate([a, a], specs, "typical", seed=5)
    ann2 = keyframes.annotate([b, b], specs, "typical", seed=5)
    assert (ann1 == ann2).all()
    assert (keyframes.annotate([a], specs[:1], "none", seed=5)[0] == a.truth).all()


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="biases"):
        keyframes.KeyframeBenchConfig(biases=("sloppy",))
    with pytest.raises(ValueError, match="clips"):
        keyframes.KeyframeBenchConfig(clips=0)
    with pytest.raises(ValueError, match="lams"):
        keyframes.KeyframeBenchConfig(lams=(-0.1,))
