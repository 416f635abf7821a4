"""The ``gamdss`` command: one subcommand per module in :mod:`gamdss.commands`.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments; returns the exit status). A command whose last
positional takes any number of values (``gamdss train CONFIG key=value ...``) may set
``trailing_positionals`` to that argument's ``dest``: values given after its flags are then
added to it instead of being refused.

One exit-status rule for every command (see :mod:`gamdss.commands._common`): 0 done; 1 a run
that failed or could not start; 2 bad input; 130 Ctrl-C. It is applied here, in one place:

- a usage error (unknown flag, bad value) is one line on stderr, exit status 2, under the
  command it was given to (``gamdss reselect: unrecognized arguments: --bogus``; a flag
  given before the command, ``gamdss --bogus reselect ...``, under ``gamdss``);
- a command that raises :class:`~gamdss.commands._common.BadInput` (2) or
  :class:`~gamdss.commands._common.RunFailed` (1) ends with its message on one line,
  ``gamdss <command>: <message>``;
- Ctrl-C (``KeyboardInterrupt``) during any command ends it with one line on stderr,
  ``gamdss <command>: interrupted`` (followed by the command's ``interrupted_note`` when it
  sets one, e.g. train's "finished folds are kept, ..."), and exit status 130 (128 + SIGINT),
  without a traceback.

Only argparse and the command modules' ``register`` run before a command starts: torch and
the toolkit's heavy modules are imported inside the command functions, so ``gamdss --help``
and every ``--help`` answer without importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from gamdss import __version__, commands
from gamdss.commands._common import FAILED, INTERRUPTED, CommandError, Parser, report

__all__ = ["build_parser", "main", "INTERRUPTED"]


def build_parser() -> argparse.ArgumentParser:
    """The ``gamdss`` parser with every subcommand of :mod:`gamdss.commands` registered."""
    parser = Parser(
        prog="gamdss",
        description="Micro-expression keyframe reselection (GAMDSS): datasets, preprocessing, "
        "reselection, audits and LOSO training. Exit status: 0 done, 1 a run that failed or could not "
        "start, 2 bad input (one line on stderr), 130 Ctrl-C.",
    )
    parser.add_argument("--version", action="version", version=f"gamdss {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def _command_words(args: argparse.Namespace | None) -> str:
    """``reselect``, ``bench keyframes``, ``data check``: the command as typed."""
    words = [getattr(args, key, None) for key in ("command", "benchmark", "data_command")]
    return " ".join(w for w in words if isinstance(w, str))


def _command_parser(parser: argparse.ArgumentParser, words: str) -> argparse.ArgumentParser:
    """The parser of the command ``words`` (``bench keyframes``) under ``parser``."""
    for word in words.split():
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``gamdss`` command ``argv`` (default ``sys.argv[1:]``); returns its exit status
    (see the module doc)."""
    parsed: list[argparse.Namespace] = []
    try:
        return _main(argv, parsed)
    except CommandError as exc:
        report(_command_words(parsed[0] if parsed else None), exc)
        return exc.status
    except KeyboardInterrupt:
        args = parsed[0] if parsed else None
        command = _command_words(args)
        note = getattr(args, "interrupted_note", None)
        print(f"gamdss{' ' + command if command else ''}: interrupted{'; ' + note if note else ''}", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # a failure no command anticipated: still one line and status 1
        if os.environ.get("GAMDSS_TRACEBACK"):
            raise
        words = _command_words(parsed[0] if parsed else None)
        report(words, f"failed: {type(exc).__name__}: {exc} (set GAMDSS_TRACEBACK=1 for the traceback)")
        return FAILED


def _main(argv: list[str] | None, parsed: list[argparse.Namespace]) -> int:
    parser = build_parser()
    # argparse's parse_intermixed_args does not support subparsers, so positionals given after a
    # command's flags come back as unknown and are handed to the command that collects them.
    args, extra = parser.parse_known_args(argv)
    if extra:
        words = list(sys.argv[1:] if argv is None else argv)
        command_words = _command_words(args).split()
        before_command = words[: words.index(command_words[0])] if command_words and command_words[0] in words else []
        if any(e in before_command for e in extra):
            # ``gamdss --bogus audit ...``: the flag was given to gamdss itself, not to the command.
            parser.error(f"unrecognized arguments: {' '.join(e for e in extra if e in before_command)}")
        dest = getattr(args, "trailing_positionals", None)
        if dest is None or any(e.startswith("-") for e in extra):
            command = _command_parser(parser, " ".join(command_words))
            command.error(f"unrecognized arguments: {' '.join(extra)}")
        setattr(args, dest, [*(getattr(args, dest) or []), *extra])
    parsed.append(args)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
