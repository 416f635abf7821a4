"""Candidate windows of keyframe reselection (docs/reselection.md, "Ranges" and "Windows").

All indices are clip-relative, 0-based and inclusive. A window tensor is int64 ``[B, 6]``:
``(onset_lo, onset_hi, apex_lo, apex_hi, offset_lo, offset_hi)``.
"""

from __future__ import annotations

import torch

from gamdss.settings.reselection import WINDOWS as PRESETS  # the window presets


def search_ranges(
    onset: torch.Tensor, apex: torch.Tensor, offset: torch.Tensor, lam_rise: float, lam_fall: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``R_rise = int(lam_rise * (apex - onset))`` and ``R_fall = int(lam_fall * (offset - apex))``.

    The product is taken in IEEE double and truncated toward zero, exactly as Python's
    ``int()`` does, then capped at 2**62 (a range that long already reaches past any clip; a
    huge lambda would otherwise overflow int64). Inputs are int64 ``[B]``; outputs int64 ``[B]``.
    """

    def scaled(lam: float, span: torch.Tensor) -> torch.Tensor:
        return torch.trunc(float(lam) * span.to(torch.float64)).clamp(max=_RANGE_CAP).to(torch.int64)

    return scaled(lam_rise, apex - onset), scaled(lam_fall, offset - apex)


_RANGE_CAP = float(2**62)


def preset_windows(
    preset: str,
    onset: torch.Tensor,
    apex: torch.Tensor,
    offset: torch.Tensor,
    lengths: torch.Tensor,
    lam_rise: float = 0.1,
    lam_fall: float = 0.1,
) -> torch.Tensor:
    """Windows of a named preset, clamped into ``[0, T-1]``.

    ``paper``: O = [n_o, n_o+R], A = [n_a-R, n_a+R], F = [n_f, n_f+R_f] (the paper's Eq. 1-4).
    ``released``: O = [n_o, n_o+R], A = [n_a-R, n_a], F = [n_f-R_f, n_f] (the authors' code).
    ``symmetric``: O = [n_o-R, n_o+R], A = [n_a-R, n_a+R], F = [n_f-R_f, n_f+R_f].

    ``onset``, ``apex``, ``offset`` and ``lengths`` are int64 ``[B]`` (already validated);
    returns int64 ``[B, 6]``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown window preset {preset!r}; expected one of {PRESETS}")
    r, rf = search_ranges(onset, apex, offset, lam_rise, lam_fall)
    zero = torch.zeros_like(r)
    if preset == "paper":
        spans = (zero, r, -r, r, zero, rf)
    elif preset == "released":
        spans = (zero, r, -r, zero, -rf, zero)
    else:
        spans = (-r, r, -r, r, -rf, rf)
    centres = (onset, onset, apex, apex, offset, offset)
    windows = torch.stack([c + s for c, s in zip(centres, spans)], dim=1)
    last = (lengths - 1).unsqueeze(1)
    return torch.minimum(windows.clamp_min(0), last)
