"""Labelled samples of a LOSO run or of a user's own loop: which clip, which label, which keyframes.

:func:`build_samples` turns frame caches and a protocol (``gamdss.data.protocols``) into
:class:`Sample` records (protocol labels and subject keys, the annotated keyframes and,
optionally, the reselected ones from a reselection table computed once beforehand).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gamdss.data.cache import FrameCache

Keyframes = tuple[int, int, int]


@dataclass(frozen=True)
class Sample:
    """One labelled clip of a LOSO run.

    ``key``: ``<dataset>:<clip_id>``, unique across the run's caches. ``cache_index``: position of
    its cache in ``data.caches``. ``subject``: the protocol's subject key (the LOSO group).
    ``label``: protocol class id. ``annotated``/``reselected``: clip-relative (onset, apex,
    offset) indices; ``reselected`` is None when reselection is off. ``sha256``: the cache
    entry's digest of the clip's pixels (part of the run's data fingerprint).
    """

    key: str
    cache_index: int
    clip_id: str
    dataset: str
    subject: str
    emotion: str
    label: int
    annotated: Keyframes
    reselected: Keyframes | None = None
    sha256: str = ""

    def keyframes(self, use_reselected: bool) -> Keyframes:
        """Clip-relative (onset, apex, offset) indices: the reselected ones when
        ``use_reselected`` and there are some, else the annotated ones."""
        return self.reselected if (use_reselected and self.reselected is not None) else self.annotated


def build_samples(
    caches: Sequence[FrameCache], protocol: Any, reselected: Mapping[tuple[int, str], Keyframes] | None = None
) -> tuple[list[Sample], list[dict[str, str]]]:
    """Labelled samples of all ``caches`` under ``protocol`` (a ``gamdss.data.protocols.Protocol``).

    ``reselected`` maps (cache index, clip id) to reselected keyframes. Samples come cache by
    cache, each cache's in clip id order (whatever order its manifest lists them in). Returns (samples,
    dropped) where ``dropped`` lists the clips the protocol leaves out (``key``, ``emotion``,
    ``reason``). Raises ``ValueError`` naming the cache when its dataset is not one of the
    protocol's datasets, or when two caches hold the same clip key.
    """
    samples: list[Sample] = []
    dropped: list[dict[str, str]] = []
    seen: set[str] = set()
    allowed = set(getattr(protocol, "datasets", ()) or ())
    for ci, cache in enumerate(caches):
        # clip id order, not the manifest's: a cache made by several workers, or resumed,
        # lists its clips as they finished, and the same seed must give the same run
        for e in sorted(cache.entries, key=lambda entry: entry.clip_id):
            if allowed and e.dataset not in allowed:
                raise ValueError(
                    f"cache {cache.root}: clip {e.clip_id} is from dataset {e.dataset!r}, "
                    f"not one of protocol {getattr(protocol, 'name', protocol)!r}'s datasets "
                    f"{sorted(allowed)}"
                )
            key = f"{e.dataset}:{e.clip_id}"
            if key in seen:
                raise ValueError(f"cache {cache.root}: clip {key} is also in an earlier cache")
            seen.add(key)
            label = protocol.sample_label(e.dataset, e.clip_id, e.emotion, e.meta)
            if label is None:
                dropped.append({"key": key, "emotion": e.emotion, "reason": "not in the protocol's classes"})
                continue
            samples.append(
                Sample(
                    key=key,
                    cache_index=ci,
                    clip_id=e.clip_id,
                    dataset=e.dataset,
                    subject=protocol.subject_key(e.dataset, e.subject),
                    emotion=e.emotion,
                    label=int(label),
                    annotated=(e.onset_index, e.apex_index, e.offset_index),
                    reselected=None if reselected is None else tuple(reselected[(ci, e.clip_id)]),
                    sha256=e.sha256,
                )
            )
    return samples, dropped
