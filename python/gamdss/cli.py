"""The ``gamdss`` command: one subcommand per module in :mod:`gamdss.commands`.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments; returns the exit status). A command whose last
positional takes any number of values (``gamdss train CONFIG key=value ...``) may set
``trailing_positionals`` to that argument's ``dest``: values given after its flags are then
added to it instead of being refused.
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
    parser = build_parser()
    # argparse's parse_intermixed_args does not support subparsers, so positionals given after a
    # command's flags come back as unknown and are handed to the command that collects them.
    args, extra = parser.parse_known_args(argv)
    if extra:
        dest = getattr(args, "trailing_positionals", None)
        if dest is None or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        setattr(args, dest, [*(getattr(args, dest) or []), *extra])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
