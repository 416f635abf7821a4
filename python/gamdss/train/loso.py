"""The LOSO runner: one fresh model per held-out subject, resumable, local or on Ray.

::

    from gamdss.train import load_config, run_loso
    cfg = load_config("tiny-cpu", ["data.caches=[/data/casme2-cache]", "run.output_dir=runs/t"])
    summary = run_loso(cfg)          # writes runs/t/{config.yaml, folds/, results.*}

Output folder::

    config.yaml          the config the run used (a rerun with another config is refused
                         unless overwrite=True; the same config resumes); left as it is when it
                         already holds the run's config, and never rewritten when it is the
                         CONFIG file the run was given (:func:`check_config_file`)
    plan.json            format tag ``gamdss-loso-plan``, samples, labels, subjects, folds (all
                         of them, also when ``run.folds`` trains some),
                         dropped clips, and the data fingerprint: a rerun whose caches now hold
                         other clips, labels, keyframes or pixels is refused unless overwrite=True
    reselection.csv      annotated and reselected keyframes of every clip (when enabled), in
                         the columns of ``gamdss reselect`` (gamdss.data.reselection_files) plus
                         ``cache`` (the cache's position in data.caches)
    folds/<subject>.json          one finished fold (written atomically when it finishes), with
                                  the digest of the comparable config that trained it: a fold of
                                  another config is refused unless overwrite=True
    folds/<subject>.features.npz  its held-out features (for t-SNE)
    folds/<subject>.ckpt.pt       mid-fold checkpoint (run.epoch_checkpoints; removed when done)
    .gamdss.lock         while a run writes the folder: its lock (gamdss.util.run_lock), naming it
    results.json, predictions.csv, folds.csv, table.md, table.tex, per_class_<mode>.csv,
    confusion_<mode>.png, tsne_<phase>.png/.csv      (see gamdss.train.results): pooled over
                         every finished fold in the folder (a ``run.folds`` run adds its folds to
                         those finished before), saying so when that is not every fold of the plan

A folder is a run only when its ``plan.json`` carries the format tag or its ``config.yaml``
loads as a :class:`TrainConfig`; any other folder that holds files is refused, with or without
``overwrite``. ``overwrite`` deletes only the exact file names a run writes (:func:`gamdss.train.
layout.owned_paths`), never other files in the folder.

Reselection happens once for every clip before any fold starts (read from ``gamdss
reselect`` outputs named by ``reselection.files``, or computed with the same function:
:mod:`gamdss.train.reselection`) and is applied from that table: to the training subjects always
(when enabled), to held-out subjects only with ``reselection.apply_to_test``.

One run at a time writes a folder: :func:`run_loso` holds the folder's lock
(:func:`gamdss.util.run_lock.hold`) from its first check to its last file, and a second run into
the same folder meanwhile is refused with :class:`gamdss.util.run_lock.FolderBusyError` naming
the first (pid, host, start time). The operating system frees the lock however the run ends.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from gamdss.data.cache import FrameCache
from gamdss.data.keyframes import KeyframeDataset
from gamdss.data.protocols import get_protocol, loso_folds
from gamdss.data.reselection_files import rows_to_csv
from gamdss.train.config import RELEASED_NOTE, VOLATILE_KEYS, ConfigError, TrainConfig, comparable, config_digest
from gamdss.train.dataset import Sample, build_samples
from gamdss.train.executors import make_executor
from gamdss.train.fingerprint import describe_changes, fold_fingerprint, samples_fingerprint
from gamdss.train.fold import (
    FOLD_FORMAT,
    FOLD_VERSION,
    FoldOutput,
    FoldPayload,
    check_model_config,
    run_fold,
    uses_amp,
)
from gamdss.train.layout import PLAN_FORMAT, RUN_MARKERS, fold_paths, owned_paths, safe_name
from gamdss.train.reselection import ReselectionSourceError, run_keyframes
from gamdss.train.results import write_results
from gamdss.train.seeds import fold_seed
from gamdss.util import atomic, run_lock
from gamdss.util.devices import resolve_device
from gamdss.util.seeds import derive_seed

__all__ = [
    "RUN_MARKERS",
    "VOLATILE_KEYS",
    "ConfigChangedError",
    "DataChangedError",
    "Fold",
    "RunPlan",
    "OwnConfigError",
    "RunSetupError",
    "fold_paths",
    "check_config_file",
    "is_run",
    "load_fold",
    "prepare_run",
    "run_loso",
    "safe_name",
    "save_fold",
]


class RunSetupError(ValueError):
    """The run cannot start: no caches, no usable clips, unknown folds (the message says which)."""


class DataChangedError(FileExistsError):
    """The output folder holds a run (or folds) made from other data than the caches hold now."""


class ConfigChangedError(FileExistsError):
    """The output folder holds folds trained with another comparable config than this run's."""


