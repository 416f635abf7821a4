"""What the op is compared with, all with the ``paper`` window semantics and plain L2:

- ``careful``: a careful plain-PyTorch implementation of the kind a user would write. Per
  clip: the onset and apex candidate frames as float32, the pairwise
  ``torch.linalg.vector_norm`` of their differences by broadcasting, argmax; then the offset
  search from the chosen apex the same way.
- ``released_loop``: a per-pair Python loop in the style of the authors' released code (see
  released-code-behaviour.md section 1): every candidate pair, in the released insertion
  order, gets ``np.linalg.norm`` of the difference of its two frames, stored in a dict; the
  pair is ``max(dict, key=dict.get)``. Unlike the released code, uint8 frames are cast to
  float32 before the subtraction (no mod-256 wrap), and the windows are the paper's, so it
  selects the same keyframes as the op.

Both compute their own search ranges from the annotations and lambda (``R = int(lam * span)``,
windows clamped into ``[0, T-1]``); they do not reuse the op's window tensor. Both break
exact ties their own way (first maximum), not by the contract's closest-to-annotation rule;
on random frames there are no ties.

``METHODS`` maps each method name (including ``op`` and the pure-PyTorch ``reference``) to a
runner ``f(case) -> Selection``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

import gamdss.op.ops
import gamdss.op.reference


class Selection(NamedTuple):
    """Selected keyframes, int64 CPU ``[B]`` each."""

    onset: torch.Tensor
    apex: torch.Tensor
    offset: torch.Tensor

    @classmethod
    def from_lists(cls, onset, apex, offset) -> Selection:
        t = lambda v: torch.as_tensor(v, dtype=torch.int64).cpu()  # noqa: E731
        return cls(t(onset), t(apex), t(offset))

    def equals(self, other: Selection) -> bool:
        return all(torch.equal(a.cpu(), b.cpu()) for a, b in zip(self, other))

    def first_difference(self, other: Selection) -> str:
        for b in range(int(self.onset.shape[0])):
            mine = tuple(int(t[b]) for t in self)
            theirs = tuple(int(t[b]) for t in other)
            if mine != theirs:
                return f"clip {b}: (onset, apex, offset) {mine} != {theirs}"
        return "no difference"


def paper_windows(n_o: int, n_a: int, n_f: int, length: int, lam_rise: float, lam_fall: float):
    """Paper windows of one clip as Python ints: ((o_lo, o_hi), (a_lo, a_hi), (f_lo, f_hi))."""
    r = int(lam_rise * (n_a - n_o))
    rf = int(lam_fall * (n_f - n_a))
    last = length - 1
    clamp = lambda v: min(max(v, 0), last)  # noqa: E731
    return ((clamp(n_o), clamp(n_o + r)), (clamp(n_a - r), clamp(n_a + r)), (clamp(n_f), clamp(n_f + rf)))


# --------------------------------------------------------------------------------------
# careful plain PyTorch
# --------------------------------------------------------------------------------------


def careful_reselect(x: torch.Tensor, lengths, annotations, lam_rise: float, lam_fall: float) -> Selection:
    """``x``: padded frames ``[B, T, ...]`` (any dtype, any device); ``lengths`` ``[B]``;
    ``annotations`` ``[B, 3]``."""
    onsets, apexes, offsets = [], [], []
    for b, ((n_o, n_a, n_f), length) in enumerate(zip(annotations.tolist(), lengths.tolist())):
        (o_lo, o_hi), (a_lo, a_hi), (f_lo, f_hi) = paper_windows(n_o, n_a, n_f, length, lam_rise, lam_fall)
        clip = x[b]
        fo = clip[o_lo : o_hi + 1].reshape(o_hi - o_lo + 1, -1).float()
        fa = clip[a_lo : a_hi + 1].reshape(a_hi - a_lo + 1, -1).float()
        d = torch.linalg.vector_norm(fo[:, None, :] - fa[None, :, :], dim=-1)  # [|O|, |A|]
        o_idx = torch.arange(o_lo, o_hi + 1, device=x.device)
        a_idx = torch.arange(a_lo, a_hi + 1, device=x.device)
        d = d.masked_fill(o_idx[:, None] > a_idx[None, :], -torch.inf)  # pairs need o <= a
        k = int(torch.argmax(d))
        o_star, a_star = o_lo + k // fa.shape[0], a_lo + k % fa.shape[0]
        # Offsets before the chosen apex are replaced by it.
        cand = torch.arange(f_lo, f_hi + 1, device=x.device).clamp_min(a_star)
        ff = clip[cand].reshape(cand.shape[0], -1).float()
        df = torch.linalg.vector_norm(ff - clip[a_star].reshape(1, -1).float(), dim=-1)
        f_star = int(cand[int(torch.argmax(df))])
        onsets.append(o_star)
        apexes.append(a_star)
        offsets.append(f_star)
    return Selection.from_lists(onsets, apexes, offsets)


# --------------------------------------------------------------------------------------
# per-pair loop in the style of the released code
# --------------------------------------------------------------------------------------


def _released_order(centre: int, lo: int, hi: int) -> list[int]:
    """Candidates in the released code's order: the annotation, then earlier frames moving
    away from it; the paper windows' later frames (absent in the released code) come last."""
    return [centre] + list(range(centre - 1, lo - 1, -1)) + list(range(centre + 1, hi + 1))


