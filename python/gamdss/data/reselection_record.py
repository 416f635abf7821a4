"""The result of reselecting one clip, and the index/frame-number conversions it needs.

Indices are clip-relative and 0-based into the cached clip; :func:`frame_numbers` turns them
back into the dataset's frame numbers (``CacheEntry.frame_numbers``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gamdss.data.cache import CacheEntry


@dataclass(frozen=True)
class ClipReselection:
    """Annotated and reselected keyframes of one clip.

    ``annotated`` and ``reselected`` are clip-relative, 0-based (onset, apex, offset) indices
    into the cached clip; ``rise_distance`` = d(onset, apex) and ``fall_distance`` =
    d(apex, offset) of the reselected frames, in grey levels (L2 over all uint8 elements;
    ``max_distance`` method only, NaN for ``noise_aware``). ``confidence`` per keyframe: the
    evidence for its move in noise-floor sds (``noise_aware``; NaN where not assessed, and for
    ``max_distance``, which has no noise model). ``clip_sha256``: the sha256 of the cached
    pixels they were chosen on, where known (read back from a results file; not compared by
    ``==``).
    """

    clip_id: str
    annotated: tuple[int, int, int]
    reselected: tuple[int, int, int]
    rise_distance: float = float("nan")
    fall_distance: float = float("nan")
    confidence: tuple[float, float, float] = (float("nan"), float("nan"), float("nan"))
    clip_sha256: str | None = None

    def __eq__(self, other: object) -> bool:  # NaN confidences compare equal
        if not isinstance(other, ClipReselection):
            return NotImplemented
        return (self.clip_id, self.annotated, self.reselected) == (
            other.clip_id,
            other.annotated,
            other.reselected,
        ) and all(
            _same(a, b)
            for a, b in zip(
                (self.rise_distance, self.fall_distance, *self.confidence),
                (other.rise_distance, other.fall_distance, *other.confidence),
            )
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def displacement(self) -> tuple[int, int, int]:
        """Reselected minus annotated index per keyframe (frames; positive = later)."""
        return tuple(r - a for r, a in zip(self.reselected, self.annotated))  # type: ignore[return-value]

    @property
    def moved(self) -> bool:
        """True when reselection moved at least one of the three keyframes."""
        return self.reselected != self.annotated


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def frame_numbers(entry: CacheEntry, indices: Iterable[int]) -> tuple[int, ...]:
    """Dataset frame numbers of clip-relative indices of ``entry``'s cached frames."""
    out = []
    for i in indices:
        i = int(i)
        if not 0 <= i < len(entry.frame_numbers):
            raise IndexError(f"clip {entry.clip_id}: index {i} is outside its {len(entry.frame_numbers)} cached frames")
        out.append(int(entry.frame_numbers[i]))
    return tuple(out)


def annotated_indices(entry: CacheEntry) -> tuple[int, int, int]:
    """The entry's annotated (onset, apex, offset) as clip-relative indices."""
    try:
        return entry.onset_index, entry.apex_index, entry.offset_index
    except ValueError:
        raise ValueError(
            f"clip {entry.clip_id}: annotated frames onset={entry.onset}, apex={entry.apex}, "
            f"offset={entry.offset} are not all among its cached frame numbers "
            f"{entry.frame_numbers[0]}..{entry.frame_numbers[-1]}"
        ) from None