@dataclass
class Fold:
    """One held-out subject: indices into :attr:`RunPlan.samples`; ``fingerprint``: sha256 hex
    of its train/val/test samples (:func:`gamdss.train.fingerprint.fold_fingerprint`)."""

    subject: str
    train: list[int]
    test: list[int]
    val: list[int]
    seed: int
    fingerprint: str = ""


@dataclass
class RunPlan:
    """What a run trains on, fixed before any fold starts."""

    config: TrainConfig
    samples: list[Sample]
    dropped: list[dict[str, str]]
    class_names: list[str]
    folds: list[Fold]
    reselection: list[dict[str, Any]]
    reselection_settings: dict[str, Any] | None = None
    reselection_sources: list[str] = field(default_factory=list)
    #: Every LOSO fold of the samples (``folds``: those this run trains, ``run.folds`` when
    #: set); the pooled results cover every finished one. Empty: ``folds``.
    all_folds: list[Fold] = field(default_factory=list)

    @property
    def planned_folds(self) -> list[Fold]:
        """Every LOSO fold of the plan (:attr:`all_folds`, else :attr:`folds`)."""
        return self.all_folds or self.folds

    @property
    def num_classes(self) -> int:
        """Number of classes of the protocol (the model's logits per sample)."""
        return len(self.class_names)

    @property
    def fingerprint(self) -> str:
        """sha256 hex of all samples (keys, subjects, labels, keyframes, clip digests)."""
        return samples_fingerprint(self.samples)


def _inner_val_split(
    cfg: TrainConfig, samples: list[Sample], train: list[int], seed: int, subject: str
) -> tuple[list[int], list[int]]:
    subjects = sorted({samples[i].subject for i in train})
    if len(subjects) < 2:
        raise RunSetupError(
            f"fold {subject}: evaluation.protocol=inner_val needs at least two training subjects, got {subjects}"
        )
    rng = np.random.default_rng(derive_seed("inner_val", seed))
    order = [subjects[i] for i in rng.permutation(len(subjects))]
    n_val = min(len(subjects) - 1, max(1, round(cfg.evaluation.inner_val_fraction * len(subjects))))
    val_subjects = set(order[:n_val])
    return (
        [i for i in train if samples[i].subject not in val_subjects],
        [i for i in train if samples[i].subject in val_subjects],
    )


def prepare_run(cfg: TrainConfig, progress: bool = True) -> RunPlan:
    """Open the caches, label the clips, reselect keyframes (:mod:`gamdss.train.reselection`)
    and make the LOSO folds."""
    if not cfg.data.caches:
        raise RunSetupError(
            "data.caches is empty: give the frame cache folders made by `gamdss preprocess` "
            "(e.g. data.caches=[caches/casme2])"
        )
    try:
        protocol = get_protocol(cfg.data.protocol)
    except (KeyError, ValueError) as exc:
        raise RunSetupError(f"data.protocol: {exc}") from exc
    check_model_config(cfg, len(protocol.classes))
    caches = [FrameCache(p) for p in cfg.data.caches]
    keyframes = None
    if cfg.reselection.enabled:
        try:
            keyframes = run_keyframes(cfg, caches, device=resolve_device(cfg.run.device), progress=progress)
        except ReselectionSourceError as exc:
            raise RunSetupError(str(exc)) from None
    try:
        samples, dropped = build_samples(caches, protocol, None if keyframes is None else keyframes.table)
    except ValueError as exc:
        raise RunSetupError(str(exc)) from exc
    empty = [str(c.root) for c in caches if len(c) == 0]
    if empty:
        raise RunSetupError(f"the frame cache {empty[0]} holds no finished clips")
    if not samples:
        raise RunSetupError(
            f"no clip of the caches {cfg.data.caches} has a class of protocol "
            f"{cfg.data.protocol!r} ({len(dropped)} clips dropped, e.g. emotion "
            f"{dropped[0]['emotion']!r})"
        )
    folds = []
    for subject, train_idx, test_idx in loso_folds([s.subject for s in samples]):
        train, test = [int(i) for i in train_idx], [int(i) for i in test_idx]
        seed = fold_seed(cfg.run.seed, subject)
        val: list[int] = []
        if cfg.evaluation.protocol == "inner_val":
            train, val = _inner_val_split(cfg, samples, train, seed, subject)
        pick = [samples[i] for i in train], [samples[i] for i in val], [samples[i] for i in test]
        folds.append(
            Fold(subject=subject, train=train, test=test, val=val, seed=seed, fingerprint=fold_fingerprint(*pick))
        )
    all_folds = folds
    if cfg.run.folds:
        by_subject = {f.subject: f for f in folds}
        unknown = [s for s in cfg.run.folds if s not in by_subject]
        if unknown:
            raise RunSetupError(f"run.folds names subjects {unknown} that have no fold; subjects: {sorted(by_subject)}")
        folds = [by_subject[s] for s in cfg.run.folds]
    return RunPlan(
        all_folds=all_folds,
        config=cfg,
        samples=samples,
        dropped=dropped,
        class_names=list(protocol.classes),
        folds=folds,
        reselection=[] if keyframes is None else keyframes.rows,
        reselection_settings=None if keyframes is None or keyframes.settings is None else asdict(keyframes.settings),
        reselection_sources=[] if keyframes is None else keyframes.sources,
    )


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} -> {b!r}"]


