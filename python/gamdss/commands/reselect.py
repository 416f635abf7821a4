"""``gamdss reselect CACHE``: keyframe reselection of every clip of a frame cache.

The default (``--preset recommended``) moves an apex only where the clip's evidence exceeds
its own noise floor (after removing head motion, flicker and blinks), moves an offset later
only where it is clearly still inside the expression, keeps the onset, and gives every
keyframe a confidence in noise-floor sds. ``--preset paper``
reproduces the paper's max-distance rule exactly, ``--preset released`` the authors' code.

Writes into ``--out`` (default ``CACHE/reselection/<run name>/``, e.g. ``noise-aware-w60-z6``
or ``paper-r0.1-f0.1-l2``): ``reselection.csv`` (per clip: annotated and reselected keyframes
as dataset frame numbers and clip-relative indices, displacements in frames, ms and percent of
the clip, confidences, distances, settings), the corrected annotation file in the dataset's
own schema (the originals and the confidences in extra columns) and ``settings.yaml``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gamdss.commands._common import (
    BadInput,
    RunFailed,
    add_reselection_arguments,
    add_run_flags,
    check_device,
    check_out_folder,
    number_type,
    reselection_settings,
)


def default_out(cache_root: Path, settings) -> Path:
    """``CACHE/reselection/<run name of settings>``: where a run writes without ``--out``."""
    return Path(cache_root) / "reselection" / settings.run_name()


def _run(args: argparse.Namespace) -> int:
    # deferred so that `gamdss --help` does not import torch
    from gamdss.data.cache import FrameCache
    from gamdss.reselection.export import export_reselection, find_source_file, planned_outputs
    from gamdss.reselection.run import reselect_cache
    from gamdss.util import atomic

    # Every argument is checked before any frame is read or any file written.
    try:
        check_device(args.device)
        if args.out:
            check_out_folder(args.out)
        settings = reselection_settings(args)
        cache = FrameCache(args.cache)
        if len(cache) == 0:
            raise ValueError(f"nothing to reselect: the cache {cache.root} holds no clips")
        out = Path(args.out) if args.out else default_out(cache.root, settings)
        check_out_folder(out)
        annotations = None
        if args.annotations is not None:
            if len({e.dataset for e in cache.entries}) != 1:
                raise ValueError("--annotations gives one file, but the cache holds clips of several datasets")
            if not Path(args.annotations).is_file():
                raise FileNotFoundError(f"--annotations {args.annotations} is not a file")
            source, why = find_source_file(cache, cache.entries[0].dataset, args.annotations)
            if source is None:
                raise ValueError(f"--annotations {args.annotations}: {why}")
            annotations = {cache.entries[0].dataset: source}
        atomic.refuse_any_existing(planned_outputs(cache, out, annotations=annotations), args.overwrite)
    except (ValueError, OSError) as exc:  # FileExistsError included: the command needs --overwrite
        raise BadInput(exc) from exc
    try:
        results = reselect_cache(
            cache,
            settings,
            device=args.device,
            max_batch_bytes=max(1, int(args.max_batch_mb * 2**20)),
            workers=args.workers,
            progress=not args.no_progress,
        )
        export = export_reselection(
            cache,
            results,
            out,
            settings,
            overwrite=args.overwrite,
            extra_settings={"device": args.device},
            annotations=annotations,
        )
    except (FileNotFoundError, ValueError) as exc:  # a damaged or missing clip file of the cache
        raise BadInput(exc) from exc
    except (OSError, RuntimeError) as exc:  # a run that failed (a full disk, a device error), not bad input
        raise RunFailed(exc) from exc
    print(export.summary())
    return 0


def register(sub) -> None:
    """Add the ``reselect`` subcommand (reselect a frame cache's keyframes) to ``sub``, the subparsers of ``gamdss``."""
    p = sub.add_parser(
        "reselect",
        help="re-select onset/apex/offset of every clip of a frame cache and write corrected annotation files",
        description=__doc__,
    )
    p.add_argument("cache", help="frame cache folder (made by `gamdss preprocess`)")
    add_reselection_arguments(p)
    p.add_argument("--out", help="output folder (default: CACHE/reselection/<run name of the settings>)")
    p.add_argument(
        "--annotations",
        metavar="FILE",
        help="the dataset's annotation file the cache was made from, copied with the corrected keyframes "
        "(default: found under the dataset root of the cached frames)",
    )
    p.add_argument(
        "--max-batch-mb",
        type=number_type("--max-batch-mb", strict=True),
        default=256.0,
        help="frames read per batch, in MiB (max-distance presets)",
    )
    p.add_argument(
        "--workers",
        type=number_type("--workers", minimum=1, integer=True),
        default=None,
        help="threads correcting clips side by side (noise-aware presets; default: min(4, CPUs it may use))",
    )
    add_run_flags(
        p,
        device="cpu or cuda (results are identical)",
        overwrite="replace existing output files",
        progress_flag="--no-progress",
    )
    p.set_defaults(func=_run)
