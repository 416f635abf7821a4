"""``gamdss reselect CACHE``: keyframe reselection of every clip of a frame cache.

Writes into ``--out`` (default ``CACHE/reselection/<window>-r<lam_rise>-f<lam_fall>-<distance>/``):
``reselection.csv`` (per clip: annotated and reselected keyframes as dataset frame numbers and
clip-relative indices, displacements in frames, ms and percent of the clip, distances,
settings), the corrected annotation file in the dataset's own schema (the originals in extra
columns) and ``settings.yaml``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gamdss.commands._common import (add_reselection_arguments, add_run_flags, check_device, check_out_folder, fail,
                                     number_type)


def default_out(cache_root: Path, settings) -> Path:
    return Path(cache_root) / "reselection" / settings.run_name()


def _run(args: argparse.Namespace) -> int:
    from gamdss import atomic
    from gamdss.data.cache import FrameCache
    from gamdss.dataset_reselection import (ReselectionSettings, export_reselection,
                                            planned_outputs, reselect_cache)

    # Every argument is checked before any frame is read or any file written.
    try:
        check_device(args.device)
        if args.out:
            check_out_folder(args.out)
    except (ValueError, OSError) as exc:
        return fail("reselect", exc)
    settings = ReselectionSettings(args.window, args.lam_rise, args.lam_fall, args.distance)
    try:
        cache = FrameCache(args.cache)
    except (FileNotFoundError, ValueError, OSError) as exc:
        return fail("reselect", exc)
    out = Path(args.out) if args.out else default_out(cache.root, settings)
    try:
        check_out_folder(out)
        atomic.refuse_any_existing(planned_outputs(cache, out), args.overwrite)
    except FileExistsError as exc:
        return fail("reselect", exc, 1)
    except OSError as exc:
        return fail("reselect", exc)
    try:
        results = reselect_cache(cache, window=settings.window, lam_rise=settings.lam_rise,
                                 lam_fall=settings.lam_fall, distance=settings.distance, device=args.device,
                                 max_batch_bytes=max(1, int(args.max_batch_mb * 2**20)))
        export = export_reselection(cache, results, out, settings, overwrite=args.overwrite,
                                    extra_settings={"device": args.device})
    except (FileNotFoundError, ValueError, OSError, RuntimeError) as exc:
        return fail("reselect", exc)
    print(export.summary())
    return 0


def register(sub) -> None:
    p = sub.add_parser("reselect", help="re-select onset/apex/offset of every clip of a frame cache and "
                                        "write corrected annotation files",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cache", help="frame cache folder (made by `gamdss preprocess`)")
    add_reselection_arguments(p)
    p.add_argument("--out", help="output folder (default: CACHE/reselection/<window>-r<lam_rise>-f<lam_fall>-<distance>)")
    p.add_argument("--max-batch-mb", type=number_type("--max-batch-mb", strict=True), default=256.0, help="frames per batch, in MiB (default 256)")
    add_run_flags(p, device="cpu or cuda (results are identical)", overwrite="replace existing output files")
    p.set_defaults(func=_run)
