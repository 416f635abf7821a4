"""Reading annotation spreadsheets (.xlsx, .xls, .csv) into rows of cells.

Datasets distribute their annotations with quirks: a notes block above the header (SAMM),
no header at all (CAS(ME)^2), empty ``Unnamed`` columns (CASME, CASME II), several sheets of
which one holds the labels (CAS(ME)^3). This module finds the header row by its content,
normalises column names (case, spaces and punctuation do not matter) and returns every
data row with its spreadsheet row number (1-based, as a spreadsheet program shows it).
"""

from __future__ import annotations

import csv
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: How many rows from the top of a sheet are searched for the header row.
HEADER_SEARCH_ROWS = 60


class TableError(ValueError):
    """An annotation file that cannot be read as a table."""


def normalise_name(name: Any) -> str:
    """Column name without case, spaces or punctuation: ``'Onset Frame'`` -> ``'onsetframe'``."""
    if name is None:
        return ""
    return re.sub(r"[^0-9a-z]+", "", str(name).strip().lower())


def is_ignored_column(name: Any) -> bool:
    """Empty header cells and pandas-style ``Unnamed: 2`` columns carry no data name."""
    norm = normalise_name(name)
    return norm == "" or re.fullmatch(r"unnamed\d*", norm) is not None


@dataclass(frozen=True)
class TableRow:
    """One data row. ``number``: 1-based spreadsheet row; ``cells``: field -> raw cell
    value (``int``, ``float``, ``str`` or ``None``)."""

    number: int
    cells: Mapping[str, Any]

    def is_empty(self) -> bool:
        return all(v is None or (isinstance(v, str) and not v.strip()) for v in self.cells.values())


@dataclass
class Table:
    """Rows of one sheet, keyed by field name.

    ``header_row``: 1-based row number of the header (``None`` for a headerless sheet);
    ``columns``: field -> the column's name as written in the file.
    """

    path: Path
    sheet: str | None
    header_row: int | None
    columns: dict[str, str]
    rows: list[TableRow]


def _clean_cell(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        value = value.strip()
        return value if value else None
    return value


_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def not_a_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file (``'does not exist'``, ``'is a folder, not a
    file'``, ``'is not a regular file (a FIFO)'``...), or ``None`` for a regular file. Uses
    ``stat`` only: never opens ``path`` (opening a FIFO for reading blocks)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "does not exist"
    except PermissionError:
        return "cannot be read: permission denied"
    except OSError as exc:
        return f"cannot be read: {(exc.strerror or type(exc).__name__).lower()}"
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    kind = next((name for test, name in _SPECIAL_FILES if test(st.st_mode)), "a special file")
    return f"is not a regular file ({kind})"


def read_sheets(path: str | Path) -> dict[str, list[list[Any]]]:
    """All sheets of a workbook (or the one table of a CSV, under the name ``''``) as lists
    of rows of cleaned cells; row ``i`` of a list is spreadsheet row ``i + 1``.

    Raises:
        TableError: ``path`` is not a regular file (missing, a folder, a FIFO...: checked
            without opening it) or cannot be read as a table.
    """
    path = Path(path)
    problem = not_a_file(path)
    if problem is not None:
        raise TableError(f"annotation file {path} {problem}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            import openpyxl

            wb = openpyxl.load_workbook(path, data_only=True)
            try:
                return {
                    ws.title: [
                        [_clean_cell(v) for v in row]
                        for row in ws.iter_rows(min_row=1, max_row=ws.max_row, values_only=True)
                    ]
                    for ws in wb.worksheets
                }
            finally:
                wb.close()
        if suffix == ".xls":
            import xlrd

            book = xlrd.open_workbook(str(path))
            sheets = {}
            for sh in book.sheets():
                rows = []
                for r in range(sh.nrows):
                    cells = []
                    for c in range(sh.ncols):
                        cell = sh.cell(r, c)
                        cells.append(
                            None if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK) else _clean_cell(cell.value)
                        )
                    rows.append(cells)
                sheets[sh.name] = rows
            return sheets
        if suffix in (".csv", ".txt"):
            with open(path, newline="", encoding="utf-8-sig") as f:
                return {"": [[_clean_cell(v) for v in row] for row in csv.reader(f)]}
    except TableError:
        raise
    except Exception as exc:  # the libraries raise many kinds of errors for bad files
        raise TableError(f"cannot read annotation file {path}: {type(exc).__name__}: {exc}") from exc
    raise TableError(f"annotation file {path}: unsupported type {suffix!r} (expected .xlsx, .xls or .csv)")


def _match_header(
    row: Sequence[Any], aliases: Mapping[str, Sequence[str]], required: Sequence[str]
) -> dict[str, int] | None:
    """Column index of every field whose alias appears in ``row``; ``None`` unless all
    ``required`` fields are found."""
    found: dict[str, int] = {}
    for idx, cell in enumerate(row):
        if is_ignored_column(cell):
            continue
        norm = normalise_name(cell)
        for fld, names in aliases.items():
            if fld not in found and norm in names:
                found[fld] = idx
                break
    return found if all(f in found for f in required) else None


def read_table(
    path: str | Path,
    aliases: Mapping[str, Sequence[str]],
    required: Sequence[str],
    *,
    sheets: Sequence[str] = (),
    headerless: Sequence[str] | None = None,
    all_sheets: Mapping[str, list[list[Any]]] | None = None,
) -> Table:
    """Read the annotation table of ``path``.

    Args:
        aliases: field -> accepted column names, already normalised (see :func:`normalise_name`).
        required: fields the header row must contain; the header is the first row (within the
            first :data:`HEADER_SEARCH_ROWS`) holding all of them.
        sheets: preferred sheet names (case-insensitive), tried first; other sheets follow in
            workbook order.
        headerless: for sheets without any header row, the field of each column in order
            (``None`` entries are skipped); used when no sheet has a header row.
        all_sheets: the result of :func:`read_sheets` if already read.

    Raises:
        TableError: naming the file, the sheets looked at and the columns looked for.
    """
    path = Path(path)
    book = all_sheets if all_sheets is not None else read_sheets(path)
    preferred = [normalise_name(s) for s in sheets]
    order = sorted(
        book, key=lambda s: preferred.index(normalise_name(s)) if normalise_name(s) in preferred else len(preferred)
    )
    for sheet in order:
        rows = book[sheet]
        for r, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
            found = _match_header(row, aliases, required)
            if found is None:
                continue
            columns = {fld: str(row[i]) for fld, i in found.items()}
            data = []
            for k in range(r + 1, len(rows)):
                cells = rows[k]
                data.append(TableRow(k + 1, {fld: (cells[i] if i < len(cells) else None) for fld, i in found.items()}))
            return Table(path, sheet or None, r + 1, columns, data)
    if headerless is not None:
        named = [s for s in order if normalise_name(s) in preferred]
        for sheet in named or order:
            rows = book[sheet]
            if not any(any(c is not None for c in row) for row in rows):
                continue
            data = []
            for k, cells in enumerate(rows):
                data.append(
                    TableRow(
                        k + 1,
                        {
                            fld: (cells[i] if i < len(cells) else None)
                            for i, fld in enumerate(headerless)
                            if fld is not None
                        },
                    )
                )
            return Table(
                path, sheet or None, None, {fld: f"column {i + 1}" for i, fld in enumerate(headerless) if fld}, data
            )
    wanted = ", ".join(f"{fld} (one of {sorted(aliases[fld])})" for fld in required)
    raise TableError(
        f"annotation file {path}: no header row with the columns {wanted} in the first "
        f"{HEADER_SEARCH_ROWS} rows of sheets {list(book)}"
    )
