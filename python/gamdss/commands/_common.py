"""Arguments shared by several ``gamdss`` subcommands (not a subcommand: the leading underscore
keeps :mod:`gamdss.cli` from loading it as one)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gamdss.settings.reselection import DISTANCES, PRESETS, WINDOWS

DATASETS_HELP = "casme, casme2, samm, casme_sq, casme3, mmew or 4dme"


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


def add_reselection_arguments(p: argparse.ArgumentParser) -> None:
    """``--preset`` and the overrides ``--window``, ``--lam-rise``, ``--lam-fall``,
    ``--distance`` (paper-style presets) of :class:`gamdss.settings.reselection.ReselectionSettings`;
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


def reselection_settings(args: argparse.Namespace):
    """The :class:`~gamdss.settings.reselection.ReselectionSettings` of ``--preset`` with the
    given overrides; ``ValueError`` naming the flag when an override does not apply."""
    from gamdss.settings.reselection import preset

    changes = {
        name: getattr(args, name)
        for name in ("window", "lam_rise", "lam_fall", "distance")
        if getattr(args, name) is not None
    }
    base = preset(args.preset)
    if changes and base.method != "max_distance":
        flags = ", ".join("--" + n.replace("_", "-") for n in changes)
        raise ValueError(f"{flags} apply to the max-distance presets; add --preset paper (or released)")
    return base.replace(**changes) if changes else base


def add_run_flags(
    p: argparse.ArgumentParser,
    *,
    overwrite: str,
    device: str | None = None,
    device_default: str | None = "cpu",
    progress_flag: str | None = None,
) -> None:
    """``--overwrite`` (``overwrite``: its help), ``--device`` when ``device`` (its help) is
    given, and ``progress_flag`` (``--no-progress`` or ``--quiet``) that turns progress bars off."""
    if device is not None:
        p.add_argument("--device", default=device_default, help=device)
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    if progress_flag is not None:
        p.add_argument(progress_flag, action="store_true", help="no progress bars")


def number_type(flag: str, *, minimum: float = 0.0, strict: bool = False, integer: bool = False):
    """An argparse ``type`` for ``flag``: a finite number ``>= minimum`` (``> minimum`` when
    ``strict``; an int when ``integer``); its errors name ``flag``."""
    import math

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


def error_text(exc: BaseException) -> str:
    """An exception's message for the command line (a ``KeyError``'s without its quotes)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def fail(command: str, message: str | BaseException, status: int = 2) -> int:
    """Print ``gamdss <command>: <message>`` on one line to stderr and return ``status``."""
    import sys

    text = error_text(message) if isinstance(message, BaseException) else message
    print(f"gamdss {command}: {' '.join(text.split())}", file=sys.stderr)
    return status


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