def released_rise_pairs(n_o, n_a, o_win, a_win) -> list[tuple[int, int]]:
    """(onset, apex) pairs in the released insertion order, generalised to the paper windows:
    (n_o, n_a) first; then for each later onset n_o+i its apexes (n_a, n_a-1, ..., then
    n_a+1, ...); the annotated onset's other apexes last. Only pairs with o <= a."""
    (o_lo, o_hi), (a_lo, a_hi) = o_win, a_win
    apex_order = _released_order(n_a, a_lo, a_hi)
    pairs = [(n_o, n_a)]
    for o in list(range(max(o_lo, n_o + 1), o_hi + 1)) + list(range(o_lo, min(n_o, o_hi + 1))):
        pairs.extend((o, a) for a in apex_order if a >= o)
    pairs.extend((n_o, a) for a in apex_order[1:] if a >= n_o)
    return pairs


def released_loop_reselect(x: torch.Tensor, lengths, annotations, lam_rise: float, lam_fall: float) -> Selection:
    """``x``: padded CPU frames ``[B, T, ...]``, uint8 or float32 (read through numpy)."""
    frames = x.detach().cpu().numpy()
    as_f32 = frames.dtype != np.float32
    onsets, apexes, offsets = [], [], []
    for b, ((n_o, n_a, n_f), length) in enumerate(zip(annotations.tolist(), lengths.tolist())):
        o_win, a_win, (f_lo, f_hi) = paper_windows(n_o, n_a, n_f, length, lam_rise, lam_fall)
        clip = frames[b]

        def frame(i, clip=clip):
            return clip[i].astype(np.float32) if as_f32 else clip[i]

        scores = {}
        for o, a in released_rise_pairs(n_o, n_a, o_win, a_win):
            scores[(o, a)] = np.linalg.norm(frame(a) - frame(o))
        o_star, a_star = max(scores, key=scores.get)
        fall = {}
        for f in _released_order(n_f, f_lo, f_hi):
            f = max(f, a_star)  # offsets before the chosen apex are replaced by it
            fall[(a_star, f)] = np.linalg.norm(frame(a_star) - frame(f))
        f_star = max(fall, key=fall.get)[1]
        onsets.append(o_star)
        apexes.append(a_star)
        offsets.append(f_star)
    return Selection.from_lists(onsets, apexes, offsets)


# --------------------------------------------------------------------------------------
# runners over a workloads.Case
# --------------------------------------------------------------------------------------


def _from_result(r) -> Selection:
    return Selection(r.onset.cpu(), r.apex.cpu(), r.offset.cpu())


def run_op(case) -> Selection:
    return _from_result(gamdss.op.ops.reselect_windows(case.packed, case.ann, case.win, distance="l2"))


def run_reference(case) -> Selection:
    return _from_result(gamdss.op.reference.reselect_windows(case.packed, case.ann, case.win, distance="l2"))


def run_careful(case) -> Selection:
    return careful_reselect(case.x, case.packed.lengths, case.ann, case.lam, case.lam)


def run_released_loop(case) -> Selection:
    return released_loop_reselect(case.x, case.packed.lengths, case.ann, case.lam, case.lam)


def check_same(selection: Selection, expected: Selection, method: str, label: str) -> None:
    """Raise AssertionError unless ``method`` selected the op's keyframes on case ``label``."""
    if not selection.equals(expected):
        raise AssertionError(
            f"{method} selected other keyframes than the op on {label}: {selection.first_difference(expected)}"
        )


METHODS: dict[str, Callable] = {
    "op": run_op,
    "reference": run_reference,
    "careful": run_careful,
    "released_loop": run_released_loop,
}
