"""The keyframe-recovery benchmark (gamdss.accuracy) on a tiny configuration."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("gamdss.data.synthetic")

from gamdss.accuracy import keyframes  # noqa: E402
from gamdss.accuracy.metrics import METRICS, error_stats  # noqa: E402


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
    assert np.isnan(stats["moved_rate"])  # no annotation given
    assert set(stats) == set(METRICS)
    moved = error_stats([1, 2, 5, 4], [0, 2, 2, 6], [100, 100, 50, 200], annotated=[1, 3, 5, 5])
    assert moved["moved_rate"] == pytest.approx(0.5)  # the 2nd and 4th differ from their annotation
    assert {k: v for k, v in moved.items() if k != "moved_rate"} == {
        k: v for k, v in stats.items() if k != "moved_rate"
    }
    empty = error_stats([], [], 200)
    assert empty["n"] == 0 and np.isnan(empty["mean_abs_ms"])
    with pytest.raises(ValueError, match="predicted has 2 values, truth 3"):
        error_stats([1, 2], [1, 2, 3], 30)
    with pytest.raises(ValueError, match="annotated has 1 values, truth 2"):
        error_stats([1, 2], [1, 2], 30, annotated=[1])


def test_stat_rows_group_by_frame_rate():
    pred = np.array([[0, 5, 9], [1, 4, 8], [0, 2, 3]])
    truth = np.array([[0, 4, 9], [0, 4, 8], [0, 2, 3]])
    fps = np.array([30.0, 30.0, 200.0])
    ann = np.array([[0, 4, 9], [1, 4, 8], [0, 3, 3]])
    rows = keyframes.stat_rows(
        {"bias": "x", "confounder": "clean", "method": "m", "window": "", "distance": "", "lam": ""},
        pred,
        truth,
        fps,
        keyframes=("onset", "apex"),
        annotated=ann,
    )
    by = {(r["keyframe"], r["fps"]): r for r in rows}
    assert set(by) == {(k, f) for k in ("onset", "apex") for f in ("all", "30", "200")}
    assert by[("apex", "all")]["mean_abs_frames"] == pytest.approx(1 / 3)
    assert by[("apex", "30")]["mean_abs_ms"] == pytest.approx(1000 / 30 / 2)
    assert by[("onset", "200")]["n"] == 1 and by[("onset", "200")]["mean_abs_frames"] == 0
    assert by[("apex", "30")]["moved_rate"] == pytest.approx(0.5) and by[("apex", "200")]["moved_rate"] == 1
    assert by[("onset", "all")]["moved_rate"] == 0
    assert all(tuple(r) == keyframes.COLUMNS for r in rows)


TINY = dict(
    clips=4,
    fps=(60.0, 90.0),
    size=32,
    biases=("none", "typical"),
    confounders=("clean", "all"),
    lams=(0.0, 0.2),
    table_lams=(0.2,),
    seed=5,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "keyframes"
    config = keyframes.KeyframeBenchConfig(**TINY)
    return config, out, keyframes.run_keyframe_bench(config, out, progress=False)


def _clips(config, confounder):
    specs = keyframes.clip_specs(config)
    clips = [
        keyframes.generated_clip(keyframes.synthetic_config(config, s.fps, confounder), s.seed, s.subject)
        for s in specs
    ]
    truth = np.array([c.truth for c in clips], dtype=np.int64)
    fps = np.array([c.fps for c in clips], dtype=np.float64)
    return specs, clips, truth, fps


def _matches(csv_rows, direct_rows, method):
    """The CSV's rows of ``method`` equal ``direct_rows`` (the CSV keeps 6 significant digits)."""
    for d in direct_rows:
        r = next(
            r
            for r in csv_rows
            if r["method"] == method and all(r[k] == d[k] for k in ("bias", "confounder", "keyframe", "fps"))
        )
        for m in METRICS:
            assert r[m] == pytest.approx(d[m], rel=1e-5, abs=1e-9), (method, m, r, d)


