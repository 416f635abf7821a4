"""Training and evaluating one LOSO fold (one held-out subject).

:func:`run_fold` takes a picklable :class:`FoldPayload` and returns a :class:`FoldOutput`; it
touches no shared state, so the local and the Ray executor run exactly the same code. Its
randomness comes only from the fold seed (model initialisation, shuffling, augmentation,
drop-path), so a fold's result does not depend on which folds ran before it or where.
A mid-fold checkpoint is continued only when it was written for the same seed, comparable
config (:func:`gamdss.train.config.config_digest`: settings that do not change results, such
as ``run.folds`` or ``run.output_dir``, may differ) and data
(:func:`gamdss.train.fingerprint.fold_fingerprint` of the fold's samples); otherwise one line
on stderr says why it is not used, and the fold trains from epoch 1. The config digest and the
data fingerprint are also stored in the fold's record (``config_digest``, ``data_fingerprint``).
A checkpoint also records whether the released protocol's early stop fired at its epoch, so a
fold resumed after that epoch does not train past the stop.

Checkpoints hold only tensors and plain types (dicts, lists, tuples, str, numbers, bool,
None) and are read with ``torch.load(..., weights_only=True)``, which never runs code from
the file: a checkpoint that does not load that way (damaged, truncated, not a checkpoint,
or a pickle that would import or call anything) is reported in one line on stderr naming
the file, deleted, and the fold is trained from epoch 1.

A fold whose training diverges fails with :class:`DivergedError` (one line: the epoch, the
loss or weights that became NaN or infinite, and what to lower) before it writes its epoch's
checkpoint or its record, so it is never taken for a finished fold: an epoch fails when its
mean training loss is not finite, or when the model's weights are not. With float16 AMP a
step whose loss overflowed (the gradient scaler skips it) is left out of the epoch's loss and
counted (``skipped_steps`` in its history record), and the epoch fails only when every step
was; steps the scaler skips for overflowing gradients alone have a finite loss and count as
usual (the scaler keeps the weights unchanged there). Held-out probabilities that are not finite are never written as predictions.
"""

from __future__ import annotations

import itertools
import math
import os
import pickle
import random
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gamdss.models import build_model, check_checkpoint
from gamdss.models.gamdss import gamdss_loss, predict
from gamdss.models.inputs import motion_inputs, still_inputs
from gamdss.train.config import RELEASED_NOTE, ConfigError, TrainConfig, config_digest
from gamdss.train.dataset import KeyframeDataset, KeyframeTransform, Sample, collate
from gamdss.train.fingerprint import fold_fingerprint
from gamdss.train.metrics import confusion_matrix, metrics_from_confusion, released_fold_f1
from gamdss.util import atomic
from gamdss.util.devices import resolve_device
from gamdss.util.seeds import derive_seed

FOLD_FORMAT = "gamdss-loso-fold"
FOLD_VERSION = 3  # 2: records carry ``data_fingerprint``; 3: and ``config_digest``


@dataclass
class FoldPayload:
    """Everything a fold needs, picklable (sent to Ray workers as is).

    ``train``/``val``/``test``: the fold's samples (``val`` empty unless the protocol is
    ``inner_val``). ``checkpoint``: path of the mid-fold checkpoint, or None.
    """

    config: dict[str, Any]
    subject: str
    seed: int
    num_classes: int
    cache_roots: list[str]
    train: list[Sample]
    test: list[Sample]
    val: list[Sample] = field(default_factory=list)
    checkpoint: str | None = None
    progress: bool = True


@dataclass
class FoldOutput:
    """``result``: the JSON-able fold record; ``features``: phase -> float32 [n_test, D]."""

    result: dict[str, Any]
    features: dict[str, np.ndarray]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _forward(model, frames, cfg: TrainConfig, device: str, autocast):
    """Model output for a batch from :class:`KeyframeDataset` (a ``KeyframeBatch``: uint8
    keyframes, augmentation draws, cached flow), resized, normalised and augmented on
    ``device`` by :class:`KeyframeTransform`."""
    x = KeyframeTransform(cfg.data.image_size, cfg.data.input_kind)(frames, device)
    if cfg.data.input_kind == "difference":
        rise_m, fall_m = motion_inputs(x.onset, x.apex, x.offset, kind="difference")
    else:  # flow cached once per clip and keyframe pair, augmented with the frames
        rise_m, fall_m = x.rise_flow, x.fall_flow
    rise_s, fall_s = still_inputs(x.onset, x.apex, x.offset, fall_still=cfg.model.fall_still)
    with autocast():
        return model(rise_m, fall_m, rise_s, fall_s)


