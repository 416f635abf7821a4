"""TrainConfig: YAML round trip, presets, dotted overrides, clear errors, honest default."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from gamdss.train.config import ConfigError, TrainConfig, apply_overrides, load_config, parse_override, preset_names

PAPER_PRESETS = ["casme2-5", "casme2-3", "samm-5", "samm-3", "casme3-7", "casme3-4", "casme3-3", "megc2019"]


def test_defaults_are_the_paper_settings_and_honest():
    cfg = TrainConfig()
    assert (cfg.optim.lr, cfg.optim.batch_size, cfg.optim.epochs) == (8e-4, 16, 200)
    assert (cfg.optim.gamma, cfg.optim.decay_epochs, cfg.optim.weight_decay) == (0.987, 50, 0.6)
    assert cfg.evaluation.protocol == "honest"
    assert cfg.reselection.enabled and not cfg.reselection.apply_to_test
    assert cfg.modes == ["rise", "fall", "fused"]


@pytest.mark.parametrize("name", PAPER_PRESETS + ["tiny-cpu"])
def test_every_preset_loads_and_is_never_the_released_protocol(name):
    cfg = load_config(name)
    assert cfg.evaluation.protocol != "released"
    assert not cfg.is_released_protocol
    if name != "tiny-cpu":
        assert cfg.data.protocol == name and cfg.model.name == "gamdss"
        assert cfg.optim.lr == 8e-4 and cfg.optim.batch_size == 16


def test_all_presets_are_listed():
    assert set(PAPER_PRESETS + ["tiny-cpu"]) <= set(preset_names())


def test_yaml_round_trip(tmp_path):
    cfg = apply_overrides(
        TrainConfig(),
        [
            "optim.epochs=7",
            "data.caches=[a, b/c]",
            "model.phases=[rise]",
            "evaluation.select_mode=rise",
            "model.kwargs={drop_path_rate: 0.1}",
        ],
    )
    path = cfg.save(tmp_path / "c.yaml")
    again = TrainConfig.load(path)
    assert again == cfg
    assert dataclasses.asdict(again)["data"]["caches"] == ["a", "b/c"]
    assert again.model.kwargs == {"drop_path_rate": 0.1}
    assert again.modes == ["rise"]


def test_overrides_parse_yaml_values():
    assert load_config("tiny-cpu", ["optim.lr=1e-3"]).optim.lr == 1e-3  # YAML 1.1 reads 1e-3 as text
    assert parse_override("run.amp=false") == (["run", "amp"], False)
    cfg = load_config(
        "tiny-cpu",
        ["optim.lr=0.001", "run.amp=false", "data.image_size=32", "data.caches=[x]", "evaluation.protocol=inner_val"],
    )
    assert cfg.optim.lr == 0.001 and cfg.run.amp is False and cfg.data.image_size == 32
    assert cfg.data.caches == ["x"] and cfg.evaluation.protocol == "inner_val"
    # an int where a float is expected is accepted and converted
    assert load_config("tiny-cpu", ["optim.lr=1"]).optim.lr == 1.0


def test_unknown_key_in_file_is_an_error_naming_it(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"optim": {"lr": 1e-3, "learning_rate": 2}}))
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key optim.learning_rate"):
        TrainConfig.load(p)
    p.write_text(yaml.safe_dump({"optimiser": {}}))
    with pytest.raises(ConfigError, match="unknown key optimiser"):
        TrainConfig.load(p)


@pytest.mark.parametrize(
    "override, msg",
    [
        ("optim.epoch=3", "unknown key optim.epoch"),
        ("optimm.epochs=3", "unknown section optimm"),
        ("optim.epochs=three", "optim.epochs must be an integer"),
        ("run.amp=3", "run.amp must be true or false"),
        ("evaluation.protocol=oracle", "evaluation.protocol: must be one of honest, inner_val, released"),
        ("data.input_kind=rgb", "data.input_kind: must be 'difference' or 'flow'"),
        ("model.phases=[up]", "model.phases"),
        ("optim", "not of the form key=value"),
    ],
)
def test_bad_overrides_raise_clear_errors(override, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config("tiny-cpu", [override])


def test_fused_selection_needs_both_phases_only_where_select_mode_is_used():
    # inner_val selects epochs on select_mode: 'fused' needs both phases
    with pytest.raises(ConfigError, match="evaluation.select_mode"):
        load_config("tiny-cpu", ["model.phases=[rise]", "evaluation.protocol=inner_val"])
    # released reads it only to stop on when there is no rise branch
    with pytest.raises(ConfigError, match="evaluation.select_mode"):
        load_config("tiny-cpu", ["model.phases=[fall]", "evaluation.protocol=released"])
    # honest never reads it; nor does released with a rise branch (it stops on rise)
    for protocol in ("honest", "released"):
        cfg = load_config("tiny-cpu", ["model.phases=[rise]", f"evaluation.protocol={protocol}"])
        assert cfg.modes == ["rise"]


def test_released_protocol_only_when_asked():
    cfg = load_config("casme2-5", ["evaluation.protocol=released"])
    assert cfg.is_released_protocol


def test_unknown_preset_lists_the_presets():
    with pytest.raises(FileNotFoundError, match="casme2-5"):
        load_config("casme9-5")


@pytest.mark.parametrize("name", PAPER_PRESETS)
def test_reproduction_presets_train_in_float32(name):
    # The released code trains in fp32; the paper-reproduction presets do too (mixed precision off).
    assert load_config(name).run.amp is False
    assert TrainConfig().run.amp is True  # the default for other configs stays on (CUDA only)


def test_quick_preset_skips_tsne():
    assert load_config("tiny-cpu").run.tsne is False
    assert TrainConfig().run.tsne is True


def test_reselection_section_is_a_preset_plus_overrides_of_reselection_settings():
    from gamdss.settings.reselection import ReselectionSettings, preset
    from gamdss.train.config import SETTINGS_FIELDS, ReselectionConfig

    # every setting can be overridden, under its own name, and nothing else is repeated
    assert set(SETTINGS_FIELDS) == {f.name for f in dataclasses.fields(ReselectionSettings)}
    assert set(SETTINGS_FIELDS) <= {f.name for f in dataclasses.fields(ReselectionConfig)}
    assert all(getattr(ReselectionConfig(), k) is None for k in SETTINGS_FIELDS)
    cfg = load_config("casme2-5")  # the on-disk format of the shipped presets: flat keys
    assert cfg.reselection.settings() == preset("paper", lam_rise=0.05, lam_fall=0.05)
    cfg = load_config("tiny-cpu", ["reselection.preset=recommended", "reselection.move_z=8"])
    assert cfg.reselection.settings() == preset("recommended", move_z=8.0)


def test_lam_has_one_range_the_one_of_reselection_settings():
    # >= 0 as for `gamdss reselect --lam-rise` (was [0, 1] in training configs)
    assert load_config("tiny-cpu", ["reselection.lam_rise=2"]).reselection.settings().lam_rise == 2.0
    for override, culprit in (
        ("reselection.lam_rise=-0.1", "reselection setting lam_rise"),
        ("reselection.distance=l1", "reselection setting distance"),
        ("reselection.preset=best", "unknown reselection preset 'best'"),
        ("reselection.lam_rise=fast", "reselection.lam_rise must be a number"),
    ):
        with pytest.raises(ConfigError, match=culprit):
            load_config("tiny-cpu", [override])


def test_a_saved_config_with_overrides_and_files_round_trips(tmp_path):
    cfg = load_config("tiny-cpu", ["reselection.files=[a/reselection.csv]", "reselection.window=released"])
    again = TrainConfig.load(cfg.save(tmp_path / "c.yaml"))
    assert again == cfg and again.reselection.files == ["a/reselection.csv"]
    assert again.reselection.settings().window == "released"


@pytest.mark.parametrize(
    "override, msg",
    [
        ("model.fall_weight=-1", r"model.fall_weight: must be a finite number >= 0, got -1"),
        ("model.fall_weight=.nan", r"model.fall_weight: must be a finite number >= 0, got nan"),
        ("optim.lr=.inf", r"optim.lr: must be a finite number > 0, got inf"),
        ("optim.weight_decay=.inf", r"optim.weight_decay: must be a finite number >= 0, got inf"),
        ("optim.betas=[0.9, 1.5]", r"optim.betas: must each be in \[0, 1\), got \[0.9, 1.5\]"),
        ("optim.betas=[-0.1, 0.999]", r"optim.betas: must each be in \[0, 1\)"),
        ("optim.betas=[.nan, 0.999]", r"optim.betas: must each be in \[0, 1\)"),
        ("run.device=cuda:x", r"run.device: must be auto, cpu, cuda or cuda:N, got 'cuda:x'"),
        ("run.device=cudax", r"run.device: must be auto, cpu, cuda or cuda:N"),
        ("run.device=GPU", r"run.device: must be auto, cpu, cuda or cuda:N"),
    ],
)
def test_values_that_would_train_wrongly_are_refused_at_load_naming_the_key(override, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config("tiny-cpu", [override])


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_run_device_is_checked_for_its_form_not_for_this_machine(device):
    # a CUDA device this machine lacks may be a Ray worker's: checked where the fold runs
    assert load_config("tiny-cpu", [f"run.device={device}"]).run.device == device


def test_a_bad_value_stops_gamdss_train_before_the_run_folder_is_written(tmp_path, capsys):
    from gamdss.cli import main

    out = tmp_path / "run"
    assert main(["train", "tiny-cpu", "model.fall_weight=-1", "--output", str(out), "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gamdss")]
    assert len(err) == 1 and "model.fall_weight: must be a finite number >= 0" in err[0]
    assert not out.exists()
