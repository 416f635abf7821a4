"""The public torch Dataset: onset, apex and offset keyframes (and cached flow) of each clip.

Data flow: frame caches + a protocol (+ optionally a reselection output) ->
:func:`keyframe_dataset` / :class:`KeyframeDataset` (per sample only: read three uint8
frames from the memory-mapped cache, the cached flow fields, and draw the augmentation) ->
:func:`collate` (a :class:`~gamdss.data.batch.KeyframeBatch`) ->
:class:`~gamdss.data.batch_transform.KeyframeTransform` on the training device (resize,
normalise, augment, batched). Nothing is reselected, resized or augmented in ``__getitem__``.

The augmentation draws come from a generator seeded by (seed, epoch, sample key): the same
sample in the same epoch gets the same augmentation whatever the loading order or worker.
Call :meth:`KeyframeDataset.set_epoch` before each epoch when augmenting.

Use::

    ds = keyframe_dataset("cache", protocol="casme2-5", image_size=224, augment=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, collate_fn=collate)
    for batch, labels, index in loader:
        x = ds.transform(batch, device)          # KeyframeInputs: onset/apex/offset [N, 3, S, S]
        rise, fall = x.motion()                  # apex - onset, apex - offset (or the flows)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gamdss.data.batch import AugmentParams, KeyframeBatch
from gamdss.data.batch_transform import KeyframeTransform, draw_augment
from gamdss.data.cache import FrameCache
from gamdss.data.flow import FLOW_METHODS
from gamdss.data.flow_cache import FlowStore, flow_pairs
from gamdss.data.protocols import get_protocol
from gamdss.data.reselection_files import check_against_cache, load_reselection
from gamdss.data.samples import Keyframes, Sample, build_samples
from gamdss.util.open_maps import OpenMaps
from gamdss.util.seeds import derive_seed

__all__ = ["KeyframeItem", "KeyframeDataset", "collate", "keyframe_dataset"]


@dataclass
class KeyframeItem:
    """One sample as read: ``frames`` uint8 ``[3, H, W, 3]`` (onset, apex, offset; HWC RGB;
    a tensor from ``ds[i]``, read-only memory-map views inside a DataLoader batch),
    ``augment`` its draws (None when not augmenting), ``flow`` float16 ``[2, 2, S, S]`` (rise,
    fall; dx, dy) or None, ``label`` the protocol class id, ``index`` its position."""

    frames: Any
    augment: AugmentParams | None
    flow: Any
    label: int
    index: int


class KeyframeDataset(torch.utils.data.Dataset):
    """Onset, apex and offset frames of each sample, read from frame caches.

    ``samples``: :class:`~gamdss.data.samples.Sample` records (:func:`build_samples`).
    ``cache_roots``: the cache folder of each ``Sample.cache_index``. ``image_size``: S, the
    size the model sees (the transform resizes when the cache differs). ``input_kind``:
    ``difference`` or ``flow``; ``flow``: the flow method for flow input (``farneback`` or
    ``tvl1``), computed once per clip and keyframe pair into the flow cache
    (:mod:`gamdss.data.flow_cache`; missing fields are computed when the dataset is made,
    ``flow_workers`` processes, ``progress`` bar). ``use_reselected``: read each sample's
    reselected keyframes (when it has them) instead of the annotated ones. ``augment``/``seed``:
    the released code's augmentation, seeded per (seed, epoch, sample).

    ``ds[i]`` is a :class:`KeyframeItem`; batch with :func:`collate` and turn batches into
    model inputs with :attr:`transform` on the training device. Caches are opened lazily, so
    the dataset pickles cheaply into DataLoader workers.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        cache_roots: Sequence[str | Path],
        *,
        image_size: int,
        input_kind: str = "difference",
        use_reselected: bool = False,
        augment: bool = False,
        seed: int = 0,
        flow: str = "farneback",
        flow_params: dict[str, Any] | None = None,
        flow_root: str | Path | None = None,
        flow_workers: int | None = None,
        progress: bool = False,
    ):
        if input_kind not in ("difference", "flow"):
            raise ValueError(f"input_kind must be 'difference' or 'flow', got {input_kind!r}")
        if flow not in FLOW_METHODS:
            raise ValueError(f"flow must be one of {', '.join(FLOW_METHODS)}, got {flow!r}")
        self.samples = list(samples)
        self.cache_roots = [str(r) for r in cache_roots]
        self.image_size = int(image_size)
        self.input_kind = input_kind
        self.use_reselected = bool(use_reselected)
        self.augment = bool(augment)
        self.seed = int(seed)
        # In shared memory, so that set_epoch reaches DataLoader workers that outlive an
        # epoch (persistent_workers=True), which hold their own copy of the dataset.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.transform = KeyframeTransform(self.image_size, input_kind)
        self._caches: list[FrameCache] | None = None
        self._clips = OpenMaps()  # bounded: every open map holds a file descriptor
        self._flow: list[FlowStore] | None = None
        #: clips the protocol leaves out (``key``, ``emotion``, ``reason``; set by :func:`keyframe_dataset`)
        self.dropped: list[dict[str, str]] = []
        if input_kind == "flow":
            self._flow = [
                FlowStore(r, method=flow, params=flow_params, size=self.image_size, root=flow_root)
                for r in self.cache_roots
            ]
            self.compute_flow(workers=flow_workers, progress=progress)

    def __getstate__(self) -> dict[str, Any]:
        # Open caches and memory maps stay behind: a worker process opens its own (a pickled
        # memory map would carry its pixels).
        state = dict(self.__dict__)
        state["_caches"], state["_clips"] = None, OpenMaps()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # A DataLoader worker receives the shared epoch; a plain pickle or a deep copy gets a
        # private tensor, shared anew so that its own workers follow its set_epoch.
        if not self._epoch.is_shared():
            self._epoch.share_memory_()

    def __copy__(self) -> KeyframeDataset:
        # A shallow copy shares the samples and settings but not the epoch: its set_epoch
        # must not change what the original (and the original's workers) draw.
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__getstate__())
        new._epoch = self._epoch.clone().share_memory_()
        return new

    @property
    def epoch(self) -> int:
        """The epoch that seeds the augmentation draws (see :meth:`set_epoch`)."""
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Seed the next epoch's augmentation; seen by DataLoader workers already running
        (``persistent_workers=True``) as well as by those started later."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return len(self.samples)

    def keyframes(self, i: int) -> Keyframes:
        """The clip-relative (onset, apex, offset) that item ``i`` reads."""
        return self.samples[i].keyframes(self.use_reselected)

    def compute_flow(self, workers: int | None = None, progress: bool = False) -> None:
        """Compute the flow fields this dataset reads that the flow cache lacks (flow input)."""
        if self._flow is None:
            return
        for ci, store in enumerate(self._flow):
            wanted = {
                (s.clip_id, src, dst)
                for i, s in enumerate(self.samples)
                if s.cache_index == ci
                for src, dst in flow_pairs(self.keyframes(i))
            }
            if wanted:
                report = store.compute(sorted(wanted), workers=workers, progress=progress)
                if report.failed:
                    raise RuntimeError(f"flow cache {store.folder}: {report.failed[0]}")

    def _cache(self, index: int) -> FrameCache:
        if self._caches is None:
            self._caches = [FrameCache(r) for r in self.cache_roots]
        return self._caches[index]

    def _clip(self, s: Sample) -> np.ndarray:
        """The clip's frames, uint8 [T, H, W, 3] memory map (checked once per cache object; the
        most recently read clips are kept open)."""
        return self._clips.get((s.cache_index, s.clip_id), lambda: self._cache(s.cache_index).frames(s.clip_id))

    def _draws(self, s: Sample) -> AugmentParams | None:
        if not self.augment:
            return None
        gen = torch.Generator().manual_seed(derive_seed("augment", self.seed, self.epoch, s.key))
        return draw_augment(gen, self.image_size)

    def _read(self, i: int) -> KeyframeItem:
        s = self.samples[i]
        clip = self._clip(s)
        onset, apex, offset = self.keyframes(i)
        frames = (clip[onset], clip[apex], clip[offset])  # memory-map views, copied once by collate
        flow = None
        if self._flow is not None:
            store = self._flow[s.cache_index]
            flow = tuple(store.read(s.clip_id, src, dst) for src, dst in flow_pairs((onset, apex, offset)))
        return KeyframeItem(frames, self._draws(s), flow, s.label, i)

    def __getitem__(self, i: int) -> KeyframeItem:
        item = self._read(i)
        item.frames = torch.from_numpy(np.stack(item.frames))
        if item.flow is not None:
            item.flow = torch.from_numpy(np.stack(item.flow))
        return item

    def __getitems__(self, indices: Sequence[int]) -> list[KeyframeItem]:
        """The DataLoader's batched fetch: items that still point into the memory maps."""
        return [self._read(int(i)) for i in indices]


