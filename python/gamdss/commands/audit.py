"""``gamdss audit CACHE [CACHE...]``: a report of how far GAMDSS reselection moves the
annotated keyframes (histograms, offset versus apex, per dataset and subject group, Fig.-2
frame-difference curves), with the CSV numbers behind every plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gamdss.commands._common import (
    RESELECTION_FLAGS,
    BadInput,
    RunFailed,
    add_reselection_arguments,
    add_run_flags,
    check_device,
    check_out_folder,
    reselection_settings,
)

# Row columns an audit can group by besides the entries' metadata keys.
ROW_GROUP_KEYS = ("dataset", "subject", "cache", "clip_id", "fps", "num_frames")


def _check_inputs(args: argparse.Namespace, caches) -> None:
    """Raise ``ValueError``/``OSError`` naming the first bad argument, before anything runs."""
    from gamdss.data.reselection_files import load_reselection

    check_device(args.device)
    given = ["--" + name.replace("_", "-") for name in RESELECTION_FLAGS if getattr(args, name) is not None]
    if args.reselection and given:
        raise ValueError(
            f"{', '.join(given)} cannot be combined with --reselection: the audit uses the settings its "
            f"file(s) record; drop {'them' if len(given) > 1 else 'it'} (or drop --reselection to reselect)"
        )
    reselection_settings(args)
    if args.out:
        check_out_folder(args.out)
    for path in args.reselection or ():
        if not Path(path).is_file():
            what = "is a folder, not a reselection.csv" if Path(path).is_dir() else "does not exist"
            raise FileNotFoundError(f"--reselection {path} {what}")
    if args.clips:
        if args.reselection:
            known = {r.clip_id for path in args.reselection for r in load_reselection(path)}
            where = f"the reselection file(s) {', '.join(map(str, args.reselection))}"
        else:
            known = {e.clip_id for cache in caches for e in cache.entries}
            where = f"the cache(s) {', '.join(str(c.root) for c in caches)}"
        unknown = [c for c in args.clips if c not in known]
        if unknown:
            raise ValueError(
                f"--clips: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not in {where}"
            )
    out = Path(args.out) if args.out else caches[0].root / "audit"
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(f"{out} already holds files; pass --overwrite or choose another --out")


def _warn_unknown_group_keys(keys, caches) -> None:
    meta = {k for cache in caches for e in cache.entries for k in (e.meta or {})}
    for key in keys or ():
        if key not in ROW_GROUP_KEYS and key not in meta and key.removeprefix("meta_") not in meta:
            print(
                f"gamdss audit: warning: --group-by {key!r} is in no clip's metadata; all clips fall in "
                f"group 'unknown' (metadata keys: {', '.join(sorted(meta)) or 'none'})",
                file=sys.stderr,
            )


def _run(args: argparse.Namespace) -> int:
    # deferred so that `gamdss --help` does not import torch
    from gamdss.audit import audit_caches
    from gamdss.data.cache import FrameCache

    try:
        caches = [FrameCache(c) for c in args.cache]
        if args.reselection and len(args.reselection) != len(caches):
            raise ValueError(
                f"--reselection gives {len(args.reselection)} files for {len(caches)} caches; "
                f"give one per cache, in the same order"
            )
        _check_inputs(args, caches)
    except (ValueError, OSError) as exc:
        raise BadInput(exc) from exc
    _warn_unknown_group_keys(args.group_by, caches)
    out = Path(args.out) if args.out else caches[0].root / "audit"
    try:
        rep = audit_caches(
            caches,
            out,
            settings=reselection_settings(args),
            reselection_csv=args.reselection,
            curves_for=args.clips,
            group_by=args.group_by,
            fmt=args.format,
            overwrite=args.overwrite,
            device=args.device,
            progress=not args.no_progress,
        )
    except (KeyError, ValueError, FileNotFoundError, FileExistsError) as exc:  # the inputs or flags: 2
        raise BadInput(exc) from exc
    except (OSError, RuntimeError) as exc:  # a disk, a device, a held folder: the run failed, 1
        raise RunFailed(exc) from exc
    print(f"audited {len(rep.rows)} clips; report: {rep.report} ({len(rep.files)} files in {rep.out})")
    return 0


def register(sub) -> None:
    """Add the ``audit`` subcommand (keyframe audit of frame caches) to ``sub``, the subparsers of ``gamdss``."""
    p = sub.add_parser(
        "audit", help="report how far reselection moves the annotated keyframes (plots + CSV)", description=__doc__
    )
    p.add_argument("cache", nargs="+", help="frame cache folder(s); several are compared side by side")
    p.add_argument("--out", help="report folder (default: FIRST_CACHE/audit)")
    add_reselection_arguments(p)
    p.set_defaults(preset=None)  # None: not given (the default preset), so that --reselection can refuse it
    p.add_argument(
        "--reselection",
        nargs="+",
        metavar="CSV",
        help="reuse `gamdss reselect` results (reselection.csv, one per cache) instead of reselecting, with the "
        "settings they record (--preset and its overrides are then refused)",
    )
    p.add_argument(
        "--clips",
        nargs="+",
        metavar="ID",
        help="clip ids for the Fig.-2 curves (default: the three that moved most and one that did not)",
    )
    p.add_argument(
        "--group-by",
        nargs="+",
        metavar="KEY",
        help="dataset, subject, cache or a meta key (default: dataset and subject-group metadata such as ethnicity or gender)",
    )
    p.add_argument(
        "--format",
        default="markdown",
        choices=["markdown", "html"],
        help="markdown: report.md beside its PNG and CSV files; html: one self-contained report.html "
        "(plots embedded) to send as it is",
    )
    add_run_flags(
        p, device="cpu or cuda", overwrite="write into a folder that already holds files", progress_flag="--no-progress"
    )
    p.set_defaults(func=_run)
