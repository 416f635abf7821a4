"""``gamdss demo``: the whole pipeline on a generated dataset, with no data needed."""

from __future__ import annotations

import argparse
from pathlib import Path

from gamdss.commands._common import (
    BadInput,
    add_run_flags,
    check_device,
    check_out_folder,
    fail,
    flag_wording,
    size_type,
)
from gamdss.settings.reselection import PRESETS

BANNER = (
    "gamdss demo: SYNTHETIC data only. The clips are real face photographs shipped with\n"
    "scikit-image and matplotlib, moved by small generated action-unit deformations with known\n"
    "onset/apex/offset, and annotated by a model of human coding errors. They are not real\n"
    "micro-expressions, and the accuracy below says nothing about real data."
)


#: DemoConfig fields set by a flag of the same name (their errors name the flag)
_FLAG_FIELDS = ("subjects", "clips_per_subject", "frame_size", "cache_size", "epochs", "seed", "threads")


def _config(args: argparse.Namespace):
    """The :class:`~gamdss.demo.DemoConfig` of the flags; :class:`BadInput` naming the first
    bad flag, before anything is printed or written."""
    from gamdss.demo import DemoConfig

    try:
        check_device(args.device)  # first: its message already names --device
        check_out_folder(args.out)
        return DemoConfig(
            out=args.out,
            subjects=args.subjects,
            clips_per_subject=args.clips_per_subject,
            frame_size=args.frame_size,
            cache_size=args.cache_size,
            bias=args.bias,
            epochs=args.epochs,
            preset=args.preset,
            seed=args.seed,
            device=args.device,
            threads=args.threads,
        )
    except NotADirectoryError as exc:
        raise BadInput(exc) from exc
    except ValueError as exc:
        raise BadInput(flag_wording(str(exc).removeprefix("demo settings: "), _FLAG_FIELDS)) from exc


def _demo(args: argparse.Namespace) -> int:
    import gamdss
    import gamdss_ext
    from gamdss.demo import run_demo
    from gamdss.util.run_lock import FolderBusyError

    cfg = _config(args)
    info = gamdss_ext.build_info()
    print(BANNER)
    print(
        f"\ngamdss {gamdss.__version__}, torch {info['torch_version']}, CPU kernel {info['cpu_kernel']}, "
        f"CUDA kernels compiled: {info['cuda_kernels']}; running on {args.device}"
    )
    try:
        result = run_demo(cfg, overwrite=args.overwrite, progress=not args.no_progress)
    except FileExistsError as exc:
        return fail("demo", exc)
    except (FolderBusyError, OSError) as exc:  # a run that could not start or failed
        return fail("demo", exc, 1)

    err = result.keyframe_errors
    print(
        "\nKeyframe error against the TRUE keyframes (mean |error| in frames at 200 fps; "
        "only synthetic data can show this):"
    )
    print(f"  {'':<12} {'onset':>7} {'apex':>7} {'offset':>7}")
    for kind in ("annotated", "reselected"):
        print(f"  {kind:<12} " + " ".join(f"{err[kind][k]:>7.2f}" for k in ("onset", "apex", "offset")))

    table = (result.train_dir / "table.md").read_text(encoding="utf-8")
    print(
        f"\nLOSO results (pooled over {result.results['num_folds']} folds, "
        f"{result.results['num_samples']} held-out samples; protocol {result.results['protocol']}):\n"
    )
    print(table.strip())
    print("\n" + chance_line(result.results))
    print(
        f"These numbers repeat when this command runs again on this machine (seed {cfg.seed}, "
        f"{cfg.threads or 'the default number of'} torch thread(s)); on another machine the LOSO table can differ (README, "
        f"'The demo')."
    )
    print("\nOutputs:")
    for label, path in (
        ("dataset (CASME II layout)", result.dataset),
        ("frame cache", result.cache),
        ("corrected annotations", result.reselection),
        ("audit report", result.audit_report),
        ("training results", result.train_dir),
    ):
        print(f"  {label:<26} {path}")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    total = sum(result.seconds.values())
    print(f"\nTime: {timing} (total {total:.0f} s; installing not included). The data were SYNTHETIC.")
    return 0


def chance_line(results: dict) -> str:
    """Whether the fused prediction beats chance: always predicting the largest class."""
    from gamdss.train.results import MODE_LABELS, chance_level

    mode = "fused" if "fused" in results["modes"] else next(iter(results["modes"]))
    metrics = results["modes"][mode]
    acc, uar = chance_level(metrics)
    above = metrics["acc"] > acc and metrics["uar"] > uar
    return (
        f"Chance level (always the largest class): ACC {100 * acc:.2f}, UAR {100 * uar:.2f}; the "
        f"{MODE_LABELS[mode]} prediction is {'above' if above else 'NOT above'} it."
    )


def register(sub) -> None:
    """Add the ``demo`` subcommand (the whole pipeline on generated data) to ``sub``, the subparsers of ``gamdss``."""
    demo = sub.add_parser(
        "demo",
        help="run the whole pipeline on a generated dataset (no data needed)",
        description="Generate a small synthetic dataset with known keyframes (CASME II layout), "
        "preprocess it (MTCNN), reselect its keyframes, audit the annotations, train a "
        "small GAMDSS model under LOSO and print the results.",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("gamdss-demo"),
        help="output folder (default ./gamdss-demo; a rerun deletes only the files the earlier demo wrote)",
    )
    demo.add_argument("--subjects", type=int, default=5, help="generated subjects (one LOSO fold each)")
    demo.add_argument("--clips-per-subject", type=int, default=6, help="generated clips per subject")
    demo.add_argument(
        "--frame-size", type=size_type("--frame-size"), default=(160, 160), help="generated frames, N or HxW pixels"
    )
    demo.add_argument(
        "--cache-size", type=size_type("--cache-size"), default=(64, 64), help="face crops, N or HxW pixels"
    )
    demo.add_argument(
        "--bias",
        default="typical",
        choices=["none", "careful", "typical", "multicultural"],
        help="annotation-bias model playing the human coder",
    )
    demo.add_argument(
        "--preset",
        default="recommended",
        choices=list(PRESETS),
        help="reselection preset for the corrected annotations and for training (default recommended)",
    )
    demo.add_argument("--epochs", type=int, default=20, help="training epochs per LOSO fold")
    demo.add_argument("--seed", type=int, default=0, help="seed of the generated data and of training")
    demo.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads of training (fixed so that a rerun prints the same numbers; 0: as many as "
        "torch picks for the machine; more than one thread is slower on a busy machine)",
    )
    add_run_flags(
        demo,
        device="cpu or cuda",
        overwrite="use --out even if it holds files not made by the demo",
        progress_flag="--no-progress",
    )
    demo.set_defaults(func=_demo)