def _stack(parts: list, dtype: Any) -> torch.Tensor:
    """One tensor from per-item arrays (or tuples of arrays): a single copy into the batch."""
    first = np.asarray(parts[0][0] if isinstance(parts[0], tuple) else parts[0])
    inner = (len(parts[0]),) + first.shape if isinstance(parts[0], tuple) else tuple(first.shape)
    out = np.empty((len(parts),) + inner, dtype=dtype)
    for k, part in enumerate(parts):
        if isinstance(part, tuple):
            for j, a in enumerate(part):
                out[k, j] = a
        else:
            out[k] = part
    return torch.from_numpy(out)


def collate(items: list[KeyframeItem]) -> tuple[KeyframeBatch, torch.Tensor, torch.Tensor]:
    """``(batch, labels int64 [N], dataset indices int64 [N])`` from items.

    ``batch.frames``: uint8 [N, 3, H, W, 3] (a list when the items' frame sizes differ).
    """
    shapes = {tuple(np.shape(f)) for it in items for f in it.frames}
    frames: torch.Tensor | list[torch.Tensor]
    if len(shapes) == 1:
        frames = _stack([tuple(it.frames) for it in items], np.uint8)
    else:
        frames = [torch.from_numpy(np.stack([np.asarray(f) for f in it.frames])) for it in items]
    draws = [it.augment for it in items if it.augment is not None]
    augment = AugmentParams.stack(draws) if len(draws) == len(items) else None
    flow = None if items[0].flow is None else _stack([tuple(it.flow) for it in items], np.float16)
    labels = torch.tensor([it.label for it in items], dtype=torch.int64)
    index = torch.tensor([it.index for it in items], dtype=torch.int64)
    return KeyframeBatch(frames=frames, augment=augment, flow=flow), labels, index