def _read_plan(out: Path) -> dict[str, Any]:
    """``out/plan.json`` as a mapping, whoever wrote it; {} when it is missing, unreadable or
    not a JSON object."""
    try:
        data = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _tagged_plan(out: Path) -> dict[str, Any] | None:
    """``out/plan.json`` when it is a gamdss plan (carries :data:`PLAN_FORMAT`), else None."""
    data = _read_plan(out)
    return data if data.get("format") == PLAN_FORMAT else None


def _saved_config(out: Path) -> TrainConfig | None:
    """``out/config.yaml`` as a :class:`TrainConfig`, or None when it is missing, empty, or
    does not load as one (someone else's config.yaml)."""
    path = out / "config.yaml"
    try:
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            return None
        return TrainConfig.load(path)
    except (OSError, UnicodeDecodeError, ConfigError):
        return None


def is_run(out: Path) -> bool:
    """Whether ``out`` holds a gamdss training run: its ``plan.json`` carries the format tag
    :data:`gamdss.train.layout.PLAN_FORMAT`, or its ``config.yaml`` loads as a
    :class:`TrainConfig` (a run stopped before its plan, or one older than the tag). A file
    merely named ``plan.json`` or ``config.yaml`` does not make a folder a run."""
    out = Path(out)
    return _tagged_plan(out) is not None or _saved_config(out) is not None


def _settings(cfg: TrainConfig) -> dict[str, Any]:
    """Every setting of ``cfg`` but ``run.output_dir``."""
    data = cfg.to_dict()
    data["run"].pop("output_dir", None)
    return data


def _same_config(saved: TrainConfig | None, cfg: TrainConfig) -> bool:
    """Whether ``saved`` holds every setting of ``cfg`` (``run.output_dir`` compared as the
    folder it names)."""
    if saved is None:
        return False
    same_folder = Path(saved.run.output_dir).resolve() == Path(cfg.run.output_dir).resolve()
    return same_folder and _settings(saved) == _settings(cfg)


class OwnConfigError(ValueError):
    """The CONFIG file is the run folder's own ``config.yaml`` and the run would change it."""


def _is_own_config(out: Path, config_file: str | Path | None) -> bool:
    """Whether ``config_file`` is the same file as ``out/config.yaml``."""
    own = out / "config.yaml"
    try:
        return config_file is not None and own.is_file() and os.path.samefile(config_file, own)
    except OSError:
        return False


def check_config_file(config_file: str | Path | None, cfg: TrainConfig) -> None:
    """Refuse a run given its output folder's own ``config.yaml`` (the record of the run) as
    its config file when its settings differ from the file's (overrides): a run never rewrites
    the file it was given (:class:`OwnConfigError`, naming the settings that differ). Only
    ``run.output_dir`` may differ (a moved run folder); resuming with the run's own config,
    as it is, goes on and leaves the file as it is."""
    out = Path(cfg.run.output_dir)
    if not _is_own_config(out, config_file):
        return
    saved = _saved_config(out)
    if saved is not None and _settings(saved) == _settings(cfg):
        return
    diff = _differences(_settings(saved), _settings(cfg)) if saved is not None else []
    raise OwnConfigError(
        f"CONFIG {config_file} is the run's own record of its config in {out}, and this run's settings "
        f"differ from it ({'; '.join(diff[:5]) or 'it does not load'}); it is not rewritten: copy it "
        f"elsewhere to edit it, or use another --output"
    )


