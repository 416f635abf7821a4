"""What every ``gamdss`` subcommand shares (not a subcommand: the leading underscore keeps
:mod:`gamdss.cli` from loading it as one): the parser and help format, the exit-status rule,
the one-line error report and the shared flags.

Exit status of every command (one rule, applied through :func:`gamdss.cli.main`):

- 0: done;
- 1 (:data:`FAILED`): the run failed or could not start for a reason outside the command line
  (an error while running, a full disk, a folder held by another run, a check that found
  problems);
- 2 (:data:`BAD_INPUT`): bad input: the same command fails again until it is changed (a wrong
  flag or value, a missing or unreadable input, an output that exists without ``--overwrite``);
- 130 (:data:`INTERRUPTED`): Ctrl-C.

A command reports by raising :class:`BadInput` or :class:`RunFailed` (or returning
:func:`fail`), which prints one line, ``gamdss <command>: <message>``, on stderr.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import textwrap
from pathlib import Path

from gamdss.settings.reselection import DEFAULT_PRESET, DISTANCES, PRESETS, TIES, WINDOWS

DATASETS_HELP = "casme, casme2, samm, casme_sq, casme3, mmew or 4dme"

OK = 0
FAILED = 1
BAD_INPUT = 2
INTERRUPTED = 130  # the shell's status for a command ended by SIGINT (128 + 2)


class CommandError(Exception):
    """Ends a command with one line on stderr and exit status :attr:`status`."""

    status = FAILED


class BadInput(CommandError):
    """Bad input (exit status 2): the message names the flag, file or value and what is wrong."""

    status = BAD_INPUT


class RunFailed(CommandError):
    """A run that failed or could not start (exit status 1)."""

    status = FAILED


# ------------------------------------------------------------------------------ help format
# reST markup of the docstrings that serve as descriptions: ``x``, :func:`x`, :mod:`~a.b`.
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str) -> str:
    """``text`` without reST markup: ``x`` -> x, :func:`a.b` -> a.b, :mod:`~a.b` -> b."""

    def role(m: re.Match) -> str:
        target = m.group(1).strip()
        return target.rsplit(".", 1)[-1] if m.group(0).split("`", 1)[1].startswith("~") else target

    return _LITERAL.sub(r"\1", _ROLE.sub(role, text))


def _default_text(value) -> str:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}" if value[0] == value[1] else f"{value[0]}x{value[1]}"  # a size flag's (H, W)
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)


class HelpFormatter(argparse.HelpFormatter):
    """Help of every ``gamdss`` command: descriptions keep their paragraphs (re-wrapped to the
    terminal), reST markup is removed, and every flag with a default shows it."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = re.split(r"\n\s*\n", plain_text(text).strip())
        return "\n\n".join(
            textwrap.fill(
                " ".join(p.split()), width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
            )
            for p in paragraphs
        )

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain_text(action.help or "")
        default = action.default
        shown = (
            action.option_strings
            and not any(default is v for v in (None, False, argparse.SUPPRESS))
            and "default" not in text
            and not isinstance(action, argparse._HelpAction | argparse._VersionAction)
        )
        if shown:
            text = f"{text} (default: {_default_text(default).replace('%', '%%')})".lstrip()
        return text


