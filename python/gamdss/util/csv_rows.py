"""The one CSV writer for tables of dict rows (results, reselection, t-SNE points, benchmarks)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gamdss.util import atomic


def _cell(value: Any, float_format: Callable[[float], str]) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return float_format(value)
    return str(value)


def rows_to_csv(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    float_format: Callable[[float], str] = repr,
) -> str:
    """CSV text (``\\n`` line ends) of dict rows.

    ``columns``: the header, in order (a row's other keys are an error); default: every key in
    first-seen order across the rows. Floats are written with ``float_format`` (default
    ``repr``, which reads back to the same float), None as an empty cell, anything else as
    ``str``; a row without a column's key leaves that cell empty.
    """
    if columns is None:
        columns = []
        for row in rows:
            columns += [c for c in row if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v, float_format) for k, v in row.items()})
    return buf.getvalue()


def write_csv(
    path: str | Path,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    float_format: Callable[[float], str] = repr,
) -> Path:
    """Write :func:`rows_to_csv` to ``path`` atomically (replacing it); returns ``path``."""
    return atomic.write_text(path, rows_to_csv(rows, columns, float_format=float_format))