def keyframe_dataset(
    caches: str | Path | Sequence[str | Path],
    protocol: str = "casme2-5",
    reselection: str | Path | Sequence[str | Path] | None = None,
    **kwargs: Any,
) -> KeyframeDataset:
    """A :class:`KeyframeDataset` of every clip of ``caches`` that ``protocol`` labels.

    ``caches``: one frame cache folder or several. ``protocol``: a name of
    :mod:`gamdss.data.protocols` (e.g. ``casme2-5``). ``reselection``: a ``gamdss reselect``
    output (its folder or its ``reselection.csv``), one per cache; the dataset then reads the
    reselected keyframes (``use_reselected`` defaults to True). ``kwargs``: the
    :class:`KeyframeDataset` options (``image_size`` is required). The dropped clips (not in
    the protocol's classes) are in ``ds.dropped``.
    """
    roots = [caches] if isinstance(caches, (str, Path)) else list(caches)
    opened = [FrameCache(r) for r in roots]
    table: dict[tuple[int, str], Keyframes] | None = None
    if reselection is not None:
        files = [reselection] if isinstance(reselection, (str, Path)) else list(reselection)
        if len(files) != len(opened):
            raise ValueError(f"reselection: {len(files)} file(s) for {len(opened)} cache(s); give one per cache")
        table = {}
        for ci, (cache, path) in enumerate(zip(opened, files)):
            path = Path(path)
            csv_path = path / "reselection.csv" if path.is_dir() else path
            results = load_reselection(csv_path)
            check_against_cache(results, cache, source=str(csv_path))
            done = {r.clip_id: (int(r.reselected[0]), int(r.reselected[1]), int(r.reselected[2])) for r in results}
            for e in cache.entries:  # clips the reselection left out keep their annotation
                table[(ci, e.clip_id)] = done.get(e.clip_id, (e.onset_index, e.apex_index, e.offset_index))
        kwargs.setdefault("use_reselected", True)
    samples, dropped = build_samples(opened, get_protocol(protocol), table)
    ds = KeyframeDataset(samples, [c.root for c in opened], **kwargs)
    ds.dropped = dropped
    return ds
