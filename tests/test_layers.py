"""The package layers: which gamdss packages a package may import (read from the sources).

The layers, lowest first: ``util`` (no MER knowledge) < ``settings`` < ``op`` < ``data``,
``spotting`` < ``reselection`` < ``models`` < ``train``, ``audit``, ``accuracy`` < ``commands``,
``demo``, ``cli``. A package never imports one above it, so the data pipeline can be used
without the reselection runs, the model or the training code, and the op without the data
pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gamdss

PACKAGE = Path(gamdss.__file__).resolve().parent

LAYERS = [
    {"util"},
    {"settings"},
    {"op"},
    {"data", "spotting"},
    {"reselection"},
    {"models"},
    {"train", "audit", "accuracy"},
    {"commands", "demo", "cli"},
]


def above(package: str) -> set[str]:
    """The packages in the layers above ``package``'s."""
    level = next(i for i, layer in enumerate(LAYERS) if package in layer)
    return set().union(*LAYERS[level + 1 :])


def _targets(node: ast.AST, package_parts: list[str]) -> list[list[str]]:
    """The dotted names (as parts) that an import statement brings in, made absolute;
    ``package_parts``: the package of the file that holds the statement."""
    if isinstance(node, ast.Import):
        return [a.name.split(".") for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        base = (node.module or "").split(".")
    elif node.level - 1 > len(package_parts):
        return []
    else:
        base = package_parts[: len(package_parts) - (node.level - 1)]
        base = base + (node.module.split(".") if node.module else [])
    # `from gamdss import models` and `from .. import train` name the package in an alias
    return [base + [a.name] for a in node.names] if len(base) < 2 else [base]


def imported_packages(folder: Path) -> dict[str, set[str]]:
    """gamdss package -> the files under ``folder`` that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]:
        package_parts = ["gamdss", *path.relative_to(PACKAGE).parts[:-1]]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for parts in _targets(node, package_parts):
                if parts[0] == "gamdss" and len(parts) > 1 and parts[1]:
                    found.setdefault(parts[1], set()).add(str(path.relative_to(PACKAGE)))
    return found


def test_the_reader_resolves_every_import_form():
    # Each form of import, as written in a file of gamdss/data/sub/: the packages it names.
    code = (
        "import gamdss.train.fold\n"
        "from gamdss import models\n"
        "from gamdss.audit import run\n"
        "from ... import cli\n"
        "from ...commands import reselect\n"
        "from .. import cache\n"
        "from . import x\n"
        "import numpy\n"
    )
    names = {
        parts[1]
        for node in ast.walk(ast.parse(code))
        for parts in _targets(node, ["gamdss", "data", "sub"])
        if parts[0] == "gamdss" and len(parts) > 1
    }
    assert names == {"train", "models", "audit", "cli", "commands", "data"}


def test_the_layer_check_sees_imports():
    # On the real sources: the training package imports the model and the data.
    assert {"models", "data", "util"} <= set(imported_packages(PACKAGE / "train"))


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} | {"cli", "demo"}
    assert packages == set().union(*LAYERS)


@pytest.mark.parametrize("package", sorted(set().union(*LAYERS)))
def test_a_package_imports_no_layer_above_it(package):
    used = imported_packages(PACKAGE / package)
    wrong = {p: sorted(files) for p, files in used.items() if p in above(package)}
    assert not wrong, f"gamdss.{package} imports packages above it: {wrong}"
