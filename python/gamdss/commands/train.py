"""``gamdss train CONFIG [key=value ...]``: LOSO training with a preset or a YAML config."""

from __future__ import annotations

import argparse

from gamdss.commands._common import add_run_flags, check_out_folder, fail, read_config_file


def summary_table(results: dict) -> str:
    """Plain-text table of pooled ACC / UF1 / UAR (%) per prediction mode."""
    from gamdss.train.results import MODE_LABELS

    planned = results.get("num_planned_folds", results["num_folds"])
    folds = f"{results['num_folds']} of {planned}" if results["num_folds"] < planned else f"{results['num_folds']}"
    lines = [
        f"{'mode':<17} {'ACC':>7} {'UF1':>7} {'UAR':>7}   (pooled over {folds} folds, {results['num_samples']} samples)"
    ]
    for mode, m in results["modes"].items():
        lines.append(f"{MODE_LABELS[mode]:<17} {100 * m['acc']:7.2f} {100 * m['uf1']:7.2f} {100 * m['uar']:7.2f}")
    if "fused" in results["modes"]:
        lines.append("fused (rise+fall): mean of both branches' probabilities; the paper's 'full' is the rise row")
    absent = sorted({c for m in results["modes"].values() for c in m["absent_classes"]})
    if absent:
        names = [results["class_names"][c] for c in absent]
        lines.append(f"classes absent from labels and predictions (left out of UF1/UAR): {', '.join(names)}")
    return "\n".join(lines)


def _config_file(name_or_path: str):
    """The YAML file of a preset name or path; ``FileNotFoundError``/``IsADirectoryError``/
    ``ValueError`` naming CONFIG when it is missing, a folder, empty or not a mapping."""
    from pathlib import Path

    from gamdss.train.config import resolve_config_path

    if Path(name_or_path).is_dir():
        raise IsADirectoryError(f"CONFIG {name_or_path} is a folder, not a YAML config file or a preset name")
    path = resolve_config_path(name_or_path)
    read_config_file(path, "write the settings to change, or use a preset such as tiny-cpu")
    return path


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gamdss.train.config import load_config
    from gamdss.train.executors import FoldFailedError
    from gamdss.train.fold import DivergedError
    from gamdss.train.loso import run_loso
    from gamdss.util.run_lock import FolderBusyError

    overrides = list(args.overrides)
    for flag, key in (
        (args.output, "run.output_dir"),
        (args.executor, "run.executor"),
        (args.protocol, "evaluation.protocol"),
        (args.device, "run.device"),
        (args.ray_address, "run.ray_address"),
    ):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    try:
        config_file = _config_file(args.config)
        cfg = load_config(config_file, overrides)
    except (ValueError, OSError) as exc:  # ConfigError is a ValueError
        return fail("train", exc)
    if args.print_config:
        print(cfg.to_yaml())
        return 0
    out = Path(cfg.run.output_dir)
    try:
        check_out_folder(out, "run.output_dir")
        results = run_loso(cfg, overwrite=args.overwrite, progress=not args.no_progress, config_file=config_file)
    except FolderBusyError as exc:  # the input is fine; the run cannot start now: 1
        return fail("train", exc, status=1)
    except FoldFailedError as exc:  # raised while a fold trained, whatever its type: the run failed, 1
        if exc.cause.startswith(f"{DivergedError.__name__}:"):  # the same command diverges again
            note = (
                "finished folds are kept; another optim.lr is another config: train it into another --output "
                "(--overwrite would retrain every fold of this one)"
            )
        else:
            note = "finished folds are kept, rerun the same command to resume"
        return fail("train", f"{exc}; {note}", status=1)
    # Found before any fold trains: RunSetupError is a ValueError; DataChangedError and
    # ConfigChangedError FileExistsErrors: the inputs, 2
    except (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError) as exc:
        return fail("train", exc)
    except (OSError, RuntimeError) as exc:  # a full disk, an I/O error, out of memory: the run failed, 1
        return fail("train", exc, status=1)
    print(f"\n{cfg.name} on {cfg.data.protocol}: {results['protocol_description']}")
    print(summary_table(results))
    print(f"results: {out / 'results.json'}, {out / 'table.md'}, {out / 'predictions.csv'}")
    return 0


def register(sub) -> None:
    """Add the ``train`` subcommand (LOSO training) to ``sub``, the subparsers of ``gamdss``."""
    p = sub.add_parser(
        "train",
        help="LOSO training (honest protocol by default) with a preset or a YAML config",
        description="Train one model per held-out subject and report ACC/UF1/UAR pooled over folds. "
        "CONFIG is a preset name (casme2-5, casme2-3, samm-5, samm-3, casme3-7, casme3-4, "
        "casme3-3, megc2019, tiny-cpu) or a YAML file; override any setting with key=value, "
        "e.g. data.caches=[caches/casme2] optim.epochs=50. An interrupted run resumes when "
        "started again with the same config and output folder. One run at a time writes "
        "an output folder: a second one is refused (exit status 1) while the first runs.\n\n"
        "The run folder is run.output_dir (--output): runs/<preset> for a preset (e.g. runs/casme2-5), "
        "runs/gamdss for a YAML config that sets none. A run writes into it config.yaml (the config it "
        "used), plan.json (samples, folds and the data fingerprint), reselection.csv (the keyframes "
        "trained on, when reselection is enabled), folds/ (one record per finished fold, with its "
        "held-out features), results.json, predictions.csv, folds.csv, table.md and table.tex (the "
        "pooled results), per_class_<mode>.csv and confusion_<mode>.png per prediction mode and, "
        "with run.tsne, tsne_<phase>.png/.csv.",
    )
    p.add_argument("config", help="preset name or path to a YAML config")
    # default=[]: a positional with nargs="*" and no default counts as required in argparse
    p.add_argument(
        "overrides", nargs="*", default=[], metavar="key=value", help="dotted overrides, values read as YAML"
    )
    p.add_argument("--output", help="run folder (run.output_dir; default: the config's, runs/<preset> for a preset)")
    p.add_argument("--executor", choices=["local", "ray"], help="run.executor")
    p.add_argument("--ray-address", help="address of an existing Ray cluster (run.ray_address)")
    p.add_argument(
        "--protocol",
        choices=["honest", "inner_val", "released"],
        help="evaluation.protocol; 'released' selects epochs on the held-out subject "
        "(optimistic; only to compare with published numbers)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    add_run_flags(
        p,
        device="run.device: auto, cpu, cuda, cuda:N",
        device_default=None,
        overwrite="replace an existing run in the output folder",
        progress_flag="--no-progress",
    )
    p.set_defaults(
        func=_train,
        trailing_positionals="overrides",
        interrupted_note="finished folds are kept, rerun the same command to resume",
    )
