"""Fingerprints of the data a LOSO run (or one fold) trains and tests on.

A run's output folder may only be resumed when the data is the same as when it started: the
caches in ``data.caches`` are folders, and one rebuilt at the same path (re-preprocessed,
other clips, corrected annotations) must not have its new folds pooled with folds trained on
the old contents. A fingerprint is the sha256 of a canonical JSON of, per sample: its key,
subject, protocol label, annotated and reselected (onset, apex, offset) and the cache entry's
``sha256`` (the digest of the clip's pixels recorded in the cache manifest; the clip files
are not re-hashed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gamdss.train.dataset import Sample

# The Sample fields that decide what a fold learns from and is scored on.
FINGERPRINT_FIELDS = ("key", "subject", "label", "annotated", "reselected", "sha256")


def sample_record(sample: Sample | Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprinted fields of a sample (a :class:`Sample` or its ``asdict`` as read from
    ``plan.json``), JSON-normalised (tuples become lists)."""
    get = sample.get if isinstance(sample, Mapping) else (lambda k: getattr(sample, k, None))
    return json.loads(json.dumps({k: get(k) for k in FINGERPRINT_FIELDS}))


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def samples_fingerprint(samples: Iterable[Sample | Mapping[str, Any]]) -> str:
    """sha256 hex of the samples' records, sorted by key (independent of cache order)."""
    return _digest(sorted((sample_record(s) for s in samples), key=lambda r: r["key"]))


def fold_fingerprint(train: Sequence[Sample], val: Sequence[Sample], test: Sequence[Sample]) -> str:
    """sha256 hex of a fold's train, validation and test samples (each set sorted by key)."""
    return _digest(
        {
            role: sorted((sample_record(s) for s in part), key=lambda r: r["key"])
            for role, part in (("train", train), ("val", val), ("test", test))
        }
    )


def describe_changes(
    old: Iterable[Sample | Mapping[str, Any]], new: Iterable[Sample | Mapping[str, Any]], examples: int = 3
) -> str:
    """A short human description of how sample set ``new`` differs from ``old`` (about
    ``examples`` example samples: one added, one removed, the rest changed), e.g.
    ``"2 samples added, 1 removed, 1 changed (e.g. added casme2:sub01/EP09; changed
    casme2:sub01/EP00: annotated [3, 9, 15] -> [4, 9, 15])"``; ``""`` when they are the same."""
    before = {r["key"]: r for r in map(sample_record, old)}
    after = {r["key"]: r for r in map(sample_record, new)}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    if not (added or removed or changed):
        return ""
    counts = [f"{len(added)} samples added", f"{len(removed)} removed", f"{len(changed)} changed"]
    shown = [f"added {k}" for k in added[:1]] + [f"removed {k}" for k in removed[:1]]
    for k in changed[: max(1, examples - len(shown))]:
        fields = [f for f in FINGERPRINT_FIELDS if before[k][f] != after[k][f]]
        parts = [f"{f} {_short(before[k][f])} -> {_short(after[k][f])}" for f in fields]
        shown.append(f"changed {k}: {', '.join(parts)}")
    return f"{', '.join(counts)} (e.g. {'; '.join(shown)})"


def _short(value: Any) -> str:
    """Digests are shortened to 12 hex digits in messages."""
    return f"{value[:12]}..." if isinstance(value, str) and len(value) == 64 else json.dumps(value)
