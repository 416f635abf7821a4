"""The ``gamdss`` command: one subcommand per module in :mod:`gamdss.commands`.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments; returns the exit status).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from gamdss import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gamdss",
        description="Micro-expression keyframe reselection (GAMDSS): datasets, preprocessing, "
                    "reselection, audits and LOSO training.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
