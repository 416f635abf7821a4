"""``gamdss data check``: what a dataset reader makes of a user's copy of a dataset."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gamdss.commands._common import add_dataset_arguments, add_run_flags


def _report(args: argparse.Namespace) -> dict[str, Any]:
    from gamdss.data.datasets import get_dataset
    from gamdss.data.protocols import protocol_counts, protocols_for

    ds = get_dataset(args.dataset)
    if args.root is not None:
        scan = ds.scan(args.root, annotations=args.annotations, margin=args.clip_margin, corrections=args.corrections)
        ann = scan.annotations
    else:
        scan = None
        ann = ds.read_annotations(args.annotations, corrections=args.corrections)
    usable = scan.clips if scan is not None else ann.records
    out: dict[str, Any] = {
        "dataset": ds.name, "fps": ds.fps, "annotation_file": str(ann.path),
        "rows": len(ann.records) + len(ann.skipped), "usable_records": len(ann.records),
        "skipped_rows": [{"row": s.row, "subject": s.subject, "clip": s.clip, "reason": s.reason} for s in ann.skipped],
        "corrections": [{"row": r.row, "clip": r.clip_id, "field": c.field, "original": c.original,
                         "corrected": c.corrected, "reason": c.reason, "source": c.source}
                        for r in ann.records for c in r.corrections],
        "unmatched_corrections": [{"subject": u.entry.subject, "video": u.entry.video, "field": u.entry.field,
                                   "original": u.entry.original, "corrected": u.entry.corrected,
                                   "source": u.entry.source, "reason": u.reason}
                                  for u in ann.unmatched_corrections],
    }
    if scan is not None:
        frame_skips = [s for s in scan.skipped if s not in ann.skipped]
        out["frames"] = {"root": str(scan.root), "clips_found": len(scan.clips),
                         "clips_missing_frames": [{"row": s.row, "clip": s.clip, "reason": s.reason} for s in frame_skips],
                         "frames_in_spans": sum(len(c) for c in scan.clips)}
    out["protocols"] = {p.name: protocol_counts(p, usable) for p in protocols_for(ds.name)}
    out["protocol_counts_over"] = "clips with frames" if scan is not None else "annotation records"
    return out


def _print(rep: dict[str, Any]) -> None:
    print(f"dataset {rep['dataset']} ({rep['fps']:g} fps)")
    print(f"annotation file: {rep['annotation_file']}")
    print(f"rows: {rep['rows']}, usable records: {rep['usable_records']}, skipped rows: {len(rep['skipped_rows'])}")
    for s in rep["skipped_rows"]:
        who = "/".join(x for x in (s["subject"], s["clip"]) if x)
        print(f"  row {s['row']} {who}: {s['reason']}")
    print(f"corrections applied: {len(rep['corrections'])}")
    for c in rep["corrections"]:
        print(f"  row {c['row']} {c['clip']}: {c['field']} {c['original']!r} -> {c['corrected']!r} "
              f"({c['reason']}; {c['source']})")
    if rep["unmatched_corrections"]:
        print(f"corrections not applied (matched no row): {len(rep['unmatched_corrections'])}")
        for u in rep["unmatched_corrections"]:
            print(f"  {u['subject']}/{u['video']} {u['field']} {u['original']!r} -> {u['corrected']!r} "
                  f"({u['source']}): {u['reason']}")
    if "frames" in rep:
        f = rep["frames"]
        print(f"frames under {f['root']}: {f['clips_found']} clips found, {len(f['clips_missing_frames'])} with "
              f"missing frames, {f['frames_in_spans']} frames in the clip spans")
        for s in f["clips_missing_frames"]:
            print(f"  row {s['row']} {s['clip']}: {s['reason']}")
    print(f"protocols (counts over {rep['protocol_counts_over']}):")
    for name, c in rep["protocols"].items():
        classes = ", ".join(f"{k} {v}" for k, v in c["classes"].items())
        dropped = ", ".join(f"{k} {v}" for k, v in c["dropped"].items()) or "none"
        missing = f"; no records of: {', '.join(c['missing_datasets'])}" if c["missing_datasets"] else ""
        print(f"  {name}: {c['samples']} samples, {c['subjects']} subjects; {classes}; dropped: {dropped}{missing}")


def _check(args: argparse.Namespace) -> int:
    from gamdss import atomic
    from gamdss.data.datasets import TableError

    if args.root is None and args.annotations is None:
        print("gamdss data check: give a dataset ROOT, or --annotations FILE", file=sys.stderr)
        return 2
    if args.json is not None and Path(args.json).is_dir():
        print(f"gamdss data check: --json {args.json} is a folder; give a file name", file=sys.stderr)
        return 2
    if args.clip_margin is not None and not args.clip_margin >= 0:
        print(f"gamdss data check: --clip-margin must be >= 0, got {args.clip_margin}", file=sys.stderr)
        return 2
    if args.json is not None and Path(args.json).exists() and not args.overwrite:
        print(f"gamdss data check: {args.json} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    try:
        rep = _report(args)
    except (TableError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"gamdss data check: {exc}", file=sys.stderr)
        return 1
    _print(rep)
    if args.json is not None:
        atomic.write_text(args.json, json.dumps(rep, indent=2, default=str) + "\n")
        print(f"report written to {args.json}")
    return 0


def register(sub) -> None:
    data = sub.add_parser("data", help="dataset readers: check a dataset copy or an annotation file")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    check = data_sub.add_parser(
        "check", help="report what the reader makes of a dataset: skipped rows, corrections, frames, protocol counts",
        description="Read a dataset's annotation file (found under ROOT, or given with --annotations) and print "
                    "the rows that cannot be used with their reasons, the corrections applied, the frames check "
                    "(when ROOT is given) and sample/subject/class counts of every protocol of the dataset.")
    add_dataset_arguments(check, root_optional=True)
    check.add_argument("--json", type=Path, default=None, help="also write the report as JSON to this file")
    add_run_flags(check, overwrite="replace an existing --json file")
    check.set_defaults(func=_check)
