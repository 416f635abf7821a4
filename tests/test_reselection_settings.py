"""``ReselectionSettings``: one object for every reselection setting, its presets, checks
and round trips through YAML and the results CSV."""

from __future__ import annotations

import csv
import io

import pytest

from gamdss.data.reselection_files import reselection_rows, rows_to_csv
from gamdss.data.reselection_record import ClipReselection
from gamdss.settings.reselection import PRESETS, ReselectionSettings, preset
from gamdss.train.config import ReselectionConfig


def test_paper_preset_is_the_papers_method():
    p = preset("paper")
    assert (p.method, p.window, p.lam_rise, p.lam_fall, p.distance) == ("max_distance", "paper", 0.1, 0.1, "l2")
    r = preset("released")
    assert (r.method, r.window, r.distance) == ("max_distance", "released", "released_uint8")
    assert (p.ties, r.ties) == ("nearest", "first_inserted")  # the released code keeps the first maximum
    assert preset("recommended").method == "noise_aware"
    # Settings written before presets existed (no method) read as the paper's method.
    assert ReselectionSettings.from_dict(
        {"window": "paper", "lam_rise": 0.1, "lam_fall": 0.1, "distance": "l2"}
    ) == preset("paper")


@pytest.mark.parametrize(
    "changes, culprit",
    [
        (dict(method="best"), "method"),
        (dict(window="wide"), "window"),
        (dict(distance="l1"), "distance"),
        (dict(lam_rise=-0.1), "lam_rise"),
        (dict(lam_fall=float("nan")), "lam_fall"),
        (dict(move_z="3"), "move_z"),
        (dict(tie_z=7.0), "tie_z"),
        (dict(mask_eyes=1), "mask_eyes"),
        (dict(offset_z=-1), "offset_z"),
        (dict(ties="last"), "ties"),
        (dict(ties="first_inserted"), "ties"),  # window paper: the released loop has no such order
        (dict(method="noise_aware", window="released", ties="first_inserted"), "ties"),
    ],
)
def test_bad_values_name_the_setting(changes, culprit):
    with pytest.raises(ValueError, match=f"reselection setting {culprit}"):
        ReselectionSettings(**changes)


def test_unknown_preset_and_unknown_yaml_key():
    with pytest.raises(ValueError, match="unknown reselection preset 'best'"):
        preset("best")
    with pytest.raises(ValueError, match="lam"):
        ReselectionSettings.from_dict({"lam": 0.1}, "x.yaml")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_csv_row_round_trip(name):
    settings = preset(name)
    rows = reselection_rows([ClipReselection("a", (1, 3, 5), (1, 4, 5))], settings=settings)
    row = next(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert row["preset"] == name
    assert ReselectionSettings.from_csv_row(row) == settings
    assert settings.preset_name() == name and name in settings.describe()


def test_run_names_differ_between_methods():
    assert preset("paper").run_name() == "paper-r0.1-f0.1-l2"
    assert preset("recommended").run_name().startswith("noise-aware")
    assert preset("released").run_name() == "released-r0.1-f0.1-released_uint8-first-inserted"
    assert preset("released", ties="nearest").run_name() == "released-r0.1-f0.1-released_uint8"
    assert "ties=first_inserted" in preset("released").describe() and "ties" not in preset("paper").describe()


def test_settings_without_ties_read_as_the_ops_order():
    # settings.yaml files written before the field existed: the order the op used then.
    old = {"method": "max_distance", "window": "released", "distance": "released_uint8"}
    assert ReselectionSettings.from_dict(old).ties == "nearest"
    with pytest.raises(ValueError, match="ties: first_inserted .* needs method max_distance and window released"):
        preset("released", window="paper")


def test_training_keeps_the_papers_method_unless_asked():
    assert ReselectionConfig().settings() == preset("paper")
    assert ReselectionConfig(method="noise_aware").settings() == preset("recommended")
    assert ReselectionConfig(window="released", lam_rise=0.2).settings() == preset("paper").replace(
        window="released", lam_rise=0.2
    )