def _prepare_output(out: Path, cfg: TrainConfig, overwrite: bool) -> None:
    """Refuse to mix runs: the same config resumes; another config needs ``overwrite``. A
    folder that holds files but no run (:func:`is_run`) is refused even with ``overwrite`` (it
    is not ours to clear). Checks only: :func:`_remove_outputs` clears a run once the new one
    is set up."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"run.output_dir {out} is a file; choose a folder")
    if not out.is_dir() or not any(p.is_file() and p.name != run_lock.LOCK_NAME for p in out.rglob("*")):
        return
    if not is_run(out):
        raise FileExistsError(
            f"run.output_dir {out} is not a gamdss training folder (it holds files but no gamdss "
            f"plan.json or config.yaml); --overwrite only replaces a previous run: choose another run.output_dir"
        )
    saved = out / "config.yaml"
    if not overwrite and saved.is_file():
        old = _saved_config(out)
        if old is None:
            raise FileExistsError(
                f"{out} holds a gamdss run whose config.yaml does not load as a training config; "
                f"choose another run.output_dir or pass overwrite=True (--overwrite) to replace the run"
            )
        diff = _differences(comparable(old), comparable(cfg))
        if diff:
            raise FileExistsError(
                f"{out} holds a run with another config ({'; '.join(diff[:5])}); "
                f"choose another run.output_dir or pass overwrite=True (--overwrite)"
            )


def _remove_outputs(out: Path, subjects: list[str], keep: tuple[str, ...] = ()) -> None:
    """Delete only the exact files a run writes (:func:`gamdss.train.layout.owned_paths`: the
    fold files of ``subjects`` and of the subjects the old ``plan.json`` lists), never
    anything else in the folder, and only when ``out`` is a run; ``keep``: names of files in
    ``out`` to leave."""
    if not is_run(out):
        return
    old = _read_plan(out)  # with or without the tag: runs made before it have none
    old_subjects = [str(f.get("subject")) for f in old.get("folds", []) if isinstance(f, dict)]
    old_subjects += [str(x.get("subject")) for x in old.get("samples", []) if isinstance(x, dict)]
    for path in owned_paths(out, [*subjects, *old_subjects]):
        if path.is_file() and not (path.parent == out and path.name in keep):
            path.unlink()
    folds = out / "folds"
    if folds.is_dir() and not any(folds.iterdir()):
        folds.rmdir()


def load_fold(out: Path, subject: str, cfg: TrainConfig, fingerprint: str | None = None) -> dict[str, Any] | None:
    """A finished fold's record, or None when the fold has not finished (or is unreadable, from
    an older format, or holds NaN or infinite probabilities: a diverged fold). Raises :class:`DataChangedError` when ``fingerprint`` is given and
    the fold was trained on other data (its ``data_fingerprint`` differs), and
    :class:`ConfigChangedError` when it was trained with another comparable config (its
    ``config_digest`` is not :func:`gamdss.train.config.config_digest` of ``cfg``), whether or
    not the folder still holds the run's ``config.yaml``, or with ``run.device=auto`` on
    another kind of device or with/without AMP than ``auto`` gives here."""
    path = fold_paths(out, subject)["json"]
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if (
        data.get("format") != FOLD_FORMAT
        or data.get("version") != FOLD_VERSION
        or data.get("subject") != subject
        or data.get("seed") != fold_seed(cfg.run.seed, subject)
    ):
        return None
    if not _finite_probs(data):  # written by a gamdss that recorded diverged folds: train it again
        return None
    if fingerprint is not None and data.get("data_fingerprint") != fingerprint:
        raise DataChangedError(
            f"{path}: fold {subject} was trained on other clips, labels or keyframes than "
            f"the caches {cfg.data.caches} now give it; use --overwrite (overwrite=True) "
            f"or a new run.output_dir"
        )
    if data.get("config_digest") != config_digest(cfg):
        raise ConfigChangedError(
            f"{path}: fold {subject} was trained with another config than this run's (its "
            f"config digest differs; settings such as optim.epochs or run.num_threads changed); "
            f"use --overwrite (overwrite=True) or a new run.output_dir"
        )
    _check_same_runtime(path, data, cfg)
    return data


def _runtime_name(kind: str, amp: bool) -> str:
    return f"{kind} {'with' if amp else 'without'} AMP"


def _check_same_runtime(path: Path, record: dict[str, Any], cfg: TrainConfig) -> None:
    """With ``run.device=auto`` (the config digest holds the word, not the device), refuse a
    finished fold trained on another kind of device (CPU/CUDA) or with/without AMP than
    ``auto`` resolves to here: its results would be pooled with folds of another precision."""
    if cfg.run.device != "auto" or not isinstance(record.get("device"), str):
        return
    device = resolve_device(cfg.run.device)
    kind, amp = device.split(":")[0], uses_amp(cfg, device)
    done_kind, done_amp = record["device"].split(":")[0], bool(record.get("amp"))
    if (done_kind, done_amp) != (kind, amp):
        raise ConfigChangedError(
            f"{path}: fold {record['subject']} was trained on {_runtime_name(done_kind, done_amp)} and "
            f"run.device=auto gives {_runtime_name(kind, amp)} here: its folds would mix devices and "
            f"precision; resume where auto gives {done_kind} (a machine {'with' if done_kind == 'cuda' else 'without'} "
            f"CUDA), or use --overwrite (overwrite=True) or a new run.output_dir"
        )


def _finite_probs(record: dict[str, Any]) -> bool:
    """Whether every held-out probability of a fold record is a finite number."""
    try:
        return all(math.isfinite(x) for t in record["test"] for p in t["probs"].values() for x in p)
    except (KeyError, TypeError, AttributeError):
        return False


def save_fold(out: Path, output: FoldOutput) -> None:
    """Write features first, then the JSON (its presence marks the fold finished)."""
    paths = fold_paths(out, output.result["subject"])
    with atomic.atomic_path(paths["features"]) as tmp:
        np.savez(tmp, **output.features)
    atomic.write_text(paths["json"], json.dumps(output.result, indent=1))
    paths["checkpoint"].unlink(missing_ok=True)


def _payload(plan: RunPlan, fold: Fold, out: Path, progress: bool) -> FoldPayload:
    cfg = plan.config
    pick = lambda idx: [plan.samples[i] for i in idx]  # noqa: E731
    return FoldPayload(
        config=cfg.to_dict(),
        subject=fold.subject,
        seed=fold.seed,
        num_classes=plan.num_classes,
        cache_roots=[str(Path(p).resolve()) for p in cfg.data.caches],
        train=pick(fold.train),
        test=pick(fold.test),
        val=pick(fold.val),
        checkpoint=str(fold_paths(out, fold.subject)["checkpoint"].resolve()) if cfg.run.epoch_checkpoints else None,
        progress=progress,
    )


def _write_plan(out: Path, plan: RunPlan) -> None:
    data = {
        "format": PLAN_FORMAT,
        "protocol": plan.config.evaluation.protocol,
        "fingerprint": plan.fingerprint,
        "class_names": plan.class_names,
        "samples": [asdict(s) for s in plan.samples],
        "dropped": plan.dropped,
        "folds": [asdict(f) for f in plan.planned_folds],
        "reselection_settings": plan.reselection_settings,
        "reselection_sources": plan.reselection_sources,
    }
    atomic.write_text(out / "plan.json", json.dumps(data, indent=1))
    if plan.reselection:
        atomic.write_text(out / "reselection.csv", rows_to_csv(plan.reselection))


def check_same_data(out: Path, plan: RunPlan) -> None:
    """Refuse to resume a run whose caches changed since ``plan.json`` was written.

    Raises :class:`DataChangedError` naming the samples added, removed or changed (their
    label, subject, keyframes or clip digest). A ``plan.json`` without a fingerprint (older
    runs) or an unreadable one is left to the per-fold check in :func:`load_fold`.
    """
    try:
        saved = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return
    if not isinstance(saved, dict) or "fingerprint" not in saved or saved["fingerprint"] == plan.fingerprint:
        return
    changes = describe_changes(saved.get("samples", []), plan.samples) or "the data fingerprint differs"
    raise DataChangedError(
        f"{out} holds a run that started from other data: the cache(s) "
        f"{plan.config.data.caches} changed since this run started: {changes}; its finished "
        f"folds are not mixed with new ones. Use --overwrite (overwrite=True) or a new "
        f"run.output_dir"
    )


def run_loso(
    cfg: TrainConfig,
    *,
    overwrite: bool = False,
    progress: bool = True,
    executor=None,
    on_fold_done: Callable[[str, dict[str, Any]], None] | None = None,
    config_file: str | Path | None = None,
) -> dict[str, Any]:
    """Run (or resume) a LOSO training and write its results; returns the results dict.

    Finished folds (``folds/<subject>.json``) are loaded, not trained again, but only when the
    caches still give the same samples, labels, keyframes and clip digests as when the run
    started (else :class:`DataChangedError`, a ``FileExistsError``, naming what changed;
    ``overwrite=True`` starts afresh). ``executor``:
    an object with ``run(fn, payloads, on_result)`` (default from ``run.executor``).
    ``on_fold_done(subject, record)`` is called after each newly finished fold is saved.
    ``config_file``: the YAML file ``cfg`` was loaded from, if any; when it is the output
    folder's own ``config.yaml`` it is never rewritten (:func:`check_config_file`).

    The run holds the output folder's lock throughout (see the module doc): while another
    run writes the same folder this one raises :class:`gamdss.util.run_lock.FolderBusyError`
    before reading or writing anything.
    """
    if cfg.is_released_protocol:
        print(
            f"WARNING: evaluation.protocol=released: per-fold epoch selection on the held-out subject, {RELEASED_NOTE}."
        )
    out = Path(cfg.run.output_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"run.output_dir {out} is a file; choose a folder")
    with run_lock.hold(out, "gamdss train"):
        return _run_locked(out, cfg, overwrite, progress, executor, on_fold_done, config_file)


def compute_flow_once(cfg: TrainConfig, plan: RunPlan, progress: bool) -> None:
    """Flow input: compute every flow field the folds will read (training keyframes, and the
    held-out ones) into the flow cache once, with progress, before any fold starts; folds then
    only read, so folds running side by side never compute the same field."""
    if cfg.data.input_kind != "flow":
        return
    roots = [str(Path(p).resolve()) for p in cfg.data.caches]
    resel = cfg.reselection
    for use_reselected in sorted({resel.enabled, resel.enabled and resel.apply_to_test}):
        KeyframeDataset(
            plan.samples,
            roots,
            image_size=cfg.data.image_size,
            input_kind="flow",
            use_reselected=use_reselected,
            flow=cfg.data.flow,
            progress=progress,
        )


def _run_locked(
    out: Path,
    cfg: TrainConfig,
    overwrite: bool,
    progress: bool,
    executor,
    on_fold_done: Callable[[str, dict[str, Any]], None] | None,
    config_file: str | Path | None = None,
) -> dict[str, Any]:
    """:func:`run_loso` once it holds the lock of ``out``."""
    check_config_file(config_file, cfg)
    _prepare_output(out, cfg, overwrite)
    plan = prepare_run(cfg, progress=progress)
    # A config.yaml that already holds this config is left as it is (it may be the CONFIG
    # file itself, with the user's comments).
    keep_config = _is_own_config(out, config_file) or _same_config(_saved_config(out), cfg)
    # The old run is cleared only now that the new one is set up: a config or data error keeps it.
    if overwrite:
        _remove_outputs(out, sorted({s.subject for s in plan.samples}), keep=("config.yaml",) if keep_config else ())
    else:
        check_same_data(out, plan)
    # Finished folds are checked against the plan before anything is written: those of every
    # fold of the plan, so that the pooled results cover all finished folds, not only run.folds.
    records: dict[str, dict[str, Any]] = {}
    for fold in plan.planned_folds:
        done = load_fold(out, fold.subject, cfg, fold.fingerprint)
        if done is not None:
            records[fold.subject] = done
    todo = [f for f in plan.folds if f.subject not in records]
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds").mkdir(exist_ok=True)
    if not keep_config:
        cfg.save(out / "config.yaml")
    _write_plan(out, plan)
    if todo:
        compute_flow_once(cfg, plan, progress)
    executor = executor or make_executor(cfg)
    bar = tqdm(
        total=len(plan.folds), initial=len(plan.folds) - len(todo), desc="LOSO folds", unit="fold", disable=not progress
    )

    def finished(payload: FoldPayload, output: FoldOutput) -> None:
        save_fold(out, output)
        records[payload.subject] = output.result
        bar.update(1)
        if on_fold_done is not None:
            on_fold_done(payload.subject, output.result)

    try:
        executor.run(
            run_fold, [_payload(plan, f, out, progress and executor.shows_fold_progress) for f in todo], finished
        )
    finally:
        bar.close()
    ordered = [records[f.subject] for f in plan.planned_folds if f.subject in records]
    return write_results(out, plan, ordered)
