"""Where folds run: in this process one after another, or as Ray tasks.

An executor has ``run(fn, payloads, on_result)``: it calls ``fn(payload)`` for every payload,
somewhere, and ``on_result(payload, output)`` **in this process** as each one finishes, so
the results files are written by the same code whichever executor ran the folds.

An exception raised while a fold trains (in ``fn``) ends the run with :class:`FoldFailedError`
naming the fold's subject and the cause's last line (colour codes stripped), whichever executor
ran it; folds finished before it are kept. Ctrl-C (``KeyboardInterrupt``) passes through.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _last_line(exc: BaseException) -> str:
    """``Type: message`` of the error behind ``exc`` (a Ray task error's ``cause`` when it
    has one), its message cut to the last non-empty line, terminal colour codes removed."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    name = type(exc).__name__
    if not lines:
        return name
    return lines[-1] if lines[-1].startswith(f"{name}:") else f"{name}: {lines[-1]}"


class FoldFailedError(RuntimeError):
    """A fold raised while training: ``subject`` and ``cause`` (:func:`_last_line`)."""

    def __init__(self, subject: str, exc: BaseException):
        self.subject = subject
        self.cause = _last_line(exc)
        super().__init__(f"fold {subject} failed while training: {self.cause}")


def _subject(payload: Any) -> str:
    return str(getattr(payload, "subject", payload))


class LocalExecutor:
    """Folds in this process, in order (fold progress bars shown)."""

    shows_fold_progress = True

    def run(self, fn: Callable[[Any], Any], payloads: Sequence[Any], on_result: Callable[[Any, Any], None]) -> None:
        """``fn(payload)`` for each payload in turn, each followed by ``on_result(payload,
        output)``; the first exception of ``fn`` ends the run as :class:`FoldFailedError`."""
        for payload in payloads:
            try:
                output = fn(payload)
            except Exception as exc:
                raise FoldFailedError(_subject(payload), exc) from exc
            on_result(payload, output)


class RayExecutor:
    """Each fold a Ray remote task, on a local Ray instance or an existing cluster.

    Args:
        address: ``ray.init(address=...)`` of an existing cluster (``"auto"``, ``"ray://host:10001"``);
            empty: start a local instance (or use the one this process already started).
        num_gpus_per_fold: GPUs each task asks for; None: 1 when this machine has CUDA, else 0.
        num_cpus_per_fold: CPUs each task asks for.
        init_kwargs: extra ``ray.init`` arguments for a local instance (e.g. ``num_cpus=1``).

    Workers must see the frame caches at the same paths (a shared file system) and import the
    same gamdss; this process's ``PYTHONPATH`` is passed to local workers. Finished folds come
    back to this process, which writes every results file (so they equal the local
    executor's). Epoch progress bars are off in workers.
    """

    shows_fold_progress = False

    def __init__(
        self,
        address: str = "",
        num_gpus_per_fold: float | None = None,
        num_cpus_per_fold: float = 1,
        init_kwargs: dict[str, Any] | None = None,
    ):
        self.address = address
        self.num_gpus_per_fold = num_gpus_per_fold
        self.num_cpus_per_fold = num_cpus_per_fold
        self.init_kwargs = dict(init_kwargs or {})

    def _init(self):
        try:
            import ray  # optional dependency: imported only when a run asks for it
        except ImportError as exc:  # pragma: no cover - ray is a dependency
            raise RuntimeError("run.executor=ray needs the 'ray' package (pip install 'ray>=2.9')") from exc
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": True, **self.init_kwargs}
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                env = {k: os.environ[k] for k in ("HF_HUB_OFFLINE",) if k in os.environ}
                if os.environ.get("PYTHONPATH"):  # absolute: workers start in another directory
                    env["PYTHONPATH"] = os.pathsep.join(
                        os.path.abspath(p) for p in os.environ["PYTHONPATH"].split(os.pathsep) if p
                    )
                if env:
                    kwargs.setdefault("runtime_env", {"env_vars": env})
                ray.init(**kwargs)
        return ray

    def gpus_per_fold(self) -> float:
        """GPUs each fold task requests: ``num_gpus_per_fold``, or 1 when CUDA is available here."""
        if self.num_gpus_per_fold is not None:
            return self.num_gpus_per_fold
        return 1 if torch.cuda.is_available() else 0

    def run(self, fn: Callable[[Any], Any], payloads: Sequence[Any], on_result: Callable[[Any, Any], None]) -> None:
        """``fn(payload)`` for every payload as a Ray task (all submitted at once, no retries);
        ``on_result(payload, output)`` here as each finishes, in finishing order. The first
        failed task cancels the others and ends the run as :class:`FoldFailedError`. Tasks that
        ask for no GPU see none (``CUDA_VISIBLE_DEVICES`` empty). On a local
        instance (no ``address``), tasks asking for more GPUs than it has are refused
        (``RuntimeError``) before any is submitted; a cluster may add GPU nodes, so there they wait."""
        if not payloads:
            return
        ray = self._init()
        gpus = self.gpus_per_fold()
        if gpus and not self.address:  # a local instance never grows: the tasks would wait forever
            have = ray.cluster_resources().get("GPU", 0)
            if have < gpus:
                raise RuntimeError(
                    f"each fold asks Ray for {gpus:g} GPU (run.device resolves to CUDA) but the local Ray "
                    f"instance has {have:g}; set run.device=cpu or run where Ray sees a GPU"
                )
        options: dict[str, Any] = {"num_gpus": gpus, "num_cpus": self.num_cpus_per_fold, "max_retries": 0}
        if not gpus:
            # Ray (2.x) leaves CUDA_VISIBLE_DEVICES alone for a task that asks for no GPU: on a GPU
            # node the fold would see one Ray never reserved, and run.device=auto resolve to cuda
            # there while it resolved to cpu here. Hidden, the fold runs where it was decided.
            options["runtime_env"] = {"env_vars": {"CUDA_VISIBLE_DEVICES": ""}}
        task = ray.remote(**options)(fn)
        pending = {task.remote(p): p for p in payloads}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                payload = pending.pop(ref)
                try:
                    output = ray.get(ref)
                except Exception as exc:
                    for other in pending:  # the run ends here: do not leave tasks training
                        ray.cancel(other)
                    raise FoldFailedError(_subject(payload), exc) from exc
                on_result(payload, output)


def fold_gpus(device: str) -> float | None:
    """GPUs a Ray fold task asks for to run on ``run.device`` ``device``: none for ``cpu``,
    one for ``cuda``/``cuda:N``, and for ``auto`` None (:meth:`RayExecutor.gpus_per_fold`:
    one when this machine has CUDA, as ``auto`` resolves here)."""
    if device == "auto":
        return None
    return 1 if device.startswith("cuda") else 0


def make_executor(cfg) -> LocalExecutor | RayExecutor:
    """The executor ``cfg.run.executor`` names; a Ray fold asks for a GPU only when
    ``run.device`` resolves to CUDA (:func:`fold_gpus`), so ``run.device=cpu`` runs on a
    cluster without GPUs."""
    if cfg.run.executor == "ray":
        return RayExecutor(address=cfg.run.ray_address, num_gpus_per_fold=fold_gpus(cfg.run.device))
    return LocalExecutor()
