"""Optical flow computed once per clip and keyframe pair, stored next to the frame cache.

Layout (default root: ``CACHE/flow``; any other folder with ``root=``)::

    ROOT/<method>-<S>px-<params digest>/settings.json       method, parameters, size (for people)
    ROOT/<method>-<S>px-<params digest>/<clip file stem>/<src>-<dst>-<key digest>.npy

Each ``.npy`` is float16 ``[2, S, S]``: the flow from clip frame ``src`` to frame ``dst``
(0-based clip indices; dx, dy in pixels at S x S, :mod:`gamdss.data.flow`), computed on the
frames resized to S x S exactly as the training input is (:func:`resize_uint8`). The file's
key digest hashes the clip's pixel digest (the cache entry's sha256), the two indices, the
method, its parameters and S: a change of keyframes or of the reselection asks for other
pairs (other files), and redone pixels or other parameters give other digests, so a stale
field is never read. Old files stay until the folder is removed.

The training input uses two pairs per sample (:func:`flow_pairs`): onset -> apex (rise) and
offset -> apex (fall), what :func:`gamdss.models.inputs.motion_inputs` computes.

Files are written atomically (:mod:`gamdss.util.atomic`), so computing is resumable: a rerun
computes only the missing files (a file that does not load as float16 ``[2, S, S]`` counts
as missing). Clips are computed in parallel by a pool of ``spawn`` processes, with a
progress bar; a clip that fails is reported and does not stop the others.

One writer per folder: :meth:`FlowStore.compute` holds the folder's lock
(:func:`gamdss.util.run_lock.hold`) while it writes. A second run that needs fields of the
same folder (two training runs on one cache, say) says once on stderr which run it waits for,
waits until that run ends (however it ends: the lock dies with its holder, ``kill -9``
included), then computes only what is still missing; a lock that this very process holds
outside :meth:`FlowStore.compute` raises ``RuntimeError`` instead (the wait could never end). Holding the lock, a run first removes
the temporary files that a killed run left in the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gamdss.data.cache import FrameCache
from gamdss.data.flow import compute_flow, flow_params, rgb_to_grey
from gamdss.data.resize import resize_uint8
from gamdss.data.workers import default_workers, run_in_processes, worker_died
from gamdss.util import atomic, run_lock
from gamdss.util.open_maps import OpenMaps

FLOW_DIR = "flow"
FLOW_FORMAT_VERSION = 1
SETTINGS_FILE = "settings.json"
LOCK_WHAT = "gamdss flow computation"
LOCK_POLL_SECONDS = 0.2
# Threads of this process inside FlowStore.compute, per flow folder (tells a lock held by
# another of our threads, worth waiting for, from one held outside compute).
_COMPUTING: Counter[str] = Counter()
_COMPUTING_LOCK = threading.Lock()

Pair = tuple[str, int, int]  # (clip id, source index, target index)


def flow_pairs(keyframes: Sequence[int]) -> list[tuple[int, int]]:
    """The (source, target) index pairs the flow input needs for keyframes (onset, apex,
    offset): ``[(onset, apex), (offset, apex)]`` (rise, fall)."""
    onset, apex, offset = (int(k) for k in keyframes)
    return [(onset, apex), (offset, apex)]


def _digest(obj: Any, n: int) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()[:n]


@dataclass
class FlowReport:
    """What :meth:`FlowStore.compute` did: ``done`` fields computed now, ``already_done`` found
    complete, ``failed`` one line per failed clip (naming it)."""

    folder: Path
    done: list[Pair] = field(default_factory=list)
    already_done: list[Pair] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class FlowStore:
    """The cached flow of one frame cache for one method, parameter set and size.

    ``cache``: the frame cache (folder or :class:`FrameCache`). ``method``: ``farneback`` or
    ``tvl1``; ``params``: overrides of its defaults. ``size``: S, the side of the fields
    (default: the cache's frame height). ``root``: where the flow folders live (default
    ``CACHE/flow``). Picklable (opens the cache lazily).
    """

    def __init__(
        self,
        cache: str | Path | FrameCache,
        method: str = "farneback",
        params: dict[str, Any] | None = None,
        size: int | None = None,
        root: str | Path | None = None,
    ):
        self.cache_root = Path(cache.root if isinstance(cache, FrameCache) else cache)
        self._cache = cache if isinstance(cache, FrameCache) else None
        self.method = method
        self.params = flow_params(method, params)
        if size is None:
            size = int(self.cache.header.get("size", [0])[0]) or int(self.cache.entries[0].shape[1])
        self.size = int(size)
        self.root = Path(root) if root is not None else self.cache_root / FLOW_DIR
        self.settings = {
            "format_version": FLOW_FORMAT_VERSION,
            "method": method,
            "params": self.params,
            "size": self.size,
        }
        self.folder = self.root / f"{method}-{self.size}px-{_digest(self.settings, 10)}"
        self._maps = OpenMaps()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"], state["_maps"] = None, OpenMaps()
        return state

    @property
    def cache(self) -> FrameCache:
        """The frame cache the fields are computed from (opened on first use, once per process)."""
        if self._cache is None:
            self._cache = FrameCache(self.cache_root)
        return self._cache

    def path(self, clip_id: str, src: int, dst: int) -> Path:
        """Where the field from frame ``src`` to ``dst`` of ``clip_id`` is (or will be) stored."""
        entry = self.cache[clip_id]
        key = _digest({"clip": entry.sha256, "src": int(src), "dst": int(dst), **self.settings}, 12)
        return self.folder / Path(entry.file).stem / f"{int(src):05d}-{int(dst):05d}-{key}.npy"

    def complete(self, clip_id: str, src: int, dst: int) -> bool:
        """Whether the field is stored whole (loads as float16 [2, S, S])."""
        path = self.path(clip_id, src, dst)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return False
        return arr.dtype == np.float16 and arr.shape == (2, self.size, self.size)

    def read(self, clip_id: str, src: int, dst: int) -> np.ndarray:
        """float16 ``[2, S, S]`` read-only memory map of the stored field (the most recently
        read fields are kept open: :class:`~gamdss.util.open_maps.OpenMaps`).

        ``FileNotFoundError`` naming the clip when it was not computed (:meth:`compute`)."""
        path = self.path(clip_id, src, dst)
        if not path.is_file():
            raise FileNotFoundError(
                f"clip {clip_id}: no cached {self.method} flow {src}->{dst} in {self.folder} "
                f"(compute it first: FlowStore.compute or KeyframeDataset(..., input_kind='flow'))"
            )
        return self._maps.get(path, lambda: np.load(path, mmap_mode="r", allow_pickle=False))

    def missing(self, pairs: Iterable[Pair]) -> list[Pair]:
        """Those of ``pairs`` that are not stored whole."""
        return [p for p in pairs if not self.complete(*p)]

    def compute(self, pairs: Iterable[Pair], workers: int | None = None, progress: bool = True) -> FlowReport:
        """Compute and store the fields of ``pairs`` (clip id, src, dst) that are missing.

        ``workers``: processes (default min(4, CPUs it may use); 1 computes here; the pool is
        :func:`gamdss.data.workers.run_in_processes`). Returns what was done; clips that fail
        are listed in ``report.failed`` (with those left unfinished when a worker process
        dies) and the others are stored.
        Holds the folder's lock while it writes; when another run holds it, waits for that
        run to end (one line on stderr names it), then computes what is still missing."""
        pairs = sorted(set(pairs))
        report = FlowReport(folder=self.folder)
        if not self.missing(pairs):
            report.already_done = pairs
            return report
        with self._hold_lock():
            atomic.remove_temporaries(self.folder, "*/*.npy", SETTINGS_FILE)  # a killed run's
            todo = self.missing(pairs)  # again: the run we may have waited for wrote fields
            todo_set = set(todo)
            report.already_done = [p for p in pairs if p not in todo_set]
            if todo:
                self._compute_locked(todo, workers, progress, report)
        return report

    @contextlib.contextmanager
    def _hold_lock(self) -> Iterator[None]:
        """The folder's lock for the block, waiting while another run holds it.

        ``RuntimeError`` instead of waiting when this process holds the lock outside
        :meth:`compute` (the wait could never end)."""
        key = str(self.folder.resolve())
        with _COMPUTING_LOCK:
            _COMPUTING[key] += 1
        try:
            said = False
            while True:
                lock = contextlib.ExitStack()  # entered apart from the body: its errors are not retried
                try:
                    lock.enter_context(run_lock.hold(self.folder, LOCK_WHAT))
                    break
                except run_lock.FolderBusyError as busy:
                    with _COMPUTING_LOCK:
                        alone = _COMPUTING[key] == 1  # no other thread of this process computes here
                    if alone and run_lock.held_by_this_process(busy.holder):
                        raise RuntimeError(
                            f"{self.folder} is locked by this process (pid {os.getpid()}) outside "
                            f"FlowStore.compute; release that lock first (waiting for it would never end)"
                        ) from None
                    if not said:
                        print(
                            f"[gamdss] {self.folder} is being written by "
                            f"{run_lock.describe_holder(busy.holder)}; waiting for it to end",
                            file=sys.stderr,
                            flush=True,
                        )
                        said = True
                    time.sleep(LOCK_POLL_SECONDS)
            with lock:
                yield
        finally:
            with _COMPUTING_LOCK:
                _COMPUTING[key] -= 1

    def _compute_locked(self, todo: list[Pair], workers: int | None, progress: bool, report: FlowReport) -> None:
        if not (self.folder / SETTINGS_FILE).is_file():
            atomic.write_text(self.folder / SETTINGS_FILE, json.dumps(self.settings, indent=1))
        by_clip: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        for clip_id, src, dst in todo:
            by_clip[clip_id].append((src, dst, str(self.path(clip_id, src, dst))))
        jobs = sorted(by_clip.items())
        workers = min(workers or default_workers(), len(jobs))
        args = (str(self.cache_root), self.method, self.params, self.size)
        with tqdm(total=len(todo), desc=f"{self.method} flow", unit="pair", disable=not progress) as bar:

            def finish(clip_id: str, result: str | None) -> None:
                if result is None:
                    report.done.extend((clip_id, s, d) for s, d, _ in by_clip[clip_id])
                else:
                    report.failed.append(result)
                bar.update(len(by_clip[clip_id]))

            # each clip's pixel digest as the file names were made with it
            digests = {clip_id: self.cache[clip_id].sha256 for clip_id, _ in jobs}
            if workers <= 1:
                for clip_id, items in jobs:
                    finish(clip_id, _compute_clip(*args, clip_id, digests[clip_id], items))
            else:
                run_in_processes(
                    _compute_clip,
                    [(clip_id, (*args, clip_id, digests[clip_id], items)) for clip_id, items in jobs],
                    workers,
                    finish,
                    worker_died,
                )


def _compute_clip(
    cache_root: str,
    method: str,
    params: dict,
    size: int,
    clip_id: str,
    sha256: str,
    items: list[tuple[int, int, str]],
) -> str | None:
    """Compute one clip's fields (``items``: src, dst, path) and write them; the error as one
    line naming the clip, or None. ``sha256``: the clip's pixel digest in the paths' keys; a
    clip the frame cache now holds with other pixels (preprocessed again meanwhile) fails
    rather than store their flow under the old pixels' key. A full disk is raised (it stops
    the run)."""
    try:
        cache = FrameCache(cache_root)
        if cache[clip_id].sha256 != sha256:
            raise ValueError(
                "its frames in the cache changed after this flow run began (preprocessed again?); "
                "run the same command again"
            )
        frames = cache.frames(clip_id)
        needed = sorted({i for src, dst, _ in items for i in (src, dst)})
        for i in needed:
            if not 0 <= i < frames.shape[0]:
                raise IndexError(f"frame index {i} is outside the clip's {frames.shape[0]} frames")
        grey = dict(
            zip(needed, rgb_to_grey(resize_uint8(torch.from_numpy(np.stack([frames[i] for i in needed])), size)))
        )
        source = torch.stack([grey[src] for src, _, _ in items])
        target = torch.stack([grey[dst] for _, dst, _ in items])
        flows = compute_flow(source, target, method, params).numpy().astype(np.float16)
        for (_, _, path), flow in zip(items, flows):
            with atomic.atomic_path(path) as tmp:
                np.save(tmp, flow, allow_pickle=False)
        return None
    except atomic.DiskFullError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported per clip, the run goes on
        return f"clip {clip_id}: {type(exc).__name__}: {exc}"
