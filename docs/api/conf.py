"""Sphinx configuration of the gamdss API reference, built from the docstrings.

Build (CI runs this from scripts/test.sh, warnings are errors)::

    python -m sphinx -W --keep-going -b html docs/api build/docs-api

It documents the source tree (``python/``). Neither a GPU nor a particular build of the
compiled extension is needed: the installed ``gamdss_ext`` (the compiled op) is used when it
imports, and a mock otherwise, since only the Python signatures and docstrings are read.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

autodoc_mock_imports: list[str] = []
try:  # the installed compiled module (CI), or the one linked next to its source (PYTHONPATH=python)
    importlib.import_module("gamdss_ext")
except ImportError:  # none: the docs need only the Python wrappers' signatures and docstrings
    autodoc_mock_imports.append("gamdss_ext")
sys.path.insert(0, str(ROOT / "python"))  # document the source tree

project = "gamdss"
author = "gamdss contributors"
copyright = "gamdss contributors"  # noqa: A001 - Sphinx's name
release = version = "0.1.0"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]

# Each object is documented once, in the module that defines it (packages re-export names).
autodoc_default_options = {
    "members": True,
    "undoc-members": False,
    "show-inheritance": True,
    "ignore-module-all": True,
}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autoclass_content = "both"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields, so a dataclass field is not described twice

nitpicky = False
suppress_warnings = ["ref.python"]  # a name documented in two places resolves to either
if autodoc_mock_imports:  # without the compiled module its own page section (op.rst) stays empty
    suppress_warnings.append("autodoc.mocked_object")

html_theme = "alabaster"
html_title = "gamdss API reference"
html_static_path: list[str] = []
exclude_patterns = ["_build"]


# The docstrings are written to be read in a terminal too: |displacement| means an absolute
# value there, not a reST substitution.
_ABS = re.compile(r"(?<![\\`|])\|([^|`\n]{1,60})\|(?![`|])")


# The house style lists parameters and fields as ``name: text`` (or ``a, b: text``) with
# continuation lines indented by 4, after a blank line; rendered as a bullet list with the
# names in bold.
_ITEM = re.compile(r"^([A-Za-z_]\w*(?:, ?[A-Za-z_]\w*)*): (\S.*)$")


def _house_style(lines: list[str]) -> list[str]:
    out: list[str] = []
    in_list = False
    for line in lines:
        # a list starts after a blank line (or the docstring's start), never inside a paragraph
        item = _ITEM.match(line) if (in_list or not out or not out[-1].strip()) else None
        if item:
            out.append(f"- **{item[1]}**: {item[2]}")
            in_list = True
        elif in_list and line.startswith("    ") and line.strip():
            out.append("  " + line.strip())
        else:
            if in_list and line.strip():
                out.append("")
            in_list = False
            out.append(line)
    return out


def _process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = _house_style([_ABS.sub(r"\\|\1\\|", line) for line in lines])


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring)
