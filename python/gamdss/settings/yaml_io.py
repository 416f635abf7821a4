"""Dataclass configs that save to and load from YAML.

Functions work on any dataclass (instance or class); :class:`YamlDataclass` bundles them as
methods. Tuples become YAML lists on saving; the dataclass's ``__post_init__`` is where lists
read back become tuples again and values are checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(obj: Any) -> dict[str, Any]:
    """The fields of dataclass ``obj`` as plain values (tuples as lists), in field order."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(obj).items()}


def check_fields(cls: type, data: Mapping[str, Any], source: str | None = None) -> None:
    """Raise ``ValueError`` naming ``source`` (if given) and ``cls`` when ``data`` has keys that
    are not fields of dataclass ``cls``."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        where = f"{source}: " if source else ""
        raise ValueError(f"{where}{cls.__name__}: unknown fields {unknown}; expected some of {known}")


def from_dict(cls: type[T], data: Mapping[str, Any], source: str | None = None) -> T:
    """``cls(**data)`` after :func:`check_fields`; missing fields take their defaults."""
    check_fields(cls, data, source)
    return cls(**data)


def dump(obj: Any) -> str:
    """YAML text of dataclass ``obj`` (:func:`to_dict`, fields in declaration order)."""
    import yaml

    return yaml.safe_dump(to_dict(obj), sort_keys=False)


def save(obj: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write dataclass ``obj`` as YAML to ``path`` atomically; refuses to replace an existing
    ``path`` unless ``overwrite``. Returns ``path``."""
    from gamdss.util import atomic

    return atomic.write_text(atomic.refuse_existing(path, overwrite), dump(obj))


def read_mapping(path: str | Path, what: str = "settings") -> dict[str, Any]:
    """The YAML mapping in ``path`` (an empty file gives ``{}``); ``ValueError`` naming the file
    when it holds something else (``what``: what the mapping should hold, for the message)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of {what}, got {type(data).__name__}")
    return data


def load(cls: type[T], path: str | Path) -> T:
    """A ``cls`` from the YAML file ``path`` (missing fields take their defaults); unknown or
    invalid fields raise ``ValueError`` naming the file."""
    data = read_mapping(path, f"{cls.__name__} fields")
    try:
        return from_dict(cls, data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


class YamlDataclass:
    """Mixin for dataclass configs: ``replace``, ``to_dict``, ``from_dict``, ``save``, ``load``."""

    def replace(self: T, **changes: Any) -> T:
        """A copy with ``changes`` applied (validated by ``__post_init__``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values (tuples as lists)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """An instance from a mapping of fields; unknown keys raise ``ValueError``."""
        return from_dict(cls, data)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write as YAML (atomically); refuses to replace ``path`` unless ``overwrite``."""
        return save(self, path, overwrite=overwrite)

    @classmethod
    def load(cls: type[T], path: str | Path) -> T:
        """Read a YAML file written by :meth:`save` (missing fields take their defaults)."""
        return load(cls, path)
