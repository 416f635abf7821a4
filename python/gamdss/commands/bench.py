"""``gamdss bench``: benchmarks on generated data with known answers.

``gamdss bench keyframes``: error of annotated, reselected (presets and the GAMDSS grid) and
spotted keyframes to the true keyframes of generated clips, per bias model and confounder
(see :mod:`gamdss.accuracy.keyframes`); ``--fps`` and ``--confounders`` narrow the run. A group,
so that more benchmarks can be added as further sub-subcommands.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from gamdss.commands._common import (
    BadInput,
    RunFailed,
    add_run_flags,
    check_out_folder,
    number_type,
    read_config_file,
)


def _list_values(flag: str, values: list[str] | None) -> list[str] | None:
    """The items of a list flag given as ``a b`` or ``a,b`` (None when not given)."""
    if values is None:
        return None
    items = [v.strip() for text in values for v in text.split(",") if v.strip()]
    if not items:
        raise ValueError(f"{flag} needs at least one value")
    return items


def _fps_values(values: list[str] | None) -> tuple[float, ...] | None:
    items = _list_values("--fps", values)
    if items is None:
        return None
    out = []
    for text in items:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"--fps must be positive frame rates, got {text!r}")
        out.append(value)
    return tuple(out)


def _confounder_values(values: list[str] | None) -> tuple[str, ...] | None:
    from gamdss.accuracy.keyframes import CONFOUNDERS

    items = _list_values("--confounders", values)
    if items is None:
        return None
    unknown = [v for v in items if v not in CONFOUNDERS]
    if unknown:
        raise ValueError(f"--confounders: unknown {', '.join(unknown)}; expected some of {', '.join(CONFOUNDERS)}")
    return tuple(items)


def _keyframes(args: argparse.Namespace) -> int:
    # deferred so that `gamdss --help` does not import torch
    import yaml

    from gamdss.accuracy.keyframes import KeyframeBenchConfig, output_paths, run_keyframe_bench
    from gamdss.util import atomic

    try:
        check_out_folder(args.out)
        if args.config is not None:
            if not Path(args.config).is_file():
                what = "is a folder" if Path(args.config).is_dir() else "does not exist"
                raise FileNotFoundError(f"--config {args.config} {what}; give a YAML KeyframeBenchConfig")
            data = read_config_file(args.config, "give the fields to set, or leave out --config", "--config")
            config = KeyframeBenchConfig.from_dict(data, f"--config {args.config}")
        else:
            config = KeyframeBenchConfig.quick() if args.quick else KeyframeBenchConfig()
        changes = {
            k: v
            for k, v in (
                ("clips", args.clips),
                ("seed", args.seed),
                ("fps", _fps_values(args.fps)),
                ("confounders", _confounder_values(args.confounders)),
            )
            if v is not None
        }
        if changes:
            config = config.replace(**changes)
        # before the banner and before any clip is generated
        atomic.refuse_any_existing(output_paths(args.out).values(), args.overwrite)
    except (ValueError, OSError) as exc:  # FileExistsError included: needs --overwrite
        raise BadInput(exc) from exc
    print(
        f"GENERATED data: {config.clips} synthetic micro-expression clips ({config.size}x{config.size} px, "
        f"fps {', '.join(f'{f:g}' for f in config.fps)}) with known keyframes, annotated by the bias models "
        f"{', '.join(config.biases)}; confounders {', '.join(config.confounders)}; "
        f"seed {config.seed}."
    )
    start = time.perf_counter()
    try:
        outputs = run_keyframe_bench(config, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    except (ValueError, OSError, yaml.YAMLError) as exc:
        raise RunFailed(exc) from exc
    print()
    print(outputs.table_text)
    print(f"finished in {time.perf_counter() - start:.0f} s")
    print(f"results (long-format CSV): {outputs.csv}")
    print(f"config: {outputs.config}; table: {outputs.table}")
    print("plots: " + ", ".join(str(p) for p in outputs.plots))
    return 0


def register(sub) -> None:
    """Add the ``bench`` subcommand (``bench keyframes``) to ``sub``, the subparsers of ``gamdss``."""
    bench = sub.add_parser(
        "bench",
        help="benchmarks on generated data with known answers",
        description="Benchmarks on generated data whose answers are known, so that every method's error "
        "can be measured. BENCHMARK: keyframes (gamdss bench keyframes --help).",
    )
    kinds = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    kf = kinds.add_parser(
        "keyframes",
        help="error of annotated, reselected (GAMDSS) and spotted keyframes to the true keyframes of generated clips",
        description="Generate synthetic micro-expression clips with known keyframes (at each --fps, under "
        "each confounder), annotate them with the bias models of human coders, run the correction methods "
        "(the reselection presets, the GAMDSS window x distance x lambda grid and the apex-spotting "
        "baselines) and measure how far each keyframe lies from the true one. Writes keyframes.csv (every error, long format), table.txt (the summary and full "
        "tables, also printed), config.yaml (the run's settings; give it to --config to repeat the run) "
        "and error_vs_lambda_<onset|apex|offset>.png into --out. The data are GENERATED: the errors say "
        "how the methods behave on clips of known truth, not on a real dataset.",
    )
    kf.add_argument("--out", default="bench_keyframes", help="output folder")
    kf.add_argument(
        "--clips",
        type=number_type("--clips", minimum=1, integer=True),
        default=None,
        help="generated clips per condition (default: 48; with --quick 16)",
    )
    kf.add_argument("--quick", action="store_true", help="a small run of 1-2 minutes")
    kf.add_argument(
        "--fps",
        nargs="+",
        default=None,
        metavar="FPS",
        help="frame rates of the clips, e.g. --fps 200 or --fps 60 200 (default 30 60 90 200)",
    )
    kf.add_argument(
        "--confounders",
        nargs="+",
        default=None,
        metavar="NAME",
        help="confounders: clean, flicker, blink, head, gentle, all (default: all six)",
    )
    kf.add_argument(
        "--seed",
        type=number_type("--seed", integer=True),
        default=None,
        help="seed of clips and annotations (default: 0, or the --config's)",
    )
    kf.add_argument("--config", default=None, help="a YAML KeyframeBenchConfig (e.g. a previous run's config.yaml)")
    add_run_flags(kf, overwrite="replace results already in --out", progress_flag="--no-progress")
    kf.set_defaults(func=_keyframes)
