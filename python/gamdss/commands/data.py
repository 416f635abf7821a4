"""``gamdss data check``: what a dataset reader makes of a user's copy of a dataset.

Exit status: 0 when something is usable and every frame is readable; 1 when the check found
failures (nothing usable: no usable annotation row, or no clip with frames under ROOT; or a
damaged frame), with a summary (counts, the first few reasons, where the full list is) and a
hint on stderr ("did you mean --dataset casme3?", "annotation file found but no frames under
ROOT"); 2 for bad input (a wrong flag, a path that is missing or cannot be read, a --json file
that exists without --overwrite).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gamdss.commands._common import (
    BadInput,
    RunFailed,
    add_dataset_arguments,
    add_run_flags,
    check_clip_margin,
    check_out_folder,
    error_text,
)

#: skipped rows (or clips) printed when nothing is usable; the rest are in the --json report.
FIRST_REASONS = 5
#: problem frames printed per clip; the rest are in the --json report.
FRAMES_PER_CLIP = 10


def _frame_check(scan, *, decode: bool, progress: bool) -> dict[str, Any]:
    """Open and check every frame of every clip span (see gamdss.data.datasets.frame_check)."""
    from tqdm.auto import tqdm

    from gamdss.data.datasets.frame_check import DAMAGED_KINDS, check_clip_frames

    cache: dict = {}
    clips = []
    kinds: dict[str, int] = {}
    total = sum(len(c) for c in scan.clips)
    with tqdm(total=total, desc="checking frames", unit="frame", disable=not progress, leave=False) as bar:
        for clip in scan.clips:
            problems = check_clip_frames(clip.frame_paths, decode=decode, cache=cache)
            bar.update(len(clip))
            if problems:
                clips.append(
                    {
                        "row": clip.annotation.row,
                        "clip": clip.clip_id,
                        "folder": str(Path(clip.frame_paths[0]).parent),
                        "damaged": sum(p.damaged for p in problems),
                        "inconsistent": sum(not p.damaged for p in problems),
                        "problems": [
                            {"file": p.path.name, "kind": p.kind, "damaged": p.damaged, "reason": p.detail}
                            for p in problems
                        ],
                    }
                )
    # a frame shared by several clips (one video, several expressions) is counted once
    seen: dict[str, dict[str, Any]] = {}
    for c in clips:
        for p in c["problems"]:
            seen.setdefault(str(Path(c["folder"]) / p["file"]), p)
    for p in seen.values():
        kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
    return {
        "decode": decode,
        "frames_checked": len(cache),
        "clips_checked": len(scan.clips),
        "damaged": sum(v for k, v in kinds.items() if k in DAMAGED_KINDS),
        "inconsistent": sum(v for k, v in kinds.items() if k not in DAMAGED_KINDS),
        "kinds": kinds,
        "clips": clips,
    }


def _hint(rep: dict[str, Any], scan) -> str:
    """Why nothing is usable, in a few words, with what to try."""
    from gamdss.data.datasets import DATASETS, get_dataset

    if rep["usable_records"] == 0:
        if rep["rows"] == 0:
            return "the annotation file has no data rows"
        best, most = None, (0, False)
        file_name = Path(rep["annotation_file"]).name
        for name in DATASETS:
            if name == rep["dataset"]:
                continue
            reader = get_dataset(name)
            try:
                n = len(reader.read_annotations(rep["annotation_file"]).records)
            except Exception:  # noqa: BLE001 - another reader failing on the file is expected
                n = 0
            score = (n, reader.names_annotation_file(file_name))  # ties: the reader the file is named for
            if n > 0 and score > most:
                best, most = name, score
        if best is not None:
            return (
                f"no row of the annotation file is usable as {rep['dataset']}; did you mean "
                f"--dataset {best}? (that reader finds {most[0]} usable records in it)"
            )
        return f"no row of the annotation file is usable as {rep['dataset']}"
    no_folder = [s for s in scan.skipped if s.kind == "no_folder"]
    where = ""
    if no_folder and len(no_folder) == len([s for s in scan.skipped if s.kind != "row"]):
        where = "; no clip folder exists"
        looked = no_folder[0].reason.partition("(looked for ")[2].split(",")[0]
        if looked:
            where += f" (e.g. {looked})"
    return f"annotation file found ({rep['usable_records']} usable records) but no frames under ROOT {scan.root}{where}"


def _named_for(ds, path: Path) -> list[str]:
    """The other datasets whose annotation file name ``path`` has, when it is not one of ``ds``'s
    names (a CASME II file read with ``--dataset samm``); empty otherwise."""
    from gamdss.data.datasets import DATASETS, get_dataset

    if ds.names_annotation_file(path.name):
        return []
    return [n for n in DATASETS if n != ds.name and get_dataset(n).names_annotation_file(path.name)]


def _other_dataset_files(root: Path, dataset: str) -> str:
    """``"; ROOT holds a casme3 annotation file (NAME): did you mean --dataset casme3?"`` when
    another reader finds its annotation file under ``root``; ``""`` otherwise."""
    from gamdss.data.datasets import DATASETS, get_dataset

    found = []
    for name in DATASETS:
        if name == dataset:
            continue
        try:
            path = get_dataset(name).find_annotation_file(root)
        except (FileNotFoundError, OSError):
            continue
        found.append((name, path))
    if not found:
        return ""
    name, path = found[0]
    others = f" (also: {', '.join(n for n, _ in found[1:])})" if len(found) > 1 else ""
    return f"; {root} holds a {name} annotation file ({path.name}): did you mean --dataset {name}?{others}"


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
        "dataset": ds.name,
        "fps": ds.fps,
        "annotation_file": str(ann.path),
        "rows": len(ann.records) + len(ann.skipped),
        "usable_records": len(ann.records),
        "skipped_rows": [{"row": s.row, "subject": s.subject, "clip": s.clip, "reason": s.reason} for s in ann.skipped],
        "corrections": [
            {
                "row": r.row,
                "clip": r.clip_id,
                "field": c.field,
                "original": c.original,
                "corrected": c.corrected,
                "reason": c.reason,
                "source": c.source,
            }
            for r in ann.records
            for c in r.corrections
        ],
        "unmatched_corrections": [
            {
                "subject": u.entry.subject,
                "video": u.entry.video,
                "field": u.entry.field,
                "original": u.entry.original,
                "corrected": u.entry.corrected,
                "source": u.entry.source,
                "reason": u.reason,
            }
            for u in ann.unmatched_corrections
        ],
    }
    if scan is not None:
        frame_skips = [s for s in scan.skipped if s.kind != "row"]
        out["frames"] = {
            "root": str(scan.root),
            "clips_found": len(scan.clips),
            "clips_missing_frames": [
                {"row": s.row, "clip": s.clip, "kind": s.kind, "reason": s.reason} for s in frame_skips
            ],
            "frames_in_spans": sum(len(c) for c in scan.clips),
        }
    named_for = _named_for(ds, ann.path)
    if named_for:
        out["file_named_for"] = named_for
    out["usable"] = bool(usable)
    if not usable:
        out["nothing_usable"] = _hint(out, scan)
        return out
    if scan is not None:
        out["frame_check"] = _frame_check(scan, decode=args.decode, progress=not args.no_progress)
    out["protocols"] = {p.name: protocol_counts(p, usable) for p in protocols_for(ds.name)}
    out["protocol_counts_over"] = "clips with frames" if scan is not None else "annotation records"
    return out


def _print_list(lines: list[str], limit: int | None, rest: str) -> None:
    for line in lines[:limit]:
        print(line)
    if limit is not None and len(lines) > limit:
        print(f"  ... and {len(lines) - limit} more ({rest})")


def _print(rep: dict[str, Any], full_list: str) -> None:
    """The report; when nothing is usable, only the first few reasons (the rest: ``full_list``)."""
    limit = None if rep["usable"] else FIRST_REASONS
    print(f"dataset {rep['dataset']} ({rep['fps']:g} fps)")
    print(f"annotation file: {rep['annotation_file']}")
    if rep.get("file_named_for"):
        names = " or ".join(rep["file_named_for"])
        print(f"  note: its name is that of a {names} annotation file, read here as {rep['dataset']}: check --dataset")
    print(f"rows: {rep['rows']}, usable records: {rep['usable_records']}, skipped rows: {len(rep['skipped_rows'])}")
    _print_list(
        [
            f"  row {s['row']} {'/'.join(x for x in (s['subject'], s['clip']) if x)}: {s['reason']}"
            for s in rep["skipped_rows"]
        ],
        limit,
        full_list,
    )
    print(f"corrections applied: {len(rep['corrections'])}")
    for c in rep["corrections"]:
        print(
            f"  row {c['row']} {c['clip']}: {c['field']} {c['original']!r} -> {c['corrected']!r} "
            f"({c['reason']}; {c['source']})"
        )
    if rep["unmatched_corrections"]:
        print(f"corrections not applied (matched no row): {len(rep['unmatched_corrections'])}")
        _print_list(
            [
                f"  {u['subject']}/{u['video']} {u['field']} {u['original']!r} -> {u['corrected']!r} "
                f"({u['source']}): {u['reason']}"
                for u in rep["unmatched_corrections"]
            ],
            limit,
            full_list,
        )
    if "frames" in rep:
        f = rep["frames"]
        print(
            f"frames under {f['root']}: {f['clips_found']} clips found, {len(f['clips_missing_frames'])} with "
            f"missing frames, {f['frames_in_spans']} frames in the clip spans"
        )
        _print_list(
            [f"  row {s['row']} {s['clip']}: {s['reason']}" for s in f["clips_missing_frames"]], limit, full_list
        )
    if "frame_check" in rep:
        fc = rep["frame_check"]
        how = "decoded" if fc["decode"] else "header, size and mode; --decode decodes every frame"
        kinds = ", ".join(f"{v} {k}" for k, v in sorted(fc["kinds"].items()))
        print(
            f"frame files checked ({how}): {fc['frames_checked']} in {fc['clips_checked']} clips, "
            f"{fc['damaged']} damaged, {fc['inconsistent']} inconsistent{' (' + kinds + ')' if kinds else ''}"
        )
        for c in fc["clips"]:
            print(
                f"  row {c['row']} {c['clip']}: {c['damaged']} damaged, {c['inconsistent']} inconsistent "
                f"in {c['folder']}"
            )
            _print_list(
                [f"    {p['file']}: {p['kind']}: {p['reason']}" for p in c["problems"]], FRAMES_PER_CLIP, full_list
            )
    if "protocols" in rep:
        print(f"protocols (counts over {rep['protocol_counts_over']}):")
        for name, c in rep["protocols"].items():
            classes = ", ".join(f"{k} {v}" for k, v in c["classes"].items())
            dropped = ", ".join(f"{k} {v}" for k, v in c["dropped"].items()) or "none"
            missing = f"; no records of: {', '.join(c['missing_datasets'])}" if c["missing_datasets"] else ""
            print(f"  {name}: {c['samples']} samples, {c['subjects']} subjects; {classes}; dropped: {dropped}{missing}")


def _check(args: argparse.Namespace) -> int:
    # deferred so that `gamdss --help` does not import the readers
    from gamdss.data.datasets import TableError
    from gamdss.util import atomic

    if args.root is None and args.annotations is None:
        raise BadInput("give a dataset ROOT, or --annotations FILE")
    if args.json is not None and Path(args.json).is_dir():
        raise BadInput(f"--json {args.json} is a folder; give a file name")
    try:
        check_clip_margin(args.clip_margin)
    except ValueError as exc:
        raise BadInput(exc) from None
    if args.json is not None and Path(args.json).exists() and not args.overwrite:
        raise BadInput(f"{args.json} exists; pass --overwrite to replace it")
    if args.json is not None:
        try:  # its folder must be one or be makeable, before minutes of checking
            check_out_folder(Path(args.json).parent, "--json's folder")
        except NotADirectoryError as exc:
            raise BadInput(exc) from None
    if args.decode and args.root is None:
        raise BadInput("--decode checks the frames under ROOT; give a dataset ROOT")
    try:
        rep = _report(args)
    except FileNotFoundError as exc:
        hint = ""
        if args.annotations is None and args.root is not None and Path(args.root).is_dir():
            hint = _other_dataset_files(Path(args.root), args.dataset)
        raise BadInput(f"{error_text(exc)}{hint}") from exc
    except (TableError, ValueError, OSError) as exc:  # an unreadable input: bad input
        raise BadInput(exc) from exc
    full_list = f"all in {args.json}" if args.json is not None else "the full list: --json FILE"
    _print(rep, full_list)
    if args.json is not None:
        atomic.write_text(args.json, json.dumps(rep, indent=2, default=str) + "\n")
        print(f"report written to {args.json}")
    if not rep["usable"]:
        raise RunFailed(f"nothing usable: {rep['nothing_usable']}")
    fc = rep.get("frame_check")
    if fc and fc["damaged"]:
        raise RunFailed(
            f"{fc['damaged']} damaged frame(s) in {sum(1 for c in fc['clips'] if c['damaged'])} "
            f"clip(s); preprocessing would fail on those clips"
        )
    return 0


def register(sub) -> None:
    """Add the ``data`` subcommand and its ``data check`` to ``sub``, the subparsers of ``gamdss``."""
    data = sub.add_parser(
        "data",
        help="dataset readers: check a dataset copy or an annotation file",
        description="What the dataset readers make of a copy of a dataset. SUBCOMMAND: check (gamdss data "
        "check --help): the annotation rows that cannot be used and why, the corrections applied, the "
        "frames found and the protocol counts, before preprocessing.",
    )
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    check = data_sub.add_parser(
        "check",
        help="report what the reader makes of a dataset: skipped rows, corrections, frames, protocol counts",
        description="Read a dataset's annotation file (found under ROOT, or given with --annotations) and print "
        "the rows that cannot be used with their reasons, the corrections applied, the frames check "
        "(when ROOT is given: every frame file of every clip is opened and compared with its clip's "
        "first frame) and sample/subject/class counts of every protocol of the dataset. Exit status 1 "
        "when nothing is usable or a frame is damaged, 2 for bad input (a wrong flag, a missing or unreadable "
        "file).",
    )
    add_dataset_arguments(check, root_optional=True)
    check.add_argument("--json", type=Path, default=None, help="also write the report as JSON to this file")
    check.add_argument(
        "--decode",
        action="store_true",
        help="decode every frame fully (slower; also catches corrupt data inside a complete file "
        "and truncated BMP/TIFF frames; truncated JPEG and PNG frames are caught without it)",
    )
    add_run_flags(check, overwrite="replace an existing --json file", progress_flag="--no-progress")
    check.set_defaults(func=_check)