def _evaluate(
    model, dataset: KeyframeDataset, cfg: TrainConfig, device: str, autocast, with_features: bool = False
) -> tuple[dict, dict, dict]:
    """(pred per mode int64 [n], probs per mode float32 [n, C], features per phase [n, D])."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.optim.batch_size, shuffle=False, collate_fn=collate, num_workers=cfg.data.num_workers
    )
    model.eval()
    preds: dict[str, list] = {m: [] for m in cfg.modes}
    probs: dict[str, list] = {m: [] for m in cfg.modes}
    feats: dict[str, list] = {}
    with torch.no_grad():
        for frames, _, _ in loader:
            out = _forward(model, frames, cfg, device, autocast)
            for m in cfg.modes:
                p, pr = predict(out, m)
                preds[m].append(p.cpu())
                probs[m].append(pr.float().cpu())
            if with_features:
                for phase, f in (("rise", out.rise_features), ("fall", out.fall_features)):
                    if f is not None:
                        feats.setdefault(phase, []).append(f.float().cpu())
    cat = lambda xs: torch.cat(xs).numpy() if xs else np.zeros((0,))  # noqa: E731
    return (
        {m: cat(v).astype(np.int64) for m, v in preds.items()},
        {m: cat(v).astype(np.float32) for m, v in probs.items()},
        {k: cat(v).astype(np.float32) for k, v in feats.items()},
    )


def _score(labels: np.ndarray, pred: np.ndarray, num_classes: int, metric: str) -> float:
    return float(metrics_from_confusion(confusion_matrix(labels, pred, num_classes))[metric])


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors and plain types only, see the module doc) atomically."""
    with atomic.atomic_path(path) as tmp:
        torch.save(state, tmp)


CHECKPOINT_KEYS = (
    "seed",
    "config",
    "config_digest",
    "fingerprint",
    "stopped",
    "epoch",
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "history",
    "best",
    "released_preds",
)


class DivergedError(RuntimeError):
    """A fold's training diverged: its loss, weights or held-out probabilities are NaN or
    infinite (the message says which, at which epoch, and what to lower)."""


def _diverged(cfg: TrainConfig, what: str) -> DivergedError:
    return DivergedError(f"{what}: training diverged; lower optim.lr (now {cfg.optim.lr:g})")


@dataclass
class _EpochLoss:
    """The mean training loss of an epoch. ``skippable``: a step whose loss is not finite was
    skipped by float16 AMP's gradient scaler (its weights did not change), so it is counted in
    ``skipped`` and left out of the mean; otherwise it makes the mean non-finite."""

    skippable: bool
    total: float = 0.0
    count: int = 0
    skipped: int = 0

    def add(self, loss: float, n: int) -> None:
        """Count one step's mean loss ``loss`` over ``n`` samples."""
        if self.skippable and not math.isfinite(loss):
            self.skipped += 1
            return
        self.total += loss * n
        self.count += n

    @property
    def mean(self) -> float:
        """The mean over the counted samples (0.0 when there were none)."""
        return self.total / max(self.count, 1)

    def check(self, cfg: TrainConfig, epoch: int) -> None:
        """:class:`DivergedError` when the epoch's loss is not finite, or every step was skipped."""
        loss = "CE(rise) + model.fall_weight * CE(fall)" if len(cfg.model.phases) == 2 else f"CE({cfg.model.phases[0]})"
        if self.skipped and not self.count:
            raise _diverged(cfg, f"the training loss ({loss}) of epoch {epoch} was NaN or infinite at every step")
        if not math.isfinite(self.mean):
            raise _diverged(cfg, f"the training loss ({loss}) of epoch {epoch} is {self.mean}")


def _check_weights(model, cfg: TrainConfig, epoch: int) -> None:
    """:class:`DivergedError` naming the first parameter or buffer of ``model`` that holds a
    NaN or an infinity after ``epoch``."""
    named = itertools.chain(model.named_parameters(), model.named_buffers())
    for name, t in named:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise _diverged(cfg, f"the model's weights ({name}) are NaN or infinite after epoch {epoch}")


def _check_probs(probs: dict[str, np.ndarray], cfg: TrainConfig, epoch: int) -> None:
    """:class:`DivergedError` when a mode's held-out probabilities are not all finite."""
    for m, p in probs.items():
        if not np.isfinite(p).all():
            raise _diverged(cfg, f"the held-out {m} probabilities of epoch {epoch}'s model are NaN or infinite")


