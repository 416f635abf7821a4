"""Fold seeds, so a fold's randomness depends only on (run seed, subject)."""

from __future__ import annotations

from gamdss.util.seeds import derive_seed


def fold_seed(seed: int, subject: str) -> int:
    """Seed of the fold that holds out ``subject`` in a run with base ``seed``."""
    return derive_seed("fold", int(seed), str(subject))
