"""``gamdss preprocess``: face-crop a dataset's clips into a frame cache.

Exit status: 0 when every clip is cached; 2 for bad input (a dataset that cannot be read, a cache made with other settings without --overwrite, a
wrong flag); 1 when any clip failed (each ``FAILED`` line and a
one-line summary go to stderr, and the failed clips are listed in
``CACHE/preprocess-failures.txt``), when another run holds the cache's lock, or on a full
disk (one line naming the file); 130 after SIGINT (Ctrl-C) and 143 after SIGTERM, with one
line on stderr saying how many clips are in the (written) manifest. Finished clips are kept
in every case, so the same command resumes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gamdss.commands._common import (
    BadInput,
    RunFailed,
    add_dataset_arguments,
    add_run_flags,
    check_clip_margin,
    check_out_folder,
    cli_wording,
    flag_wording,
    size_type,
)

_size = size_type("--size")
#: PreprocessConfig fields set by a flag of the same name (their errors name the flag)
_FLAG_FIELDS = ("size", "box_method", "margin", "detect_frames", "workers", "damaged_frames")


def _preprocess(args: argparse.Namespace) -> int:
    # deferred so that `gamdss --help` does not import torch
    from gamdss.data.datasets import TableError, scan_dataset
    from gamdss.data.preprocess import FrameReadError, PreprocessConfig, PreprocessInterrupted, preprocess_clips
    from gamdss.util.atomic import DiskFullError
    from gamdss.util.devices import check_device
    from gamdss.util.run_lock import FolderBusyError

    prog = "gamdss preprocess"
    try:  # the flags first: bad input is told before the dataset is scanned
        config = PreprocessConfig(
            size=args.size,
            box_method=args.box_method,
            margin=args.margin,
            detect_frames=args.detect_frames,
            device=args.device,
            workers=args.workers,
            full_frame_fallback=args.full_frame_fallback,
            damaged_frames=args.damaged_frames,
        )
        check_device(config.device, "--device")
    except ValueError as exc:
        raise BadInput(flag_wording(str(exc), _FLAG_FIELDS)) from exc
    try:  # not through flag_wording: a path may hold a field name
        check_clip_margin(args.clip_margin)
        check_out_folder(args.out)
    except (ValueError, NotADirectoryError) as exc:
        raise BadInput(exc) from exc
    try:
        scan = scan_dataset(
            args.root, args.dataset, annotations=args.annotations, margin=args.clip_margin, corrections=args.corrections
        )
    except (TableError, FileNotFoundError, ValueError, OSError) as exc:  # a wrong flag or an unreadable dataset
        raise BadInput(exc) from exc
    print(
        f"dataset {scan.dataset} under {scan.root}: {len(scan.clips)} clip(s) with frames, {len(scan.skipped)} skipped"
    )
    for s in scan.skipped:
        who = s.clip or s.subject or ""  # clip ids already hold the subject
        print(f"  skipped row {s.row:>5} {who}: {s.reason}")
    if not scan.clips:
        raise RunFailed(
            f"no usable clips in {scan.root} (see the skipped rows above; `gamdss data check` tells why); nothing written"
        )

    try:
        report = preprocess_clips(
            scan.clips,
            args.out,
            dataset=scan.dataset,
            size=args.size,
            box_method=args.box_method,
            margin=args.margin,
            detect_frames=args.detect_frames,
            workers=args.workers,
            device=args.device,
            full_frame_fallback=args.full_frame_fallback,
            overwrite=args.overwrite,
            damaged_frames=args.damaged_frames,
            progress=not args.no_progress,
        )
    except PreprocessInterrupted as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_status
    except DiskFullError as exc:
        raise RunFailed(
            f"{exc}; free some space and run the same command again to resume (finished clips are kept)"
        ) from exc
    except (FolderBusyError, FrameReadError, OSError) as exc:  # busy, unreadable frames, I/O: the run failed, 1
        raise RunFailed(exc) from exc
    except ValueError as exc:  # a cache made with other settings, an out that is a file: the flags, 2
        raise BadInput(exc) from exc
    print(report.summary())
    if report.failed:
        for line in report.failure_lines():
            print(f"  {cli_wording(' '.join(line.split()))}", file=sys.stderr)
        raise RunFailed(report.failure_summary())
    return 0


def register(sub) -> None:
    """Add the ``preprocess`` subcommand (dataset to frame cache) to ``sub``, the subparsers of ``gamdss``."""
    p = sub.add_parser(
        "preprocess",
        help="detect faces, crop and resize every clip of a dataset into a frame cache",
        description="Scan a dataset in its original layout, choose one face box per clip with MTCNN "
        "(facenet-pytorch, bundled weights, offline), crop and resize every frame and write a "
        "frame cache (uint8 .npy per clip + manifest.json). Resumable: run it again after an "
        "interruption and finished clips are kept. One run per cache at a time (a lock in the "
        "folder). Exit status: 0 every clip cached; 2 bad input; 1 some clip failed (listed on stderr and in "
        "CACHE/preprocess-failures.txt), the cache is in use, or the disk is full; 130 after "
        "Ctrl-C, 143 after SIGTERM (the manifest is written first).",
    )
    add_dataset_arguments(p)
    p.add_argument("--out", type=Path, required=True, help="cache folder (created; resumed when it exists)")
    p.add_argument("--size", type=_size, default=(224, 224), help="output frame size in pixels: N (square) or HxW")
    p.add_argument(
        "--box-method",
        choices=["median", "onset"],
        default="median",
        help="median: median box over onset, apex, offset and --detect-frames others; onset: the onset frame's box",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.2,
        help="added on each side of the face box, as a fraction of its longer side",
    )
    p.add_argument(
        "--detect-frames",
        type=int,
        default=4,
        help="evenly spaced frames tried besides onset, apex, offset (--box-method median only)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes (default: min(4, CPUs it may use))",
    )
    p.add_argument(
        "--full-frame-fallback",
        action="store_true",
        help="cache the whole frame for a clip without a face instead of failing it",
    )
    p.add_argument(
        "--damaged-frames",
        choices=["fail", "repeat"],
        default="fail",
        help="a clip with an empty, truncated or unreadable frame, or one of another size: fail the clip "
        "naming the frames, or repeat the nearest good frame in its place (recorded in "
        "the manifest as repaired_frames)",
    )
    add_run_flags(
        p,
        device="where MTCNN runs: cpu, cuda or cuda:N",
        overwrite="redo every clip, and replace a cache made with other settings",
        progress_flag="--no-progress",
    )
    p.set_defaults(
        func=_preprocess, interrupted_note="finished clips are kept in the cache; run the same command again to resume"
    )