class CheckpointError(ValueError):
    """An epoch checkpoint that cannot be continued (its message says why, in a few words)."""


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, read without running code from it (``weights_only``);
    :class:`CheckpointError` when it does not load so or is not a fold checkpoint."""
    try:
        with warnings.catch_warnings():  # torch's warnings about odd files: the one line below says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # Also what a pickle that would import or call anything gives (the weights-only
        # unpickler refuses it); its message advises weights_only=False, which we never do.
        raise CheckpointError("not a plain-data torch checkpoint") from None
    except (
        RuntimeError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
        MemoryError,
    ) as exc:
        raise CheckpointError(f"damaged or truncated ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError("not a gamdss fold checkpoint")
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing and {"seed", "config", "epoch", "model"} <= set(state):
        # written by an older gamdss (before the config digest and the released stop)
        raise CheckpointError(f"written by an older gamdss version (no {', '.join(missing)})")
    if missing:
        raise CheckpointError(f"not a gamdss fold checkpoint (no {', '.join(missing)})")
    return state


def _discard_checkpoint(path: Path, subject: str, reason: str) -> None:
    """Report ``path`` in one line on stderr and delete it (so the report does not repeat)."""
    # Deleting loses nothing: the fold trains from epoch 1 and would overwrite it at its first epoch.
    print(
        f"gamdss: fold {subject}: discarding the epoch checkpoint {path} ({reason}); training the fold from epoch 1",
        file=sys.stderr,
        flush=True,
    )
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


@dataclass
class _Runtime:
    """Where a fold runs (``device``) and whether it autocasts (``use_amp``: CUDA only, to
    ``amp_dtype``)."""

    device: str
    use_amp: bool
    amp_dtype: Any

    def autocast(self):
        """The autocast context of a forward pass (a no-op without AMP)."""
        return torch.autocast("cuda", dtype=self.amp_dtype, enabled=True) if self.use_amp else _null()


def uses_amp(cfg: TrainConfig, device: str) -> bool:
    """Whether a fold on ``device`` (resolved, not ``auto``) autocasts: ``run.amp`` on CUDA only."""
    return bool(cfg.run.amp and device.startswith("cuda"))


def _runtime(cfg: TrainConfig) -> _Runtime:
    """Resolve the device, set the thread count and cuDNN determinism, choose the AMP dtype."""
    device = resolve_device(cfg.run.device)
    if cfg.run.num_threads:
        torch.set_num_threads(cfg.run.num_threads)
    if device.startswith("cuda"):
        torch.backends.cudnn.deterministic = cfg.run.deterministic
        torch.backends.cudnn.benchmark = not cfg.run.deterministic
    use_amp = uses_amp(cfg, device)
    amp_dtype = torch.bfloat16 if (use_amp and torch.cuda.is_bf16_supported()) else torch.float16
    return _Runtime(device, use_amp, amp_dtype)


def configured_model(cfg: TrainConfig, num_classes: int):
    """The model ``cfg.model`` describes, freshly initialised (from the global RNG)."""
    kwargs = dict(cfg.model.kwargs)
    kwargs.setdefault("img_size", cfg.data.image_size)
    if not cfg.model.spatial:
        kwargs["spatial"] = False
    return build_model(
        cfg.model.name,
        num_classes,
        phases=tuple(cfg.model.phases),
        in_chans=3 if cfg.data.input_kind == "difference" else 2,
        **kwargs,
    )


def check_model_config(cfg: TrainConfig, num_classes: int) -> None:
    """Build the configured model for ``num_classes`` (the protocol's class count) on the meta
    device (no memory, no RNG draws) so that a bad ``model.name`` or ``model.kwargs`` is
    refused (``ConfigError``) before a run writes anything. A ``model.kwargs.checkpoint`` is
    not loaded into the meta model: its tensors' names and shapes are compared with the
    model's (:func:`gamdss.models.check_checkpoint`), and a mismatch names the file."""
    try:
        with torch.device("meta"):
            checkpoint = cfg.model.kwargs.get("checkpoint")
            bare = TrainConfig.from_dict(cfg.to_dict())
            bare.model.kwargs.pop("checkpoint", None)
            model = configured_model(bare, num_classes)
        if checkpoint is not None:
            check_checkpoint(model, checkpoint)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"model: {exc}") from None