def test_outputs_and_csv_columns(tiny_run):
    config, out, outputs = tiny_run
    with open(outputs.csv, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    assert tuple(header) == keyframes.COLUMNS and "confounder" in header and "flicker_gl" not in header
    # per (bias, confounder): annotation + 3 presets + 3 windows x 2 distances x 2 lams, 3 keyframes,
    # 3 fps groups (all, 60, 90); plus 4 spotters x apex x 3 fps groups.
    assert len(rows) == 2 * 2 * ((1 + 3 + 12) * 3 * 3 + 4 * 3)
    methods = {r[header.index("method")] for r in rows}
    assert methods == {
        "annotation",
        "preset:recommended",
        "preset:paper",
        "preset:released",
        "gamdss",
        "midpoint",
        "frame_difference",
        "frequency",
        "optical_flow",
    }
    assert {r[header.index("confounder")] for r in rows} == {"clean", "all"}
    for plot in outputs.plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert keyframes.KeyframeBenchConfig.load(outputs.config) == config
    text = outputs.table.read_text()
    assert text == outputs.table_text + "\n"
    assert "apex, bias typical: mean |error|" in text and "optical_flow" in text
    assert "gamdss paper/l2 lam=0.2" in text and "lam=0 " not in text  # only table_lams
    # the summary: no 200 fps clips here, so all frame rates; confounder all
    assert text.startswith("Summary: 4 generated clips at all frame rates, confounder all.")
    assert "| none | annotation | 0.00 / 0 / 0.0 | 0.00 / 0 / 0.0 | 0.00 / 0 / 0.0 | 100% / 100% / 100% |" in text
    assert "| typical | preset:recommended |" in text and "| typical | best spotter (" in text


def test_unbiased_annotation_and_lambda_zero_have_zero_error(tiny_run):
    _, _, outputs = tiny_run
    rows = keyframes.read_csv(outputs.csv)
    annotation = [r for r in rows if r["method"] == "annotation" and r["bias"] == "none"]
    assert len(annotation) == 2 * 3 * 3
    assert all(
        r["mean_abs_frames"] == 0 and r["p90_abs_ms"] == 0 and r["exact_rate"] == 1 and r["moved_rate"] == 0
        for r in annotation
    )
    assert all(r["moved_rate"] == 0 for r in rows if r["method"] == "annotation")
    lam0 = [r for r in rows if r["method"] == "gamdss" and r["lam"] == 0.0]
    assert len(lam0) == 2 * 2 * 6 * 3 * 3
    for r in lam0:  # with lam = 0 reselection returns the annotation, for every bias model
        ann = next(
            a
            for a in rows
            if a["method"] == "annotation" and all(a[k] == r[k] for k in ("bias", "confounder", "keyframe", "fps"))
        )
        assert all(r[m] == ann[m] for m in METRICS), (r, ann)
    assert all(r["keyframe"] == "apex" for r in rows if r["method"] == "optical_flow")  # spotters: apex only


def test_preset_rows_equal_direct_calls(tiny_run):
    import torch

    import gamdss
    from gamdss.reselection.noise_aware import correct_keyframes
    from gamdss.settings.reselection import preset

    config, _, outputs = tiny_run
    rows = keyframes.read_csv(outputs.csv)
    paper = [r for r in rows if r["method"] == "preset:paper"]
    assert {(r["window"], r["distance"], r["lam"]) for r in paper} == {("paper", "l2", 0.1)}
    assert {r["window"] for r in rows if r["method"] == "preset:recommended"} == {""}
    specs, clips, truth, fps = _clips(config, "all")
    frames = [c.frames for c in clips]
    ann = keyframes.annotate(clips, specs, "typical", config.seed)
    on, ap, off = (torch.from_numpy(ann[:, k].copy()) for k in range(3))
    s = preset("paper")
    out = gamdss.reselect(
        frames, on, ap, off, lam_rise=s.lam_rise, lam_fall=s.lam_fall, window=s.window, distance=s.distance
    )
    pred = torch.stack([out.onset, out.apex, out.offset], dim=1).numpy()
    cond = {
        "bias": "typical",
        "confounder": "all",
        "method": "preset:paper",
        "window": "paper",
        "distance": "l2",
        "lam": 0.1,
    }
    direct = keyframes.stat_rows(cond, pred, truth, fps, annotated=ann)
    _matches(rows, direct, "preset:paper")
    assert any(d["moved_rate"] > 0 for d in direct)  # it did something on these clips
    corrected = correct_keyframes(frames, on, ap, off, fps)  # finds the eyes itself
    pred = torch.stack([corrected.onset, corrected.apex, corrected.offset], dim=1).numpy()
    direct = keyframes.stat_rows({**cond, "method": "preset:recommended"}, pred, truth, fps, annotated=ann)
    _matches(rows, direct, "preset:recommended")


def test_biased_annotation_has_errors_and_confounders_leave_it_alone(tiny_run):
    _, _, outputs = tiny_run
    rows = keyframes.read_csv(outputs.csv)
    typical = {
        r["confounder"]: r
        for r in rows
        if r["method"] == "annotation" and r["bias"] == "typical" and r["keyframe"] == "offset" and r["fps"] == "all"
    }
    assert typical["clean"]["mean_abs_frames"] > 0
    assert all(typical["clean"][m] == typical["all"][m] for m in METRICS)


def test_confounders_change_the_frames_not_the_truth():
    config = keyframes.KeyframeBenchConfig(**{**TINY, "clips": 1})
    spec = keyframes.clip_specs(config)[0]
    clean = keyframes.generated_clip(keyframes.synthetic_config(config, spec.fps, "clean"), spec.seed, spec.subject)
    assert clean.config.flicker_gl == 0 and clean.config.blink_probability == 0
    assert clean.config.noise_sd == config.noise_sd and clean.config.head_motion_px == config.head_motion_px
    for name, changes in keyframes.CONFOUNDERS.items():
        synthetic = keyframes.synthetic_config(config, spec.fps, name)
        assert all(getattr(synthetic, k) == v for k, v in changes.items())
        if name == "clean":
            continue
        clip = keyframes.generated_clip(synthetic, spec.seed, spec.subject)
        assert clip.truth == clean.truth and clip.frames.shape == clean.frames.shape
        assert not bool((clip.frames == clean.frames).all()), name
    everything = keyframes.synthetic_config(config, spec.fps, "all")
    assert (
        everything.flicker_gl,
        everything.blink_probability,
        everything.head_rotation_deg,
        everything.head_scale,
        everything.rise_power,
        everything.fall_power,
    ) == (1.5, 0.5, 0.5, 0.005, 2, 2)
    with pytest.raises(ValueError, match="'fog'"):
        keyframes.synthetic_config(config, spec.fps, "fog")


def test_refuses_to_overwrite(tiny_run):
    config, out, outputs = tiny_run
    before = outputs.csv.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        keyframes.run_keyframe_bench(config, out, progress=False)
    assert outputs.csv.read_bytes() == before
    from gamdss.cli import main

    # outputs that exist without --overwrite: bad input (was 1)
    assert main(["bench", "keyframes", "--out", str(out), "--clips", "2", "--no-progress"]) == 2
    assert outputs.csv.read_bytes() == before


def test_clips_are_deterministic_and_shared_across_biases():
    config = keyframes.KeyframeBenchConfig(**{**TINY, "clips": 2})
    specs = keyframes.clip_specs(config)
    assert [s.fps for s in specs] == [60.0, 90.0]
    synthetic = keyframes.synthetic_config(config, specs[0].fps, "all")
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
    with pytest.raises(ValueError, match=r"confounders: unknown \['fog'\]"):
        keyframes.KeyframeBenchConfig(confounders=("clean", "fog"))
    with pytest.raises(ValueError, match="confounders: must not be empty"):
        keyframes.KeyframeBenchConfig(confounders=())
    with pytest.raises(ValueError, match=r"presets: unknown \['best'\]"):
        keyframes.KeyframeBenchConfig(presets=("best",))
    default = keyframes.KeyframeBenchConfig()
    assert default.confounders == tuple(keyframes.CONFOUNDERS) and len(default.confounders) == 6
    assert default.presets == ("recommended", "paper", "released")
    quick = keyframes.KeyframeBenchConfig.quick()
    assert quick.clips < default.clips and quick.confounders == default.confounders


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--confounders", "clean", "fog"], "fog"),
        (["--fps", "abc"], "--fps"),
        (["--fps", "0"], "--fps"),
        (["--fps", "200,-5"], "--fps"),
        (["--confounders", ","], "--confounders"),
    ],
)
def test_cli_names_a_bad_list_value(tmp_path, capsys, flags, named):
    from gamdss.cli import main

    out = tmp_path / "bench"
    assert main(["bench", "keyframes", "--quick", "--out", str(out), "--no-progress", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gamdss bench keyframes:") and named in err[0], err
    assert not out.exists()


def test_cli_fps_and_confounders(tmp_path, capsys):
    from gamdss.cli import main

    out = tmp_path / "bench"
    args = [
        "bench",
        "keyframes",
        "--quick",
        "--clips",
        "2",
        "--fps",
        "200",
        "--confounders",
        "clean,blink",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    config = keyframes.KeyframeBenchConfig.load(out / "config.yaml")
    assert config.fps == (200.0,) and config.confounders == ("clean", "blink") and config.clips == 2
    rows = keyframes.read_csv(out / "keyframes.csv")
    assert {r["fps"] for r in rows} == {"all", "200"} and {r["confounder"] for r in rows} == {"clean", "blink"}
    printed = capsys.readouterr().out
    assert "confounders clean, blink" in printed
    assert "Summary: 2 generated clips at 200 fps, confounder blink." in printed