class Parser(argparse.ArgumentParser):
    """The parser of ``gamdss`` and of every subcommand (sub-parsers inherit the class):
    :class:`HelpFormatter`, and usage errors as one line on stderr with exit status 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.exit(BAD_INPUT, f"{self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def size_type(flag: str):
    """An argparse ``type`` for ``flag`` that reads ``224`` (square) or ``HxW`` such as
    ``224x192``, in pixels, as ``(H, W)``; its errors name ``flag``."""

    def parse_size(text: str) -> tuple[int, int]:
        parts = text.lower().split("x")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be N or HxW in pixels, got {text!r}") from None
        if len(values) not in (1, 2) or min(values) < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be N or HxW with positive sides, got {text!r}")
        return (values[0], values[-1])

    return parse_size


def add_dataset_arguments(p: argparse.ArgumentParser, *, root_optional: bool = False) -> None:
    """``root``, ``--dataset``, ``--annotations``, ``--corrections`` and ``--clip-margin``: what
    :func:`gamdss.data.datasets.scan_dataset` needs to read a dataset copy."""
    if root_optional:
        p.add_argument("root", nargs="?", type=Path, default=None, help="dataset folder in its original layout")
    else:
        p.add_argument("root", type=Path, help="dataset folder in its original layout")
    p.add_argument("--dataset", required=True, help=DATASETS_HELP)
    p.add_argument(
        "--annotations",
        type=Path,
        default=None,
        help="the annotation file (default: found under ROOT by its known names)",
    )
    p.add_argument(
        "--corrections", type=Path, default=None, help="an extra corrections list (YAML) applied after the shipped one"
    )
    p.add_argument(
        "--clip-margin",
        type=float,
        default=0.5,
        help="frames kept around onset..offset, as a fraction of offset-onset (default 0.5)",
    )


def check_clip_margin(value: float) -> float:
    """``value`` of ``--clip-margin`` if it is a finite number >= 0; else ``ValueError`` naming
    the flag (the readers' own message says ``margin``, which ``gamdss preprocess`` has as
    another flag)."""
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"--clip-margin must be >= 0 and finite, got {value}")
    return value


#: the ``dest`` of every flag :func:`add_reselection_arguments` adds: the flags that choose settings
RESELECTION_FLAGS = ("preset", "window", "lam_rise", "lam_fall", "distance", "ties")


def add_reselection_arguments(p: argparse.ArgumentParser) -> None:
    """``--preset`` and the overrides ``--window``, ``--lam-rise``, ``--lam-fall``,
    ``--distance``, ``--ties`` (paper-style presets) of :class:`gamdss.settings.reselection.ReselectionSettings`;
    :func:`reselection_settings` turns them into settings."""
    p.add_argument(
        "--preset",
        default="recommended",
        choices=list(PRESETS),
        help="recommended (default): move the apex only where the evidence exceeds the clip's noise, "
        "move an offset later only where it is clearly still inside the expression, keep the onset, "
        "report a confidence per keyframe; paper: the paper's max-distance "
        "rule (paper windows, lam 0.1, l2); released: the authors' released code",
    )
    p.add_argument(
        "--window",
        default=None,
        choices=WINDOWS,
        help="candidate windows of the paper/released presets (default: the preset's)",
    )
    p.add_argument(
        "--lam-rise",
        type=number_type("--lam-rise"),
        default=None,
        help="rise search scale of the paper/released presets, R = int(lam * (apex - onset))",
    )
    p.add_argument(
        "--lam-fall",
        type=number_type("--lam-fall"),
        default=None,
        help="fall search scale of the paper/released presets, R = int(lam * (offset - apex))",
    )
    p.add_argument(
        "--distance",
        default=None,
        choices=DISTANCES,
        help="frame distance of the paper/released presets: l2, centered (ignores a global brightness "
        "change) or released_uint8 (the released code's wrapped difference)",
    )
    p.add_argument(
        "--ties",
        default=None,
        choices=TIES,
        help="exact ties of the paper/released presets: nearest (the candidate closest to the annotation; "
        "paper) or first_inserted (the released code's loop order; released windows only)",
    )


def reselection_settings(args: argparse.Namespace):
    """The :class:`~gamdss.settings.reselection.ReselectionSettings` of ``--preset`` (the
    default preset when None) with the given overrides; ``ValueError`` naming the flag when an
    override does not apply."""
    from gamdss.settings.reselection import preset

    changes = {name: getattr(args, name) for name in RESELECTION_FLAGS[1:] if getattr(args, name) is not None}
    base = preset(args.preset or DEFAULT_PRESET)
    if changes and base.method != "max_distance":
        flags = ", ".join("--" + n.replace("_", "-") for n in changes)
        raise ValueError(f"{flags} apply to the max-distance presets; add --preset paper (or released)")
    if not changes:
        return base
    try:
        return base.replace(**changes)
    except ValueError as exc:
        if "ties" in changes:
            raise
        try:  # the preset's own tie rule is what does not fit the overrides
            base.replace(**changes, ties="nearest")
        except ValueError:
            raise exc from None
        raise ValueError(f"{exc}; add --ties nearest") from None


def add_run_flags(
    p: argparse.ArgumentParser,
    *,
    overwrite: str,
    device: str | None = None,
    device_default: str | None = "cpu",
    progress_flag: str | None = None,
) -> None:
    """``--overwrite`` (``overwrite``: its help), ``--device`` when ``device`` (its help) is
    given, and, when ``progress_flag`` is given, ``--no-progress`` (``args.no_progress``) that
    turns progress bars off. ``progress_flag`` only says that the command has progress bars:
    the flag is spelled ``--no-progress`` in every command, with ``--quiet`` kept as a hidden
    alias."""
    if device is not None:
        p.add_argument("--device", default=device_default, help=device)
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    if progress_flag is not None:
        p.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bars")
        p.add_argument("--quiet", dest="no_progress", action="store_true", help=argparse.SUPPRESS)


def number_type(flag: str, *, minimum: float = 0.0, strict: bool = False, integer: bool = False):
    """An argparse ``type`` for ``flag``: a finite number ``>= minimum`` (``> minimum`` when
    ``strict``; an int when ``integer``); its errors name ``flag``."""
    bound = f"{'>' if strict else '>='} {minimum:g}"

    def parse(text: str):
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise argparse.ArgumentTypeError(f"{flag} must be {kind} {bound}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            kind = "an integer" if integer else "a finite number"
            raise argparse.ArgumentTypeError(f"{flag} must be {kind} {bound}, got {text!r}")
        return value

    return parse


# API wording that the library's messages carry for Python callers, e.g. "pass overwrite=True
# (--overwrite)": on the command line only the flag is meant.
_API_AND_FLAG = re.compile(r"\b[a-z_]+=(?:True|False|\.\.\.)(?: \((?:or )?| / )(--[a-z][a-z0-9-]*)\)?")


def error_text(exc: BaseException) -> str:
    """An exception's message for the command line (a ``KeyError``'s without its quotes)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def cli_wording(text: str) -> str:
    """``text`` in command-line words: ``overwrite=True (--overwrite)``, ``overwrite=True /
    --overwrite`` and ``annotations=... (or --annotations)`` become the flag alone."""
    return _API_AND_FLAG.sub(r"\1", text)