def _fresh_training(cfg: TrainConfig, payload: FoldPayload, rt: _Runtime) -> tuple[Any, Any, Any, Any]:
    """A newly initialised (model, optimiser, schedule, scaler), from the fold seed."""
    _seed_everything(payload.seed)
    model = configured_model(cfg, payload.num_classes).to(rt.device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), weight_decay=cfg.optim.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: cfg.optim.gamma ** min(k, cfg.optim.decay_epochs))
    scaler = torch.amp.GradScaler("cuda", enabled=rt.use_amp and rt.amp_dtype == torch.float16)
    return model, opt, sched, scaler


def _fold_datasets(cfg: TrainConfig, payload: FoldPayload) -> tuple[KeyframeDataset, KeyframeDataset, KeyframeDataset]:
    """(train, val, test) datasets: training clips with reselected keyframes (when enabled)
    and augmentation; held-out ones with reselected keyframes only with ``apply_to_test``."""
    resel = cfg.reselection
    common = dict(image_size=cfg.data.image_size, input_kind=cfg.data.input_kind, seed=payload.seed, flow=cfg.data.flow)
    train_ds = KeyframeDataset(
        payload.train, payload.cache_roots, use_reselected=resel.enabled, augment=cfg.data.augment, **common
    )
    held_out_resel = resel.enabled and resel.apply_to_test
    val_ds = KeyframeDataset(payload.val, payload.cache_roots, use_reselected=held_out_resel, **common)
    test_ds = KeyframeDataset(payload.test, payload.cache_roots, use_reselected=held_out_resel, **common)
    return train_ds, val_ds, test_ds


@dataclass
class _Progress:
    """What the epochs so far left: per-epoch records, the released protocol's per-epoch test
    predictions, the inner-validation best, and the next epoch to train."""

    history: list[dict[str, Any]] = field(default_factory=list)
    released_preds: list[dict[str, np.ndarray]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"score": -1.0, "epoch": 0, "state": None})
    start_epoch: int = 1
    stopped: bool = False


def _resume(
    ckpt: Path | None,
    payload: FoldPayload,
    fingerprint: str,
    parts: tuple[Any, Any, Any, Any],
    fresh: Callable[[], tuple[Any, Any, Any, Any]],
) -> tuple[tuple[Any, Any, Any, Any], _Progress]:
    """Continue from the epoch checkpoint ``ckpt`` when it was written for this seed, config
    and data (loading it into ``parts``: model, optimiser, schedule, scaler); otherwise
    report and discard it, and start from epoch 1 (``fresh()`` parts when loading failed
    half-way)."""
    if ckpt is None or not ckpt.is_file():
        return parts, _Progress()
    try:
        state = _load_checkpoint(ckpt)
    except CheckpointError as exc:
        _discard_checkpoint(ckpt, payload.subject, str(exc))
        return parts, _Progress()
    # Never continue weights trained on other clips, labels or keyframes, or another seed or
    # comparable config: start over, and say so.
    reason = ""
    if state["fingerprint"] != fingerprint:
        reason = "the fold's data changed since it was written"
    elif state["seed"] != payload.seed:
        reason = f"written for seed {state['seed']}, the fold's is {payload.seed}"
    elif state["config_digest"] != config_digest(TrainConfig.from_dict(payload.config)):
        reason = "written with another config (a setting that changes results differs)"
    if reason:
        _discard_checkpoint(ckpt, payload.subject, reason)
        return parts, _Progress()
    model, opt, sched, scaler = parts
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        progress = _Progress(
            history=list(state["history"]),
            released_preds=[{m: np.asarray(v, dtype=np.int64) for m, v in e.items()} for e in state["released_preds"]],
            best=dict(state["best"]),
            start_epoch=int(state["epoch"]) + 1,
            stopped=bool(state["stopped"]),
        )
        if not isinstance(progress.best["state"], (dict, type(None))) or not all(
            isinstance(h, dict) for h in progress.history
        ):
            raise TypeError("best state or history of the wrong type")
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        # Loads, but does not fit this model (or is malformed): start over from a fresh init.
        _discard_checkpoint(ckpt, payload.subject, f"does not fit the fold's model ({type(exc).__name__})")
        return fresh(), _Progress()
    return parts, progress


