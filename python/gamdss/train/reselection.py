"""The reselected keyframes a training run uses, read the way the audit reads them.

Either from ``gamdss reselect`` outputs (``reselection.files`` of the config: one
``reselection.csv`` per cache, checked against its cache, with the settings recorded beside
it), or computed here with the function ``gamdss reselect`` runs
(:func:`gamdss.reselection.run.reselect_cache`) and the preset and overrides of the config.
Either way the run folder gets a ``reselection.csv`` in the one column scheme of
:mod:`gamdss.data.reselection_files` (plus a ``cache`` column naming the cache's position in
``data.caches``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gamdss.data.cache import FrameCache
from gamdss.data.reselection_files import check_against_cache, load_reselection, recorded_settings, reselection_rows
from gamdss.data.reselection_record import ClipReselection
from gamdss.reselection.run import reselect_cache
from gamdss.settings.reselection import ReselectionSettings
from gamdss.train.config import TrainConfig

Keyframes = tuple[int, int, int]


class ReselectionSourceError(ValueError):
    """A ``reselection.files`` entry cannot be used (the message names the file and why)."""


@dataclass
class RunKeyframes:
    """``table``: (cache index, clip id) -> reselected (onset, apex, offset), clip-relative
    indices; ``rows``: the run's ``reselection.csv`` rows; ``settings``: what made them;
    ``sources``: per cache, the file read or ``"computed"``."""

    table: dict[tuple[int, str], Keyframes] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    settings: ReselectionSettings | None = None
    sources: list[str] = field(default_factory=list)


def _read_file(path: Path, cache: FrameCache) -> tuple[list[ClipReselection], ReselectionSettings]:
    if not path.is_file():
        raise ReselectionSourceError(f"reselection.files: {path} does not exist (run `gamdss reselect` first)")
    try:
        results = load_reselection(path)
        check_against_cache(results, cache, str(path))
        settings = recorded_settings(path)
    except ValueError as exc:
        raise ReselectionSourceError(f"reselection.files: {exc}") from None
    if settings is None:
        raise ReselectionSourceError(f"reselection.files: {path} records no settings (no settings.yaml, no columns)")
    missing = [e.clip_id for e in cache.entries if e.clip_id not in {r.clip_id for r in results}]
    if missing:
        raise ReselectionSourceError(
            f"reselection.files: {path} has no row for {len(missing)} clip(s) of the cache {cache.root}, "
            f"e.g. {missing[0]!r} (reselect the whole cache)"
        )
    return results, settings


def _warn_if_config_differs(cfg: TrainConfig) -> None:
    """One line on stderr when the config's own reselection settings differ from those the
    files record: the files' settings are used, and saying so is better than silence."""
    try:
        recorded = recorded_settings(cfg.reselection.files[0])
        asked = cfg.reselection.settings()
    except (OSError, ValueError):
        return  # _read_file reports unreadable files with the file's name
    if recorded is not None and recorded != asked:
        print(
            f"warning: reselection.files: {cfg.reselection.files[0]} was made with {recorded.describe()}; "
            f"the config's reselection settings ({asked.describe()}) are not used",
            file=sys.stderr,
        )


def run_keyframes(
    cfg: TrainConfig, caches: Sequence[FrameCache], device: str = "cpu", progress: bool = True
) -> RunKeyframes:
    """The reselected keyframes of every clip of ``caches`` (see the module doc).

    Raises :class:`ReselectionSourceError` when ``reselection.files`` does not give one file
    per cache, a file is missing or belongs to another cache, or the files were made with
    different settings.
    """
    files = cfg.reselection.files
    if files and len(files) != len(caches):
        raise ReselectionSourceError(
            f"reselection.files gives {len(files)} file(s) for {len(caches)} cache(s); give one "
            f"reselection.csv of `gamdss reselect` per data.caches entry, in the same order"
        )
    out = RunKeyframes()
    if files:
        _warn_if_config_differs(cfg)
    for ci, cache in enumerate(caches):
        if files:
            results, settings = _read_file(Path(files[ci]), cache)
            out.sources.append(str(files[ci]))
        else:
            settings = cfg.reselection.settings()
            results = reselect_cache(cache, settings, device=device, progress=progress)
            out.sources.append("computed")
        if out.settings is not None and settings != out.settings:
            raise ReselectionSourceError(
                f"reselection.files were made with different settings: {out.settings.describe()} vs "
                f"{settings.describe()}"
            )
        out.settings = settings
        for r in results:
            out.table[(ci, r.clip_id)] = tuple(r.reselected)  # type: ignore[assignment]
        out.rows += reselection_rows(results, cache, settings, cache_name=str(ci))
    return out