def flag_wording(text: str, fields: tuple[str, ...]) -> str:
    """``text`` with each of ``fields`` (config field names set by a flag of the same name)
    written as its flag: ``detect_frames must be >= 0`` -> ``--detect-frames must be >= 0``."""
    for name in fields:
        text = re.sub(rf"(?<![\w-]){name}(?![\w-])", "--" + name.replace("_", "-"), text)
    return text


def report(command: str, message: str | BaseException) -> None:
    """Print ``gamdss <command>: <message>`` on one line to stderr: the one way every command
    reports an error."""
    text = error_text(message) if isinstance(message, BaseException) else message
    print(f"gamdss {command}: {cli_wording(' '.join(text.split()))}", file=sys.stderr)


def fail(command: str, message: str | BaseException, status: int = BAD_INPUT) -> int:
    """:func:`report` ``message`` and return ``status`` (default 2, bad input)."""
    report(command, message)
    return status


def read_config_file(path: str | Path, instead: str, flag: str | None = None) -> dict:
    """The settings mapping in the YAML config file ``path`` (given with ``flag``, when one);
    ``ValueError`` naming the file when it is not YAML, is empty (or holds only comments) or
    holds no mapping (``instead``: what to do instead, for the message). A config that sets
    nothing is refused rather than run with every default, which is rarely what was meant."""
    from gamdss.settings.yaml_io import read_mapping

    return read_mapping(path, "settings", empty=False, label=f"{flag} {path}" if flag else None, hint=instead)


def check_device(text: str, flag: str = "--device") -> str:
    """``text`` if it names a torch device this machine has; else ``ValueError`` naming ``flag``."""
    from gamdss.util.devices import check_device as check

    return check(text, flag)


def check_out_folder(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a ``Path`` if it is a folder or can become one; ``NotADirectoryError``
    naming ``flag`` when it, or the nearest existing folder above it, is a file."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == path else f"cannot be made: {p} is a file"
                raise NotADirectoryError(f"{flag} {path} {where}; give a folder")
            break
    return path
