"""The README names only calls that work as written: every ``gamdss.x.y`` name in its code
(inline and in blocks, tables included) resolves, every ``from gamdss... import ...`` runs,
every Python block compiles, the blocks marked runnable run, and every ``gamdss`` command line
names a real subcommand and real flags."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from gamdss.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
RUNNABLE = "<!-- runnable"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_DOTTED = re.compile(r"(?<![\w./-])gamdss(?:\.[A-Za-z_]\w*)+")
_FROM_IMPORT = re.compile(r"^\s*from (gamdss[\w.]*) import ([\w, ()]+?)\s*(?:#.*)?$", re.M)


def _text() -> str:
    return README.read_text(encoding="utf-8")


def _blocks(text: str) -> list[tuple[str, str, bool]]:
    """(language, code, marked runnable) of every fenced block."""
    out = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip().rsplit("\n", 1)[-1]
        out.append((m.group(1), m.group(2), before.startswith(RUNNABLE)))
    return out


def _code(text: str) -> list[str]:
    """Every piece of code in the README: fenced blocks and inline code spans (tables too)."""
    without_blocks = _FENCE.sub("", text)
    return [code for _, code, _ in _blocks(text)] + _INLINE.findall(without_blocks)


def resolve(dotted: str):
    """The object named ``dotted``: its longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as exc:
            if exc.name is None or not ".".join(parts[:i]).startswith(exc.name):
                raise  # a module that exists but fails to import: a real error
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def _dotted_names() -> list[str]:
    names = {n for code in _code(_text()) for n in _DOTTED.findall(code)}
    return sorted(names)


def _import_lines() -> list[str]:
    lines = {m.group(0).strip() for code in _code(_text()) for m in _FROM_IMPORT.finditer(code)}
    return sorted(lines)


def test_the_readme_names_gamdss_code():
    assert len(_dotted_names()) >= 15 and len(_import_lines()) >= 8


@pytest.mark.parametrize("name", _dotted_names())
def test_every_dotted_name_resolves(name):
    resolve(name)


@pytest.mark.parametrize("line", _import_lines())
def test_every_from_import_runs(line):
    statement = line.split("#", 1)[0].strip()
    exec(compile(statement, "README.md", "exec"), {})


def test_the_table_imports_work_as_written():
    """The table's Python column: each cell's import statements run in a fresh namespace and
    give the names they import, and every other name in the cell works after them (the column
    used to name modules that needed their own import)."""
    lines = _text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| step | command | Python"))
    table = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        table.append(line)
    assert len(table) >= 6
    for line in table:
        cell = line.rstrip(" |").rsplit("|", 1)[-1]
        spans = _INLINE.findall(cell)
        statements = [s for s in spans if s.startswith(("from ", "import "))]
        assert statements, f"no import in the Python column of: {line}"
        namespace: dict = {}
        for s in statements:
            exec(compile(s, "README.md", "exec"), namespace)
            imported = s.split(" import ", 1)[1] if s.startswith("from ") else s[len("import ") :]
            for name in re.split(r"[,\s]+", imported.strip()):
                assert name.split(".")[0] in namespace, (s, name)
        for span in spans:
            if span not in statements:
                for name in _DOTTED.findall(span):
                    eval(name, namespace)  # e.g. gamdss.reselect after import gamdss


def test_python_blocks_compile():
    blocks = [code for lang, code, _ in _blocks(_text()) if lang == "python"]
    assert blocks
    for code in blocks:
        compile(code, "README.md", "exec")


def test_runnable_blocks_run(tmp_path, monkeypatch):
    runnable = [code for lang, code, marked in _blocks(_text()) if marked and lang == "python"]
    assert runnable, "no README block is marked runnable"
    monkeypatch.chdir(tmp_path)
    for code in runnable:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


# ------------------------------------------------------------------------------ command lines
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command_lines() -> list[str]:
    lines = []
    for code in _code(_text()):
        for line in code.splitlines():
            line = line.strip()
            if line.startswith("gamdss ") and not line.startswith("gamdss <"):
                lines.append(line.split("#", 1)[0].strip())
    return sorted(set(lines))


@pytest.mark.parametrize("line", _command_lines())
def test_command_lines_name_real_commands_and_flags(line):
    parser = build_parser()
    words = line.split()[1:]
    while words and (sub := _subparsers(parser)).get(words[0]) is not None:
        parser = sub[words.pop(0)]
    assert not _subparsers(parser), f"{line!r} names no subcommand of {parser.prog}"
    known = {s for a in parser._actions for s in a.option_strings}
    flags = {f.split("=", 1)[0] for f in re.findall(r"(?<![\w-])--[a-z][\w-]*", line)}
    assert flags <= known, f"{line!r}: {sorted(flags - known)} are not flags of {parser.prog}"
