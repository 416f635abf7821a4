"""Pure-PyTorch reference of keyframe reselection: the oracle the tests hold the compiled
kernels to, and the baseline of the benchmarks.

Everything is computed pair by pair, straight from docs/reselection.md: uint8 frames
in exact int64 arithmetic, floating frames in float64. Same signatures as
:func:`gamdss.reselect`, :func:`gamdss.op.ops.reselect_windows` and
:func:`gamdss.op.ops.frame_distances`, plus ``ties``: ``"nearest"`` (the contract's rule, the
op's) or ``"first_inserted"`` (the released code's loop order, docs/reselection.md "Released
tie order"); the op has only the first, so :mod:`gamdss.op.released_ties` (the ``released``
preset) sends the clips with ties here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch

from gamdss.settings.reselection import TIES

from .api import reselect_with
from .packing import PackedClips, check_distance
from .result import Reselection


def _flat(frames: torch.Tensor, index: torch.Tensor | list[int]) -> torch.Tensor:
    """Frames at ``index`` as flat rows: int64 for uint8, float64 otherwise. ``[n, D]``."""
    rows = frames[torch.as_tensor(index, dtype=torch.int64, device=frames.device)]
    rows = rows.reshape(rows.shape[0], -1)
    return rows.to(torch.int64) if frames.dtype == torch.uint8 else rows.to(torch.float64)


def _keys(x: torch.Tensor, ys: torch.Tensor, distance: str, first_is_x: bool) -> list:
    """Selection keys of frame ``x`` ``[D]`` against frames ``ys`` ``[n, D]``.

    uint8: Python ints (exact); floating: Python floats, NaN ranked as -inf. For
    ``released_uint8`` the element difference is ``(x - y) mod 256`` when ``first_is_x``
    else ``(y - x) mod 256``.
    """
    d = ys - x
    if distance == "released_uint8":
        d = torch.remainder(-d if first_is_x else d, 256)
    sq = (d * d).sum(dim=1)
    lin = d.sum(dim=1)
    n = x.numel()
    if x.dtype == torch.int64:
        if distance == "centered":
            return [n * int(s) - int(x) * int(x) for s, x in zip(sq.tolist(), lin.tolist())]
        return [int(s) for s in sq.tolist()]
    keys = (sq - lin * lin / n) if distance == "centered" else sq
    return [(-math.inf if math.isnan(k) else k) for k in keys.tolist()]


def _distance(key, distance: str, n: int, exact: bool) -> float:
    if exact:
        return math.sqrt(float(key) / float(n)) if distance == "centered" else math.sqrt(float(key))
    return math.sqrt(key) if key > 0 else 0.0


def check_ties(ties: str) -> str:
    """``ties`` if it is one of :data:`gamdss.settings.reselection.TIES`, else ``ValueError``."""
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    return ties


def rise_tiebreak(o: int, a: int, annotated: Sequence[int], window: Sequence[int], ties: str) -> tuple[int, ...]:
    """Tie-break of rise pair ``(o, a)`` among pairs of equal distance: the larger tuple wins.

    ``nearest``: the smallest ``|o - n_o| + |a - n_a|``, then the smallest ``o``, then ``a``.
    ``first_inserted``: the earliest in the released loop's order over window
    ``(o_lo, o_hi, a_lo, a_hi, ...)``: ``(o_lo, a_hi)`` first, then every later onset in
    increasing order, each with its apexes from ``a_hi`` down, then onset ``o_lo`` with the
    apexes from ``a_hi - 1`` down. With the released windows ``o_lo`` and ``a_hi`` are the
    annotated onset and apex.
    """
    if ties == "nearest":
        return (-(abs(o - annotated[0]) + abs(a - annotated[1])), -o, -a)
    o_lo, a_hi = window[0], window[3]
    group = 0 if (o, a) == (o_lo, a_hi) else (2 if o == o_lo else 1)
    return (-group, -o, a - a_hi)


def fall_tiebreak(f: int, annotated_offset: int, window_hi: int, ties: str) -> tuple[int, ...]:
    """Tie-break of offset candidate ``f`` (before replacement by the apex) among candidates
    of equal distance, the larger tuple wins: ``nearest``: the smallest ``|f - n_f|``, then the
    smallest ``f`` (``f`` here already replaced); ``first_inserted``: the first in the released
    loop's order, from the window's last offset down."""
    if ties == "nearest":
        return (-abs(f - annotated_offset), -f)
    return (-(window_hi - f),)


def reselect_windows(
    packed: PackedClips,
    annotations: torch.Tensor,
    windows: torch.Tensor,
    *,
    distance: str = "l2",
    return_table: bool = False,
    ties: str = "nearest",
) -> Reselection:
    """Reference of :func:`gamdss.op.ops.reselect_windows` (windows are trusted as valid);
    ``ties`` as in the module docstring."""
    check_distance(distance, packed.frames.dtype)
    check_ties(ties)
    frames = packed.frames
    exact = frames.dtype == torch.uint8
    n_el = frames[0].numel() if frames.shape[0] else 0
    ann = annotations.to("cpu", torch.int64).tolist()
    win = windows.to("cpu", torch.int64).tolist()
    b_count = packed.batch_size
    size_o = max((w[1] - w[0] + 1 for w in win), default=0)
    size_a = max((w[3] - w[2] + 1 for w in win), default=0)
    size_f = max((w[5] - w[4] + 1 for w in win), default=0)
    rise_t = torch.full((b_count, size_o, size_a), math.nan, dtype=torch.float64)
    fall_t = torch.full((b_count, size_f), math.nan, dtype=torch.float64)
    out: dict[str, list] = {k: [] for k in ("o", "a", "f", "rd", "fd")}
    for b in range(b_count):
        s = int(packed.starts[b])
        n_o, n_a, n_f = ann[b]
        o_lo, o_hi, a_lo, a_hi, f_lo, f_hi = win[b]
        best = None  # ((key, tie-break), o, a)
        for o in range(o_lo, o_hi + 1):
            apexes = list(range(max(a_lo, o), a_hi + 1))
            if not apexes:
                continue
            x = _flat(frames, [s + o])[0]
            keys = _keys(x, _flat(frames, [s + a for a in apexes]), distance, first_is_x=False)
            for a, k in zip(apexes, keys):
                rise_t[b, o - o_lo, a - a_lo] = _distance(k, distance, n_el, exact)
                rank = (k, rise_tiebreak(o, a, ann[b], win[b], ties))
                if best is None or rank > best[0]:
                    best = (rank, o, a)
        assert best is not None  # the annotated pair is always a candidate
        (key_r, _), o_star, a_star = best
        # Offsets before the chosen apex are replaced by it.
        window_f = list(range(f_lo, f_hi + 1))
        offsets = [max(f, a_star) for f in window_f]
        x = _flat(frames, [s + a_star])[0]
        keys = _keys(x, _flat(frames, [s + f for f in offsets]), distance, first_is_x=True)
        best_f = None  # ((key, tie-break), offset)
        for k_idx, (f, f_eff, k) in enumerate(zip(window_f, offsets, keys)):
            fall_t[b, k_idx] = _distance(k, distance, n_el, exact)
            rank = (k, fall_tiebreak(f_eff if ties == "nearest" else f, n_f, f_hi, ties))
            if best_f is None or rank > best_f[0]:
                best_f = (rank, f_eff)
        assert best_f is not None
        out["o"].append(o_star)
        out["a"].append(a_star)
        out["f"].append(best_f[1])
        out["rd"].append(_distance(key_r, distance, n_el, exact))
        out["fd"].append(_distance(best_f[0][0], distance, n_el, exact))
    dev = frames.device
    idx = lambda v: torch.tensor(v, dtype=torch.int64, device=dev)  # noqa: E731
    val = lambda v: torch.tensor(v, dtype=torch.float64, device=dev)  # noqa: E731
    return Reselection(
        idx(out["o"]),
        idx(out["a"]),
        idx(out["f"]),
        val(out["rd"]),
        val(out["fd"]),
        windows.to("cpu", torch.int64),
        rise_t.to(dev) if return_table else None,
        fall_t.to(dev) if return_table else None,
    )


def reselect(
    clips,
    onset,
    apex,
    offset,
    *,
    lengths=None,
    lam_rise: float = 0.1,
    lam_fall: float = 0.1,
    window: str = "paper",
    distance: str = "l2",
    return_table: bool = False,
    clip_ids: Sequence[str] | None = None,
    ties: str = "nearest",
) -> Reselection:
    """Reference of :func:`gamdss.reselect` (same arguments, same result), and the released
    tie order with ``ties="first_inserted"`` (module docstring)."""
    check_ties(ties)
    return reselect_with(
        functools.partial(reselect_windows, ties=ties),
        clips,
        onset,
        apex,
        offset,
        lengths=lengths,
        lam_rise=lam_rise,
        lam_fall=lam_fall,
        window=window,
        distance=distance,
        return_table=return_table,
        clip_ids=clip_ids,
    )


def frame_distances(packed: PackedClips, reference: torch.Tensor, *, distance: str = "l2") -> torch.Tensor:
    """Reference of :func:`gamdss.op.ops.frame_distances`."""
    check_distance(distance, packed.frames.dtype)
    frames = packed.frames
    exact = frames.dtype == torch.uint8
    lengths = packed.lengths.tolist()
    out = torch.full((packed.batch_size, max(lengths, default=0)), math.nan, dtype=torch.float64)
    n_el = frames[0].numel() if frames.shape[0] else 0
    for b, (s, t) in enumerate(zip(packed.starts.tolist(), lengths)):
        x = _flat(frames, [s + int(reference[b])])[0]
        keys = _keys(x, _flat(frames, list(range(s, s + t))), distance, first_is_x=False)
        out[b, :t] = torch.tensor([_distance(k, distance, n_el, exact) for k in keys], dtype=torch.float64)
    return out.to(frames.device)
