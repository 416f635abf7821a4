"""``gamdss preprocess``: face-crop a dataset's clips into a frame cache."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gamdss.commands._common import add_dataset_arguments, add_run_flags, size_type

_size = size_type("--size")


def _preprocess(args: argparse.Namespace) -> int:
    from gamdss.data.datasets import TableError, scan_dataset
    from gamdss.data.preprocess import preprocess_clips

    prog = "gamdss preprocess"
    try:
        scan = scan_dataset(args.root, args.dataset, annotations=args.annotations, margin=args.clip_margin,
                            corrections=args.corrections)
    except (TableError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    print(f"dataset {scan.dataset} under {scan.root}: {len(scan.clips)} clip(s) with frames, "
          f"{len(scan.skipped)} skipped")
    for s in scan.skipped:
        who = s.clip or s.subject or ""  # clip ids already hold the subject
        print(f"  skipped row {s.row:>5} {who}: {s.reason}")
    if not scan.clips:
        print(f"{prog}: no usable clips in {scan.root} (see the skipped rows above); nothing written",
              file=sys.stderr)
        return 1

    try:
        report = preprocess_clips(
            scan.clips, args.out, dataset=scan.dataset, size=args.size, box_method=args.box_method,
            margin=args.margin, detect_frames=args.detect_frames, workers=args.workers, device=args.device,
            full_frame_fallback=args.full_frame_fallback, overwrite=args.overwrite, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    if report.failed and not report.done and not report.already_done:
        print(f"{prog}: every clip failed; nothing was cached", file=sys.stderr)
        return 1
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "preprocess", help="detect faces, crop and resize every clip of a dataset into a frame cache",
        description="Scan a dataset in its original layout, choose one face box per clip with MTCNN "
                    "(facenet-pytorch, bundled weights, offline), crop and resize every frame and write a "
                    "frame cache (uint8 .npy per clip + manifest.json). Resumable: run it again after an "
                    "interruption and finished clips are kept.")
    add_dataset_arguments(p)
    p.add_argument("--out", type=Path, required=True, help="cache folder (created; resumed when it exists)")
    p.add_argument("--size", type=_size, default=(224, 224), help="output frame size: N or HxW (default 224)")
    p.add_argument("--box-method", choices=["median", "onset"], default="median",
                   help="median: median box over onset, apex, offset and --detect-frames others (default); "
                        "onset: the onset frame's box")
    p.add_argument("--margin", type=float, default=0.2,
                   help="added on each side of the face box, as a fraction of its longer side (default 0.2)")
    p.add_argument("--detect-frames", type=int, default=4,
                   help="evenly spaced frames tried besides onset, apex, offset (median only; default 4)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: min(4, CPU count))")
    p.add_argument("--full-frame-fallback", action="store_true",
                   help="cache the whole frame for a clip without a face instead of failing it")
    add_run_flags(p, device="where MTCNN runs: cpu, cuda or cuda:N (default cpu)",
                  overwrite="redo every clip, and replace a cache made with other settings", progress_flag="--no-progress")
    p.set_defaults(func=_preprocess)
