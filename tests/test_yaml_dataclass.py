"""The shared YAML dataclass helpers: round trip, unknown keys, overwrite refusal, bad files."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from gamdss.commands._common import size_type
from gamdss.settings import yaml_io as yaml_dataclass
from gamdss.settings.yaml_io import YamlDataclass


@dataclass(frozen=True)
class Cfg(YamlDataclass):
    name: str = "a"
    pair: tuple[float, float] = (1.0, 2.0)
    count: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pair", tuple(float(v) for v in self.pair))
        if self.count is not None and self.count < 0:
            raise ValueError(f"Cfg.count must be >= 0, got {self.count}")


def test_round_trip_and_yaml_text(tmp_path):
    cfg = Cfg("b", (3, 4.5), 7)
    assert cfg.to_dict() == {"name": "b", "pair": [3.0, 4.5], "count": 7}
    path = cfg.save(tmp_path / "c.yaml")
    assert path.read_text(encoding="utf-8") == "name: b\npair:\n- 3.0\n- 4.5\ncount: 7\n"
    assert Cfg.load(path) == cfg
    assert cfg.replace(count=1) == Cfg("b", (3.0, 4.5), 1)


def test_missing_fields_take_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("count: 2\n", encoding="utf-8")
    assert Cfg.load(tmp_path / "c.yaml") == Cfg(count=2)
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    assert Cfg.load(tmp_path / "empty.yaml") == Cfg()


def test_refuses_to_overwrite(tmp_path):
    path = Cfg().save(tmp_path / "c.yaml")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        Cfg("other").save(path)
    assert Cfg.load(path) == Cfg()
    Cfg("other").save(path, overwrite=True)
    assert Cfg.load(path).name == "other"


def test_errors_name_the_class_and_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key colour \(known keys in Cfg: name, pair, count\)"):
        Cfg.from_dict({"colour": 1})
    with pytest.raises(ValueError, match=r"src: unknown key colour"):
        yaml_dataclass.from_dict(Cfg, {"colour": 1}, "src")
    bad = tmp_path / "bad.yaml"
    bad.write_text("colour: red\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown key colour"):
        Cfg.load(bad)
    bad.write_text("count: -1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.yaml: Cfg\.count must be >= 0"):
        Cfg.load(bad)
    bad.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.yaml: expected a mapping of Cfg fields, got list"):
        Cfg.load(bad)
    # A falsy scalar is not "no settings" (it was read as {} and loaded every default).
    for text, kind in (("false\n", "bool"), ("0\n", "int"), ("''\n", "str"), ("[]\n", "list")):
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=rf"bad\.yaml: expected a mapping of Cfg fields, got {kind}"):
            Cfg.load(bad)
    bad.write_text("# nothing set yet\n", encoding="utf-8")
    assert Cfg.load(bad) == Cfg()  # an empty file still gives the defaults


def test_size_type():
    parse = size_type("--size")
    assert parse("224") == (224, 224) and parse("224x192") == (224, 192) and parse("8X4") == (8, 4)
    for text in ("big", "0", "4x0", "1x2x3", "x4"):
        with pytest.raises(argparse.ArgumentTypeError, match="--size"):
            parse(text)


@dataclass
class Inner:
    rate: float = 0.5
    names: list[str] = dataclasses.field(default_factory=list)


@dataclass
class Outer(YamlDataclass):
    inner: Inner = dataclasses.field(default_factory=Inner)
    flag: bool = False
    size: tuple[int, int] = (4, 4)
    where: Path = Path("x")


def test_typed_loading_of_nested_dataclasses(tmp_path):
    # One mechanism for every settings file: nested sections, typed values, dotted key names.
    outer = Outer.from_dict({"inner": {"rate": "1e-3", "names": "a"}, "size": [2, 3], "where": "y/z"})
    assert outer == Outer(Inner(0.001, ["a"]), False, (2, 3), Path("y/z"))
    assert Outer.load(outer.save(tmp_path / "o.yaml")) == outer
    assert outer.to_dict() == {"inner": {"rate": 0.001, "names": ["a"]}, "flag": False, "size": [2, 3], "where": "y/z"}
    for data, message in (
        ({"inner": {"rat": 1}}, r"src: unknown key inner\.rat \(known keys in inner: rate, names\)"),
        ({"inner": {"rate": "fast"}}, r"src: inner\.rate must be a number, got 'fast'"),
        ({"flag": 1}, r"src: flag must be true or false, got 1"),
        ({"size": [1, 2, 3]}, r"src: size must be a list of 2 values"),
        ({"size": [1, 2.5]}, r"src: size\[1\] must be an integer"),
        ({"inner": 3}, r"src: inner must be a mapping"),
    ):
        with pytest.raises(ValueError, match=message):
            Outer.from_dict(data, "src")
