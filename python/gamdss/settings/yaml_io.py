"""The one way settings are saved and loaded: typed dataclasses to and from YAML.

Every settings object of the toolkit (training configs, reselection, audit, preprocessing,
synthetic data, benchmarks) is a dataclass; these functions turn one into plain values and
YAML text and back. Loading is typed: each value is checked against its field's annotation
(``bool``, ``int``, ``float``, ``str``, ``Path``, ``list[...]``, ``tuple[...]``, ``dict``,
``X | None``, nested dataclasses) and converted where that is safe (an int where a float is
expected; a list where a tuple is expected; the text ``1e-3``, which YAML 1.1 reads as a
string, where a number is expected). Unknown keys and values of the wrong type raise
``ValueError`` naming the source, the dotted key and what was expected; the dataclass's own
``__post_init__`` checks ranges and its errors are prefixed with the source too.
:class:`YamlDataclass` bundles the functions as methods.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from gamdss.util import atomic

T = TypeVar("T")


def to_dict(obj: Any) -> dict[str, Any]:
    """The fields of dataclass ``obj`` as plain values (nested dataclasses as mappings, tuples
    as lists, paths as text), in field order."""
    return _plain(dataclasses.asdict(obj))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class _KeyError(ValueError):
    """A problem with one key (the message starts with its dotted name)."""


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or cls.__name__
    if not isinstance(data, Mapping):
        raise _KeyError(f"{where} must be a mapping, got {type(data).__name__} {data!r}")
    types_ = _field_types(cls)
    unknown = [k for k in data if k not in types_]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise _KeyError(f"unknown key {prefix}{unknown[0]!s}{more} (known keys in {where}: {', '.join(types_)})")
    return cls(**{k: _convert(types_[k], v, f"{prefix}{k}") for k, v in data.items()})


def _convert(tp: Any, value: Any, key: str) -> Any:
    """``value`` read from YAML as type ``tp`` (see the module doc); ``_KeyError`` naming ``key``."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else _build(tp, value, key + ".")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for i, option in enumerate(options):
            try:
                return _convert(option, value, key)
            except _KeyError:
                if i == len(options) - 1:
                    raise
    if origin is list or origin is tuple:
        if not isinstance(value, (list, tuple)):
            if origin is list and args == (str,) and isinstance(value, str):
                return [value]
            raise _KeyError(f"{key} must be a list, got {value!r}")
        if origin is list:
            return [_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise _KeyError(f"{key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _KeyError(f"{key} must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise _KeyError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _KeyError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _KeyError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _KeyError(f"{key} must be a string, got {value!r}")
        return str(value)
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise _KeyError(f"{key} must be a path, got {value!r}")
        return Path(value)
    return value  # Any, Literal, ...: the dataclass checks it


def from_dict(cls: type[T], data: Any, source: str | None = None) -> T:
    """A ``cls`` from a mapping of its fields (nested dataclasses from nested mappings; missing
    fields take their defaults). Raises ``ValueError`` starting with ``source`` (when given):
    unknown keys, values of the wrong type, or what ``cls.__post_init__`` refuses."""
    where = f"{source}: " if source else ""
    try:
        return _build(cls, data, "")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}{exc}") from None


def dump(obj: Any) -> str:
    """YAML text of dataclass ``obj`` (:func:`to_dict`, fields in declaration order)."""
    return yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=False)


def save(obj: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write dataclass ``obj`` as YAML to ``path`` atomically; refuses to replace an existing
    ``path`` unless ``overwrite``. Returns ``path``."""
    return atomic.write_text(atomic.refuse_existing(path, overwrite), dump(obj))


def read_mapping(
    path: str | Path, what: str = "settings", *, empty: bool = True, label: str | None = None, hint: str = ""
) -> dict[str, Any]:
    """The YAML mapping in ``path``; ``ValueError`` naming the file (as ``label``, default the
    path) when it is not YAML or holds something else than a mapping (``what``: what the
    mapping should hold; ``hint``: what to do instead, both for the message). An empty file
    (or one of comments only) gives ``{}``, or with ``empty=False`` is refused."""
    where = label or str(path)
    instead = f" ({hint})" if hint else ""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{where}: not valid YAML ({exc})") from None
    if data is None:
        if empty:
            return {}
        raise ValueError(f"{where}: empty config file{instead}")
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping of {what}, got {type(data).__name__}{instead}")
    return data


def load(cls: type[T], path: str | Path) -> T:
    """A ``cls`` from the YAML file ``path`` (missing fields take their defaults); unknown or
    invalid fields raise ``ValueError`` naming the file."""
    return from_dict(cls, read_mapping(path, f"{cls.__name__} fields"), str(path))


class YamlDataclass:
    """Mixin for dataclass configs: ``replace``, ``to_dict``, ``from_dict``, ``save``, ``load``
    (the functions of this module as methods)."""

    def replace(self: T, **changes: Any) -> T:
        """A copy with ``changes`` applied (validated by ``__post_init__``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values (tuples as lists)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any], source: str | None = None) -> T:
        """An instance from a mapping of fields; unknown keys raise ``ValueError``."""
        return from_dict(cls, data, source)

    def to_yaml(self) -> str:
        """The YAML text :meth:`save` writes."""
        return dump(self)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write as YAML (atomically); refuses to replace ``path`` unless ``overwrite``."""
        return save(self, path, overwrite=overwrite)

    @classmethod
    def load(cls: type[T], path: str | Path) -> T:
        """Read a YAML file written by :meth:`save` (missing fields take their defaults)."""
        return load(cls, path)