def run_fold(payload: FoldPayload) -> FoldOutput:
    """Train a fresh model on ``payload.train`` and predict ``payload.test`` (see module doc).

    Steps: :func:`_runtime` (device, precision), :func:`_fresh_training` (model, optimiser),
    :func:`_fold_datasets`, :func:`_resume` (epoch checkpoint), the epoch loop (below),
    :func:`_final_predictions` (the selected epoch's test predictions) and :func:`_fold_record`.
    """
    cfg = TrainConfig.from_dict(payload.config)
    started = time.perf_counter()
    rt = _runtime(cfg)
    device, autocast = rt.device, rt.autocast
    seed = payload.seed
    fingerprint = fold_fingerprint(payload.train, payload.val, payload.test)

    def fresh():
        return _fresh_training(cfg, payload, rt)

    parts = fresh()
    train_ds, val_ds, test_ds = _fold_datasets(cfg, payload)
    test_labels = np.array([s.label for s in payload.test], dtype=np.int64)
    val_labels = np.array([s.label for s in payload.val], dtype=np.int64)
    protocol = cfg.evaluation.protocol

    ckpt = Path(payload.checkpoint) if payload.checkpoint else None
    (model, opt, sched, scaler), progress = _resume(ckpt, payload, fingerprint, parts, fresh)
    history, released_preds, best, start_epoch = (
        progress.history,
        progress.released_preds,
        progress.best,
        progress.start_epoch,
    )

    # A checkpoint written at the released protocol's stopping epoch: the fold is done training.
    stop_early = progress.stopped
    digest = config_digest(cfg)
    bar = tqdm(
        range(start_epoch, cfg.optim.epochs + 1 if not stop_early else start_epoch),
        desc=f"fold {payload.subject}",
        unit="epoch",
        leave=False,
        disable=not payload.progress,
        initial=start_epoch - 1,
        total=cfg.optim.epochs,
    )
    for epoch in bar:
        # Reseeding per epoch makes a fold resumed from an epoch checkpoint continue identically.
        torch.manual_seed(derive_seed("epoch", seed, epoch))
        train_ds.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            train_ds,
            batch_size=cfg.optim.batch_size,
            shuffle=True,
            collate_fn=collate,
            num_workers=cfg.data.num_workers,
            pin_memory=device.startswith("cuda"),
            generator=torch.Generator().manual_seed(derive_seed("shuffle", seed, epoch)),
        )
        model.train()
        epoch_loss = _EpochLoss(skippable=scaler.is_enabled())
        for frames, labels, _ in loader:
            labels = labels.to(device)
            out = _forward(model, frames, cfg, device, autocast)
            loss = gamdss_loss(out, labels, fall_weight=cfg.model.fall_weight)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            epoch_loss.add(float(loss.detach()), len(labels))
        # A diverged epoch fails before its checkpoint: a rerun starts from the last sound one.
        epoch_loss.check(cfg, epoch)
        _check_weights(model, cfg, epoch)
        record: dict[str, Any] = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": epoch_loss.mean}
        if epoch_loss.skipped:
            record["skipped_steps"] = epoch_loss.skipped
        sched.step()
        if protocol == "inner_val":
            preds, _, _ = _evaluate(model, val_ds, cfg, device, autocast)
            score = _score(
                val_labels, preds[cfg.evaluation.select_mode], payload.num_classes, cfg.evaluation.select_metric
            )
            record[f"val_{cfg.evaluation.select_metric}"] = score
            if score > best["score"]:  # strict: the earliest best epoch
                best = {
                    "score": score,
                    "epoch": epoch,
                    "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                }
        elif protocol == "released":
            preds, _, _ = _evaluate(model, test_ds, cfg, device, autocast)
            released_preds.append(preds)
            stop_mode = "rise" if "rise" in preds else cfg.evaluation.select_mode
            record["test_acc"] = float(np.mean(preds[stop_mode] == test_labels)) if len(test_labels) else 0.0
            # The released code stops a fold once the held-out subject is classified perfectly.
            stop_early = record["test_acc"] >= 1.0
        history.append(record)
        bar.set_postfix(loss=f"{record['train_loss']:.3f}")
        if ckpt is not None:
            _save_checkpoint(
                ckpt,
                {
                    "seed": seed,
                    "config": payload.config,
                    "config_digest": digest,
                    "fingerprint": fingerprint,
                    "stopped": stop_early,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "scaler": scaler.state_dict(),
                    "history": history,
                    "best": best,
                    "released_preds": [{m: v.tolist() for m, v in e.items()} for e in released_preds],
                },
            )
        if stop_early:
            break
    bar.close()

    preds, probs, feats, selected, released = _final_predictions(
        cfg, model, test_ds, test_labels, payload.num_classes, history, best, released_preds, rt
    )
    result = _fold_record(payload, cfg, fingerprint, train_ds, test_ds, history, selected, preds, probs, rt)
    result["seconds"] = time.perf_counter() - started
    if released is not None:
        result["released"] = released
        result["probs_note"] = "probs and features are the last epoch's; pred is each mode's best-test-F1 epoch's"
    return FoldOutput(result=result, features=feats)


def _final_predictions(
    cfg: TrainConfig,
    model,
    test_ds: KeyframeDataset,
    test_labels: np.ndarray,
    num_classes: int,
    history: list[dict[str, Any]],
    best: dict[str, Any],
    released_preds: list[dict[str, np.ndarray]],
    rt: _Runtime,
) -> tuple[dict, dict, dict, dict[str, Any], dict[str, Any] | None]:
    """The held-out predictions of the protocol's chosen model: (pred per mode, probs per
    mode, features per phase, ``selected`` (which epoch), ``released`` (the released
    protocol's per-mode epochs and accuracy predictions, else None)).

    ``honest``: the last epoch. ``inner_val``: the best validation epoch's weights are loaded
    first. ``released``: predictions from each mode's best-test-F1 epoch (the latest on
    ties), accuracy from its best-test-accuracy epoch (the earliest on ties).
    """
    protocol = cfg.evaluation.protocol
    selected: dict[str, Any] = {"epoch": len(history) and history[-1]["epoch"]}
    if protocol == "inner_val" and best["state"] is not None:
        model.load_state_dict(best["state"])
        selected = {"epoch": best["epoch"], f"val_{cfg.evaluation.select_metric}": best["score"]}
    preds, probs, feats = _evaluate(model, test_ds, cfg, rt.device, rt.autocast, with_features=True)
    _check_probs(probs, cfg, selected["epoch"])

    released: dict[str, Any] | None = None
    if protocol == "released" and released_preds:
        released = {"acc_epoch": {}, "uf1_epoch": {}, "acc_pred": {}}
        for m in cfg.modes:
            correct = [int(np.sum(e[m] == test_labels)) for e in released_preds]
            acc_i = int(np.argmax(correct))  # strict '>' in the released code: the earliest best
            f1s = [released_fold_f1(confusion_matrix(test_labels, e[m], num_classes)) for e in released_preds]
            uf1_i = max(i for i, v in enumerate(f1s) if v == max(f1s))  # '>=': the latest best
            released["acc_epoch"][m] = acc_i + 1
            released["uf1_epoch"][m] = uf1_i + 1
            released["acc_pred"][m] = released_preds[acc_i][m].tolist()
            preds[m] = released_preds[uf1_i][m]
        selected = {"acc_epoch": released["acc_epoch"], "uf1_epoch": released["uf1_epoch"]}
    return preds, probs, feats, selected, released


def _fold_record(
    payload: FoldPayload,
    cfg: TrainConfig,
    fingerprint: str,
    train_ds: KeyframeDataset,
    test_ds: KeyframeDataset,
    history: list[dict[str, Any]],
    selected: dict[str, Any],
    preds: dict[str, np.ndarray],
    probs: dict[str, np.ndarray],
    rt: _Runtime,
) -> dict[str, Any]:
    """The JSON-able record of a finished fold (``folds/<subject>.json``)."""
    protocol = cfg.evaluation.protocol
    return {
        "format": FOLD_FORMAT,
        "version": FOLD_VERSION,
        "subject": payload.subject,
        "seed": payload.seed,
        "data_fingerprint": fingerprint,
        "config_digest": config_digest(cfg),
        "protocol": protocol,
        "protocol_note": RELEASED_NOTE if protocol == "released" else "",
        "num_train": len(payload.train),
        "num_val": len(payload.val),
        "num_test": len(payload.test),
        "train_keys": [s.key for s in payload.train],
        "val_keys": [s.key for s in payload.val],
        "train_keyframes": [list(train_ds.keyframes(i)) for i in range(len(train_ds))],
        "val_subjects": sorted({s.subject for s in payload.val}),
        "epochs_run": len(history),
        "selected": selected,
        "history": history,
        "test": [
            {
                "key": s.key,
                "subject": s.subject,
                "dataset": s.dataset,
                "label": s.label,
                "keyframes": list(test_ds.keyframes(i)),
                "pred": {m: int(preds[m][i]) for m in cfg.modes},
                "probs": {m: [float(x) for x in probs[m][i]] for m in cfg.modes},
            }
            for i, s in enumerate(payload.test)
        ],
        "device": rt.device,
        "amp": rt.use_amp,
        "pid": os.getpid(),
    }


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
