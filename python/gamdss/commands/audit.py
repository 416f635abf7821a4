"""``gamdss audit CACHE [CACHE...]``: a report of how far GAMDSS reselection moves the
annotated keyframes (histograms, offset versus apex, per dataset and subject group, Fig.-2
frame-difference curves), with the CSV numbers behind every plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gamdss.commands._common import add_reselection_arguments, add_run_flags


def _run(args: argparse.Namespace) -> int:
    from gamdss.audit import audit_caches
    from gamdss.data.cache import FrameCache

    try:
        caches = [FrameCache(c) for c in args.cache]
    except (FileNotFoundError, ValueError) as exc:
        print(f"gamdss audit: {exc}", file=sys.stderr)
        return 2
    if args.reselection and len(args.reselection) != len(caches):
        print(f"gamdss audit: --reselection gives {len(args.reselection)} files for {len(caches)} caches; "
              f"give one per cache, in the same order", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else caches[0].root / "audit"
    try:
        rep = audit_caches(caches, out, window=args.window, lam_rise=args.lam_rise, lam_fall=args.lam_fall,
                           distance=args.distance, reselection_csv=args.reselection, curves_for=args.clips,
                           group_by=args.group_by, fmt=args.format, overwrite=args.overwrite, device=args.device)
    except (FileExistsError, KeyError, ValueError) as exc:
        print(f"gamdss audit: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    print(f"audited {len(rep.rows)} clips; report: {rep.report} ({len(rep.files)} files in {rep.out})")
    return 0


def register(sub) -> None:
    p = sub.add_parser("audit", help="report how far reselection moves the annotated keyframes (plots + CSV)",
                       description=__doc__)
    p.add_argument("cache", nargs="+", help="frame cache folder(s); several are compared side by side")
    p.add_argument("--out", help="report folder (default: FIRST_CACHE/audit)")
    add_reselection_arguments(p)
    p.add_argument("--reselection", nargs="+", metavar="CSV",
                   help="reuse `gamdss reselect` results (reselection.csv, one per cache) instead of reselecting")
    p.add_argument("--clips", nargs="+", metavar="ID", help="clip ids for the Fig.-2 curves (default: the three "
                                                           "that moved most and one that did not)")
    p.add_argument("--group-by", nargs="+", metavar="KEY",
                   help="dataset, subject, cache or a meta key (default: dataset and subject-group metadata such as ethnicity or gender)")
    p.add_argument("--format", default="markdown", choices=["markdown", "html"])
    add_run_flags(p, device="cpu or cuda", overwrite="write into a folder that already holds files")
    p.set_defaults(func=_run)
