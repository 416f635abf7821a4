"""Arguments shared by several ``gamdss`` subcommands (not a subcommand: the leading underscore
keeps :mod:`gamdss.cli` from loading it as one)."""

from __future__ import annotations

import argparse
from pathlib import Path

WINDOWS = ["paper", "released", "symmetric"]
DISTANCES = ["l2", "centered", "released_uint8"]
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
    p.add_argument("--annotations", type=Path, default=None,
                   help="the annotation file (default: found under ROOT by its known names)")
    p.add_argument("--corrections", type=Path, default=None,
                   help="an extra corrections list (YAML) applied after the shipped one")
    p.add_argument("--clip-margin", type=float, default=0.5,
                   help="frames kept around onset..offset, as a fraction of offset-onset (default 0.5)")


def add_reselection_arguments(p: argparse.ArgumentParser) -> None:
    """``--window``, ``--lam-rise``, ``--lam-fall`` and ``--distance`` of :func:`gamdss.reselect`."""
    p.add_argument("--window", default="paper", choices=WINDOWS,
                   help="candidate-window preset (default paper)")
    p.add_argument("--lam-rise", type=float, default=0.1, help="rise search scale, R = int(lam * (apex - onset))")
    p.add_argument("--lam-fall", type=float, default=0.1, help="fall search scale, R = int(lam * (offset - apex))")
    p.add_argument("--distance", default="l2", choices=DISTANCES)


def add_run_flags(p: argparse.ArgumentParser, *, overwrite: str, device: str | None = None,
                  device_default: str | None = "cpu", progress_flag: str | None = None) -> None:
    """``--overwrite`` (``overwrite``: its help), ``--device`` when ``device`` (its help) is
    given, and ``progress_flag`` (``--no-progress`` or ``--quiet``) that turns progress bars off."""
    if device is not None:
        p.add_argument("--device", default=device_default, help=device)
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    if progress_flag is not None:
        p.add_argument(progress_flag, action="store_true", help="no progress bars")
