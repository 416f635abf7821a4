"""Written, versioned corrections lists of the datasets' annotation files.

Each dataset has ``gamdss/data/corrections/<name>.yaml``::

    dataset: casme3
    version: 1
    corrections:
      - subject: spNO.216        # match key: subject + video + the field's value in the file
        video: d
        field: onset
        original: 3647
        corrected: 2647
        reason: onset after offset 2694; digit typo
        reference: meb (tvaranka/meb) sets 2647
    known_not_applied:            # documented, not applied (no reliable match key or value)
      - description: ...

An entry applies to a row only when subject, video *and* the field's current value all match,
never by row index (row order differs between file versions), so a file that has already been
fixed is left alone. An optional ``onset`` key narrows the match when one video holds several
expressions. The same format is accepted for a user's own list.

``subject`` and ``video`` are names: quote them when they look like numbers
(``video: '006_1_3'``; unquoted, YAML 1.1 reads ``006_1_3`` as the octal number 395). Files
read here keep the text of an unquoted integer as written, so ``subject: 006`` is ``'006'``;
a ``video`` that YAML turned into any other non-text value (float, date, bool) is refused
with an error naming the entry. The subject is then normalised like the annotation file's
subject cells (CASME II ``1`` = ``sub01``). Entries that match no row are reported
(:class:`UnmatchedCorrection`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .tables import not_a_file

FIELDS = ("onset", "apex", "offset", "emotion", "aus")


class _WrittenInt(int):
    """An integer read from YAML that remembers its text as written (``006_1_3`` -> 395)."""

    text: str


class _Loader(yaml.SafeLoader):
    """Safe YAML loader whose integers keep their written text (see :class:`_WrittenInt`)."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    value = _WrittenInt(yaml.SafeLoader.construct_yaml_int(loader, node))
    value.text = str(node.value)
    return value


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str) -> Any:
    """YAML as :func:`yaml.safe_load` reads it, except that integers remember their text."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class CorrectionEntry:
    """One entry of a corrections list: in the row of ``subject`` and ``video`` whose ``field``
    (one of :data:`FIELDS`) holds ``original``, write ``corrected``. ``reason``: why (with
    the entry's ``reference`` appended, if any); ``source``: the list's name and version
    (``casme3-corrections v1``); ``onset``: when set, only the row with that onset matches."""

    subject: str
    video: str
    field: str
    original: Any
    corrected: Any
    reason: str
    source: str
    onset: int | None = None


@dataclass(frozen=True)
class UnmatchedCorrection:
    """An entry of a corrections list that changed no row, and why (``reason``)."""

    entry: CorrectionEntry
    reason: str


def _name(value: Any, key: str, origin: str, i: int, *, allow_int: bool) -> str:
    """The ``subject``/``video`` of entry ``i`` as text."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, _WrittenInt):
        return value.text
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(
        f"corrections list {origin}: entry {i + 1} has {key} {value!r} "
        f"({type(value).__name__}), which YAML read from an unquoted value; quote it "
        f"(e.g. {key}: '006_1_3') so that it is read as written"
    )


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, _WrittenInt) else value


def same_value(a: Any, b: Any) -> bool:
    """Equal as integers when both read as integers, else equal as text ignoring case."""
    try:
        return int(str(a).strip()) == int(str(b).strip()) and float(str(a)) == float(str(b))
    except (TypeError, ValueError):
        return str(a).strip().lower() == str(b).strip().lower()


def parse_corrections(data: Any, origin: str) -> list[CorrectionEntry]:
    """Entries of a corrections list already loaded from YAML; ``origin`` names it in errors."""
    if not isinstance(data, dict) or "corrections" not in data:
        raise ValueError(f"corrections list {origin}: expected a mapping with a 'corrections' list")
    version = data.get("version", "?")
    name = data.get("dataset", Path(origin).stem)
    source = f"{name}-corrections v{version}"
    out = []
    for i, e in enumerate(data.get("corrections") or []):
        if not isinstance(e, dict):
            raise ValueError(f"corrections list {origin}: entry {i + 1} is not a mapping")
        missing = [k for k in ("subject", "video", "field", "original", "corrected", "reason") if k not in e]
        if missing:
            raise ValueError(f"corrections list {origin}: entry {i + 1} lacks {missing}")
        if e["field"] not in FIELDS:
            raise ValueError(
                f"corrections list {origin}: entry {i + 1} has field {e['field']!r}; expected one of {FIELDS}"
            )
        reason = str(e["reason"])
        if e.get("reference"):
            reason = f"{reason} ({e['reference']})"
        subject = _name(e["subject"], "subject", origin, i, allow_int=True)
        video = _name(e["video"], "video", origin, i, allow_int=False)
        out.append(
            CorrectionEntry(
                subject,
                video,
                e["field"],
                _plain(e["original"]),
                _plain(e["corrected"]),
                reason,
                source,
                int(e["onset"]) if e.get("onset") is not None else None,
            )
        )
    return out


def _dataset_names() -> set[str]:
    """The datasets' names: those of the shipped lists (one per dataset)."""
    folder = resources.files("gamdss.data").joinpath("corrections")
    return {f.name.removesuffix(".yaml") for f in folder.iterdir() if f.name.endswith(".yaml")}


def builtin_corrections(dataset: str) -> list[CorrectionEntry]:
    """The corrections list shipped with gamdss for ``dataset`` (empty if none)."""
    res = resources.files("gamdss.data").joinpath("corrections", f"{dataset}.yaml")
    if not res.is_file():
        return []
    return parse_corrections(load_yaml(res.read_text(encoding="utf-8")), f"gamdss/data/corrections/{dataset}.yaml")


def load_corrections_file(path: str | Path, dataset: str | None = None) -> list[CorrectionEntry]:
    """A user's corrections list in the same YAML format. With ``dataset``, a list whose
    ``dataset:`` names another of the datasets is a ``ValueError`` (it would match rows by
    chance); any other name (``dataset: mine``) only names the list."""
    path = Path(path)
    problem = not_a_file(path)  # stat only: opening a FIFO would block
    if problem is not None:
        raise FileNotFoundError(f"corrections list {path} {problem}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"corrections list {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    declared = str(data.get("dataset", "")).strip().lower() if isinstance(data, dict) else ""
    if dataset is not None and declared in _dataset_names() and declared != dataset.lower():
        raise ValueError(f"corrections list {path} is for dataset {declared}, not {dataset}")
    return parse_corrections(data, str(path))
