"""A bounded set of open memory maps, for readers that revisit the same files.

Each open ``numpy`` memory map holds a file descriptor, and many systems allow a process
only 1,024; a dataset that kept every clip and flow field of a large dataset open would run
out partway through an epoch. :class:`OpenMaps` keeps at most ``limit`` and drops the least
recently used first (its descriptor closes when no view of it is left).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

#: maps kept open per reader: far below common descriptor limits, enough for a batch's clips
DEFAULT_LIMIT = 128


class OpenMaps:
    """``get(key, open_fn)``: the map stored under ``key``, opened with ``open_fn()`` when it is
    not held; at most ``limit`` maps are held."""

    def __init__(self, limit: int = DEFAULT_LIMIT):
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._maps: OrderedDict[Hashable, np.ndarray] = OrderedDict()

    def get(self, key: Hashable, open_fn: Callable[[], np.ndarray]) -> np.ndarray:
        """The map held under ``key`` (now the most recently used), or ``open_fn()``'s, stored
        under ``key``; the least recently used map is dropped when more than ``limit`` are held."""
        arr = self._maps.get(key)
        if arr is not None:
            self._maps.move_to_end(key)
            return arr
        arr = open_fn()
        self._maps[key] = arr
        while len(self._maps) > self.limit:
            self._maps.popitem(last=False)
        return arr

    def __len__(self) -> int:
        return len(self._maps)

    def clear(self) -> None:
        """Drop every held map (each file closes once no view of it is left)."""
        self._maps.clear()
