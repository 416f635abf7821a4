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
from dataclasses import dataclass, field
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
        """True when every cell is ``None`` or blank text."""
        return all(v is None or (isinstance(v, str) and not v.strip()) for v in self.cells.values())


@dataclass
class Table:
    """Rows of one sheet, keyed by field name.

    ``header_row``: 1-based row number of the header (``None`` for a headerless sheet);
    ``columns``: field -> the column's name as written in the file; ``indices``: field ->
    its 0-based column index.
    """

    path: Path
    sheet: str | None
    header_row: int | None
    columns: dict[str, str]
    rows: list[TableRow]
    indices: dict[str, int] = field(default_factory=dict)


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
            return Table(path, sheet or None, r + 1, columns, data, dict(found))
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
                path,
                sheet or None,
                None,
                {fld: f"column {i + 1}" for i, fld in enumerate(headerless) if fld},
                data,
                {fld: i for i, fld in enumerate(headerless) if fld},
            )
    wanted = ", ".join(f"{fld} (one of {sorted(aliases[fld])})" for fld in required)
    raise TableError(
        f"annotation file {path}: no header row with the columns {wanted} in the first "
        f"{HEADER_SEARCH_ROWS} rows of sheets {list(book)}"
    )


# ----- editing a file cell by cell -------------------------------------------------------------
@dataclass(frozen=True)
class TableEdit:
    """Changes to one annotation file for :func:`write_edited`; everything else is kept.

    ``sheet``: the annotation sheet (``None``: a CSV's one table); ``header_row``: its 1-based
    header row (``None``: headerless). ``cells``: ``(row, column)`` -> new value (1-based
    spreadsheet row, 0-based column). ``columns``: names of the columns to add on the right of
    the header row (a column of the same name, any case or punctuation, is reused);
    ``column_values``: row -> one value per name of ``columns`` (rows not listed stay empty).
    ``side_sheet``: ``(name, header, rows)`` of a sheet to write instead, for headerless files
    (replaces a sheet of that name, keeping its rows whose first cell is not among the new
    rows' first cells). ``sheet_name``: the sheet name a CSV's table gets when the file has
    to become a workbook (a headerless CSV with a ``side_sheet``).
    """

    sheet: str | None
    header_row: int | None
    cells: Mapping[tuple[int, int], Any]
    columns: Sequence[str] = ()
    column_values: Mapping[int, Sequence[Any]] = field(default_factory=dict)
    side_sheet: tuple[str, Sequence[str], Sequence[Sequence[Any]]] | None = None
    sheet_name: str = "Sheet1"


def edited_suffix(path: str | Path, needs_sheet: bool = False) -> str:
    """The suffix :func:`write_edited` writes for the source ``path``: ``.csv``/``.txt`` stay
    text unless a second sheet is needed (``needs_sheet``); everything else becomes ``.xlsx``."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in (".csv", ".txt") and not needs_sheet else ".xlsx"


def write_edited(source: str | Path, dest: str | Path, edit: TableEdit) -> Path:
    """Write ``source`` to ``dest`` with the changes of ``edit`` and nothing else changed:
    every sheet, row, column and cell of ``source`` (types included: a number stays a
    number, text stays text) in its place. Written atomically (:mod:`gamdss.util.atomic`).

    What cannot be kept exactly, by format (``dest`` has :func:`edited_suffix`):

    - ``.xlsx``/``.xlsm`` (openpyxl): cell values, types, styles, number formats, merged
      cells, column widths, comments and every sheet are kept. A formula is written as its
      last computed value (what pandas, openpyxl and gamdss's reader read; openpyxl cannot
      write a formula together with its value); a formula that has no stored value (a file
      written by a script) stays a formula. What openpyxl does not load is lost: images,
      charts, pivot tables, macros (an ``.xlsm`` becomes an ``.xlsx``).
    - ``.xls`` (read by xlrd, written as ``.xlsx``): every sheet and cell value (numbers,
      text, booleans, dates as dates, error cells as their text such as ``#N/A``); a number
      is an integer where it is whole (``.xls`` stores every number as a float). Formatting,
      merged cells, column widths, comments and formulas (their values are kept) are not.
    - ``.csv``/``.txt``: every cell's text, UTF-8 with the source's byte-order mark and line
      ending; quoting is the csv module's minimal quoting (a needlessly quoted cell loses its
      quotes, not its text). Rows from the header down are padded with empty cells to the
      new columns. A headerless CSV that needs a ``side_sheet`` is written as ``.xlsx``
      (its cells as text, the table on the sheet ``edit.sheet_name``).

    Raises:
        TableError: ``source`` cannot be read.
    """
    source, dest = Path(source), Path(dest)
    from gamdss.util import atomic

    problem = not_a_file(source)
    if problem is not None:
        raise TableError(f"annotation file {source} {problem}")
    suffix = source.suffix.lower()
    try:
        if edited_suffix(source, edit.side_sheet is not None) != ".xlsx":
            data = _edited_csv(source, edit)
            return atomic.write_bytes(dest, data)
        wb = _workbook_for_edit(source, edit.sheet_name)
    except TableError:
        raise
    except Exception as exc:  # the libraries raise many kinds of errors for bad files
        raise TableError(f"cannot read annotation file {source}: {type(exc).__name__}: {exc}") from exc
    sheet = edit.sheet if edit.sheet else (edit.sheet_name if suffix in (".csv", ".txt") else None)
    ws = wb[sheet] if sheet else wb.worksheets[0]
    for (r, c), value in edit.cells.items():
        _set_cell(ws.cell(row=r, column=c + 1), value)
    if edit.columns and edit.header_row is not None:
        hdr = edit.header_row
        names = {normalise_name(ws.cell(row=hdr, column=c).value): c for c in range(1, ws.max_column + 1)}
        names.pop("", None)
        last = max((c.column for row in ws.iter_rows() for c in row if c.value is not None), default=0)
        # the new columns go right of every merged range too (a merged cell cannot be written)
        last = max(last, max((m.max_col for m in ws.merged_cells.ranges), default=0))
        where = {}
        for name in edit.columns:
            if normalise_name(name) in names:
                where[name] = names[normalise_name(name)]
            else:
                last += 1
                where[name] = last
                _set_cell(ws.cell(row=hdr, column=last), name)
        for r, values in edit.column_values.items():
            for name, value in zip(edit.columns, values):
                _set_cell(ws.cell(row=r, column=where[name]), value)
    if edit.side_sheet is not None:
        _write_side_sheet(wb, *edit.side_sheet)
    with atomic.atomic_path(dest) as tmp:
        wb.save(tmp)
    return dest


def _set_cell(cell: Any, value: Any) -> None:
    cell.value = value
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"  # text that looks like a formula stays text


def _workbook_for_edit(source: Path, csv_sheet: str) -> Any:
    """An openpyxl workbook holding ``source``'s cells (see :func:`write_edited`)."""
    import openpyxl

    suffix = source.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        wb = openpyxl.load_workbook(source)
        values = openpyxl.load_workbook(source, data_only=True)
        for ws in wb.worksheets:
            computed = values[ws.title]
            for row in ws.iter_rows():
                for cell in row:
                    if cell.data_type == "f":
                        value = computed[cell.coordinate].value
                        if value is not None:
                            _set_cell(cell, value)
        return wb
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    if suffix == ".xls":
        import xlrd

        book = xlrd.open_workbook(str(source))
        for sh in book.sheets():
            ws = wb.create_sheet(sh.name)
            for r in range(sh.nrows):
                for c in range(sh.ncols):
                    value = _xls_value(book, sh.cell(r, c))
                    if value is not None:
                        _set_cell(ws.cell(row=r + 1, column=c + 1), value)
        return wb
    if suffix in (".csv", ".txt"):
        ws = wb.create_sheet(csv_sheet)
        with open(source, newline="", encoding="utf-8-sig") as f:
            for r, row in enumerate(csv.reader(f), start=1):
                for c, value in enumerate(row, start=1):
                    if value != "":
                        _set_cell(ws.cell(row=r, column=c), value)
        return wb
    raise TableError(f"annotation file {source}: unsupported type {suffix!r} (expected .xlsx, .xls or .csv)")


