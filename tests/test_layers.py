"""The package layers: which gamdss packages a package may import (read from the sources).

The layers, lowest first: ``util`` (no MER knowledge) < ``settings`` < ``op`` < ``data``,
``reselection`` < ``models`` < ``train``, ``audit``, ``accuracy`` < ``commands``, ``demo``,
``cli``. A package never imports one above it, so the data pipeline can be used without
the model or the training code, and the op without the data pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gamdss

PACKAGE = Path(gamdss.__file__).resolve().parent

# Packages each one must not import (the ones above it).
FORBIDDEN = {
    "util": {"settings", "op", "data", "reselection", "models", "train", "audit", "accuracy", "commands", "demo", "cli"},
    "settings": {"op", "data", "reselection", "models", "train", "audit", "accuracy", "commands", "demo", "cli"},
    "op": {"data", "reselection", "models", "train", "audit", "accuracy", "commands", "demo", "cli"},
    "data": {"models", "train", "audit", "accuracy", "commands", "demo", "cli"},
    "reselection": {"models", "train", "audit", "accuracy", "commands", "demo", "cli"},
    "models": {"reselection", "train", "audit", "accuracy", "commands", "demo", "cli"},
}


def imported_packages(folder: Path) -> dict[str, set[str]]:
    """gamdss package -> the files of ``folder`` that import it (absolute or relative imports)."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        depth = len(path.relative_to(PACKAGE).parts) - 1  # folders between gamdss/ and the file
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    names = [node.module or ""]
                elif node.level > depth:  # relative, out of this package: gamdss.<module>
                    names = ["gamdss." + (node.module or "")]
            for name in names:
                parts = name.split(".")
                if parts[0] == "gamdss" and len(parts) > 1 and parts[1]:
                    found.setdefault(parts[1], set()).add(str(path.relative_to(PACKAGE)))
    return found


def test_the_layer_check_sees_imports():
    # An oracle for the reader itself: the training package imports the model and the data.
    used = imported_packages(PACKAGE / "train")
    assert {"models", "data", "util"} <= set(used)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_no_layer_above_it(package):
    used = imported_packages(PACKAGE / package)
    wrong = {p: sorted(files) for p, files in used.items() if p in FORBIDDEN[package]}
    assert not wrong, f"gamdss.{package} imports packages above it: {wrong}"
