"""Subject-id helpers shared by the readers."""

from __future__ import annotations

import re
from typing import Any


def subject_number(value: Any, prefixes: tuple[str, ...] = ()) -> int:
    """The integer of a subject cell: ``1``, ``1.0``, ``'01'`` or a prefixed form such as
    ``'sub01'`` (prefixes matched case-insensitively).

    Raises:
        ValueError: the cell holds no subject number.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a subject number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    for p in prefixes:
        if text.lower().startswith(p.lower()):
            text = text[len(p) :]
            break
    if re.fullmatch(r"\d+(\.0*)?", text):
        return int(float(text))
    raise ValueError(f"{value!r} is not a subject number")