def _xls_value(book: Any, cell: Any) -> Any:
    import xlrd

    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    if cell.ctype == xlrd.XL_CELL_NUMBER:
        return int(cell.value) if float(cell.value).is_integer() else float(cell.value)
    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return cell.value
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(cell.value, "#ERROR")
    return cell.value


def _write_side_sheet(wb: Any, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Sheet ``name`` with ``header`` and ``rows``, keeping the rows of an existing sheet of
    that name (under the same column names) whose first cell no new row has."""
    kept: list[list[Any]] = []
    old = next((s for s in wb.sheetnames if normalise_name(s) == normalise_name(name)), None)
    if old is not None:
        values = [list(r) for r in wb[old].iter_rows(values_only=True)]
        if values:
            old_header = [normalise_name(h) for h in values[0]]
            ours = {_clean_cell(r[0]) for r in rows}
            for r in values[1:]:
                if r and r[0] is not None and _clean_cell(r[0]) not in ours:
                    kept.append(
                        [
                            r[old_header.index(normalise_name(h))] if normalise_name(h) in old_header else None
                            for h in header
                        ]
                    )
        wb.remove(wb[old])
    ws = wb.create_sheet(name)
    ws.append(list(header))
    key = lambda r: _clean_cell(r[0]) if isinstance(_clean_cell(r[0]), int) else 0  # noqa: E731
    for r in sorted([*kept, *(list(r) for r in rows)], key=key):
        ws.append(r)


def _edited_csv(source: Path, edit: TableEdit) -> bytes:
    import codecs
    import io

    raw = source.read_bytes()
    bom = raw.startswith(codecs.BOM_UTF8)
    text = raw.decode("utf-8-sig")
    newline = "\r\n" if "\r\n" in text else "\n"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    for (r, c), value in edit.cells.items():
        row = rows[r - 1]
        row.extend([""] * (c + 1 - len(row)))
        row[c] = "" if value is None else str(value)
    if edit.columns and edit.header_row is not None:
        hdr = edit.header_row - 1
        names = {normalise_name(v): c for c, v in enumerate(rows[hdr]) if normalise_name(v)}
        width = max(len(row) for row in rows[hdr:])
        where = {}
        for name in edit.columns:
            if normalise_name(name) in names:
                where[name] = names[normalise_name(name)]
            else:
                where[name] = width
                width += 1
        for k in range(hdr, len(rows)):
            if rows[k]:  # a blank line stays blank
                rows[k].extend([""] * (width - len(rows[k])))
        for name in edit.columns:
            if normalise_name(name) not in names:
                rows[hdr][where[name]] = name
        for r, values in edit.column_values.items():
            for name, value in zip(edit.columns, values):
                rows[r - 1][where[name]] = "" if value is None else str(value)
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerows(rows)
    return (codecs.BOM_UTF8 if bom else b"") + buf.getvalue().encode("utf-8")
