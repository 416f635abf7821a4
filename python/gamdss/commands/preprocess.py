"""``gamdss preprocess``: face-crop a dataset's clips into a frame cache."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    """``224`` (square) or ``HxW`` such as ``224x192``."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be N or HxW in pixels, got {text!r}") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--size must be N or HxW with positive sides, got {text!r}")
    return (values[0], values[-1])


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
    p.add_argument("root", type=Path, help="dataset folder in its original layout")
    p.add_argument("--dataset", required=True, help="casme, casme2, samm, casme_sq, casme3, mmew or 4dme")
    p.add_argument("--out", type=Path, required=True, help="cache folder (created; resumed when it exists)")
    p.add_argument("--annotations", type=Path, default=None,
                   help="the annotation file (default: found under ROOT by its known names)")
    p.add_argument("--corrections", type=Path, default=None,
                   help="an extra corrections list (YAML) applied after the shipped one")
    p.add_argument("--clip-margin", type=float, default=0.5,
                   help="frames kept around onset..offset, as a fraction of offset-onset (default 0.5)")
    p.add_argument("--size", type=_size, default=(224, 224), help="output frame size: N or HxW (default 224)")
    p.add_argument("--box-method", choices=["median", "onset"], default="median",
                   help="median: median box over onset, apex, offset and --detect-frames others (default); "
                        "onset: the onset frame's box")
    p.add_argument("--margin", type=float, default=0.2,
                   help="added on each side of the face box, as a fraction of its longer side (default 0.2)")
    p.add_argument("--detect-frames", type=int, default=4,
                   help="evenly spaced frames tried besides onset, apex, offset (median only; default 4)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: min(4, CPU count))")
    p.add_argument("--device", default="cpu", help="where MTCNN runs: cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--full-frame-fallback", action="store_true",
                   help="cache the whole frame for a clip without a face instead of failing it")
    p.add_argument("--overwrite", action="store_true",
                   help="redo every clip, and replace a cache made with other settings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_preprocess)
