"""Tables in documents, as typed rows an SQL database can hold.

Sources: Markdown pipe tables, HTML ``<table>`` elements, Word tables, CSV/TSV files and XLSX sheets (the
``table`` loader). Each column's type is inferred from its cells:

* ``integer`` / ``decimal``: numbers, with thousands separators, a currency sign or a unit ("1,200 requests",
  "$0.40 per GB", "99.9%"); a unit shared by every cell becomes the column's ``unit``; differing units get a
  ``<name>_unit`` column beside the numbers; a column where a few cells are not numbers keeps their text in a
  ``<name>_text`` column;
* ``date``: ISO dates, "10 September 2024", "April 2019" (stored as ISO text, ``YYYY-MM-DD`` or ``YYYY-MM``);
* ``text``: everything else.

Empty cells and placeholders ("-", "–", "n/a") are NULL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ragkit.index.tables import FLAG_VALUE_HEADER, LONG_COLUMNS, is_long_form, row_labels
from ragkit.types import Table, TableColumn

MAX_ROWS = 200_000  # rows kept per table; a bigger sheet is cut (and the loader says so)
MAX_COLUMNS = 100  # columns kept per table (each may store up to three SQL columns; SQLite allows 2000)
NUMERIC_SHARE = 0.6  # a column is numeric when at least this share of its non-empty cells are numbers
_NULLS = {"", "-", "–", "—", "n/a", "na", "null", "none", "?"}
_NUMBER = re.compile(
    r"^(?P<cur>[$€£¥])?\s*(?P<num>[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+)\s*"
    r"(?P<unit>%|[A-Za-z$€£µ/][\w $€£µ/().-]{0,40})?$")
_MONTHS = {m: i for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                        "september", "october", "november", "december"], 1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+Z?)?$")
_DMY = re.compile(r"^(\d{1,2})\s+([A-Za-z]+)\.?,?\s+(\d{4})$")
_MDY = re.compile(r"^([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})$")
_MY = re.compile(r"^([A-Za-z]+)\.?\s+(\d{4})$")
_RESERVED = {"select", "from", "where", "group", "order", "by", "limit", "offset", "table", "index", "join", "on",
             "and", "or", "not", "null", "as", "in", "is", "case", "when", "then", "else", "end", "having",
             "union", "values", "default", "check", "primary", "key", "references", "create", "drop", "insert",
             "update", "delete", "into", "set", "distinct", "all", "like", "between", "exists", "to", "with",
             "rowid", "column", "transaction", "desc", "asc", "cast", "collate", "unique", "range", "rows"}


# --- cells -----------------------------------------------------------------------------------------------------

def clean_cell(value: Any) -> str:
    """A cell's text without Markdown emphasis, code marks, links and surrounding space."""
    text = "" if value is None else str(value)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__|`)", "", text)
    return re.sub(r"\s+", " ", text).strip()


def parse_number(text: str) -> tuple[int | float, str] | None:
    """``"1,200 requests"`` -> ``(1200, "requests")``; ``"$0.40 per GB"`` -> ``(0.4, "$ per GB")``; None when the
    text is not a number (with an optional currency sign and unit)."""
    m = _NUMBER.match(text.strip())
    if not m:
        return None
    raw = m.group("num").replace(",", "").replace("−", "-")
    value: int | float = float(raw) if ("." in raw) else int(raw)
    unit = (m.group("unit") or "").strip()
    if m.group("cur"):
        unit = (m.group("cur") + " " + unit).strip()
    if unit and not re.search(r"[A-Za-z%$€£¥µ]", unit):
        return None
    return value, unit


def parse_date(text: str) -> str | None:
    """ISO form of a date cell: ``YYYY-MM-DD``, or ``YYYY-MM`` for a month ("April 2019"); None otherwise."""
    t = text.strip()
    try:
        if m := _ISO.match(t):
            return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        if m := _DMY.match(t):
            month = _MONTHS.get(m[2].lower())
            return dt.date(int(m[3]), month, int(m[1])).isoformat() if month else None
        if m := _MDY.match(t):
            month = _MONTHS.get(m[1].lower())
            return dt.date(int(m[3]), month, int(m[2])).isoformat() if month else None
        if m := _MY.match(t):
            month = _MONTHS.get(m[1].lower())
            return f"{int(m[2]):04d}-{month:02d}" if month else None
    except ValueError:
        return None
    return None


def _native(value: Any) -> tuple[str, Any, str] | None:
    """(kind, value, unit) for a cell that is already typed (XLSX), else None."""
    if isinstance(value, bool):
        return "text", str(value).lower(), ""
    if isinstance(value, int):
        return "integer", value, ""
    if isinstance(value, float):
        return ("integer", int(value), "") if value.is_integer() else ("decimal", value, "")
    if isinstance(value, dt.datetime):
        return "date", value.date().isoformat() if value.time() == dt.time() else value.isoformat(), ""
    if isinstance(value, dt.date):
        return "date", value.isoformat(), ""
    return None


def classify_cell(value: Any) -> tuple[str, Any, str]:
    """(kind, value, unit): kind is ``null``, ``integer``, ``decimal``, ``date`` or ``text``."""
    native = _native(value)
    if native is not None:
        return native
    text = clean_cell(value)
    if text.lower() in _NULLS:
        return "null", None, ""
    if (d := parse_date(text)) is not None:
        return "date", d, ""
    if (n := parse_number(text)) is not None:
        return ("integer" if isinstance(n[0], int) else "decimal"), n[0], n[1]
    return "text", text, ""


# --- columns and tables ----------------------------------------------------------------------------------------

def sql_name(text: str, fallback: str) -> str:
    """A lower-case SQL identifier for a header or title: letters, digits and ``_``; never a reserved word."""
    name = re.sub(r"[^0-9a-z]+", "_", clean_cell(text).lower()).strip("_")[:48].strip("_")
    if not name:
        name = fallback
    if name[0].isdigit():
        name = "c_" + name
    if name in _RESERVED:
        name += "_value"
    return name


def _unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    taken.add(out)
    return out


def build_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], *, title: str = "",
                heading: Sequence[str] = (), long_matrices: bool = True) -> Table | None:
    """Type the columns of one table (rows padded or cut to the header's width). None when it has fewer than two
    columns or no data row. A matrix (see :func:`is_matrix`) is stored in long form unless ``long_matrices`` is
    false."""
    header = [clean_cell(h) for h in header][:MAX_COLUMNS]
    width = len(header)
    body = [list(r[:width]) + [None] * (width - len(r)) for r in rows]
    body = [r for r in body if any(clean_cell(c) for c in r)][:MAX_ROWS]
    if width < 2 or not body:
        return None
    typed = [[classify_cell(r[j]) for r in body] for j in range(width)]
    if long_matrices and (is_matrix(typed) or is_flag_matrix(typed)):
        return long_table(header, body, typed, title=title, heading=heading)
    taken: set[str] = set()
    columns: list[TableColumn] = []
    values: list[list[Any]] = []  # one list per stored column
    for j, head in enumerate(header):
        cells = typed[j]
        name = _unique(sql_name(head, f"col_{j + 1}"), taken)
        for col, vals in _type_column(name, head or f"column {j + 1}", cells, body, j, taken):
            columns.append(col)
            values.append(vals)
    return Table(columns=columns, rows=[list(r) for r in zip(*values)], title=title, heading=list(heading))


def _type_column(name: str, head: str, cells: list[tuple[str, Any, str]], body: list[list[Any]], j: int,
                 taken: set[str]) -> list[tuple[TableColumn, list[Any]]]:
    kinds = [k for k, _, _ in cells if k != "null"]
    if not kinds:
        return [(TableColumn(name, head, "text"), [None] * len(cells))]
    if all(k == "date" for k in kinds):
        return [(TableColumn(name, head, "date"), [v for _, v, _ in cells])]
    numeric = [k for k in kinds if k in ("integer", "decimal")]
    if len(numeric) < NUMERIC_SHARE * len(kinds) or len(numeric) == 0:
        texts = [None if k == "null" else clean_cell(body[i][j]) if k != "text" else v
                 for i, (k, v, _) in enumerate(cells)]
        return [(TableColumn(name, head, "text"), texts)]
    kind = "integer" if all(k == "integer" for k in numeric) else "decimal"
    nums = [v if k in ("integer", "decimal") else None for k, v, _ in cells]
    units = {u for k, _, u in cells if k in ("integer", "decimal")}
    out = []
    if len(units) == 1:
        out.append((TableColumn(name, head, kind, units.pop()), nums))
    else:
        out.append((TableColumn(name, head, kind), nums))
        out.append((TableColumn(_unique(name + "_unit", taken), head + " (unit)", "text"),
                    [u or None if k in ("integer", "decimal") else None for k, _, u in cells]))
    if len(numeric) < len(kinds):  # some cells are words ("Unlimited", "Custom"): keep every cell's text too
        out.append((TableColumn(_unique(name + "_text", taken), head + " (as written)", "text"),
                    [None if k == "null" else clean_cell(body[i][j]) for i, (k, _, _) in enumerate(cells)]))
    return out


# --- matrices in long form -------------------------------------------------------------------------------------

def _mixed_units(cells: list[tuple[str, Any, str]]) -> bool:
    kinds = [k for k, _, _ in cells if k != "null"]
    numeric = [u for k, _, u in cells if k in ("integer", "decimal")]
    return bool(numeric) and len(numeric) >= NUMERIC_SHARE * len(kinds) and len(set(numeric)) > 1


def is_matrix(typed: list[list[tuple[str, Any, str]]]) -> bool:
    """True for a feature-by-item matrix: the first column labels the rows (text, each label once) and at least
    two of the other columns, and at least half of them, are numbers in differing units, while across a row the
    numbers share one unit (in at least two thirds of the rows with two or more numbers). Units that differ down
    a column and agree along a row mean each row is one quantity (a price, a size, a count) and the columns are
    items (plans, products, regions), e.g. a price list with one column per plan. A table of entities whose
    quantities differ in unit from row to row (an API limit in requests, another in queries) differs along its
    rows too and stays as it is."""
    if len(typed) < 3 or len(typed[0]) < 2 or not _label_column(typed):
        return False
    mixed = sum(_mixed_units(cells) for cells in typed[1:])
    if mixed < 2 or 2 * mixed < len(typed) - 1:
        return False
    row_units = [{typed[j][i][2] for j in range(1, len(typed)) if typed[j][i][0] in ("integer", "decimal")}
                 for i in range(len(typed[0]))
                 if sum(typed[j][i][0] in ("integer", "decimal") for j in range(1, len(typed))) >= 2]
    return len(row_units) >= 2 and 3 * sum(len(u) == 1 for u in row_units) >= 2 * len(row_units)


_YES = {"yes", "y", "true", "✓", "✔", "✅", "☑"}
_NO = {"no", "n", "false", "✗", "✘", "❌", "×", "☐"}


def flag(text: Any) -> int | None:
    """1 for a cell that says yes (yes, true, a check mark), 0 for one that says no, None for anything else."""
    word = clean_cell(text).lower()
    return 1 if word in _YES else 0 if word in _NO else None


def _label_column(typed: list[list[tuple[str, Any, str]]]) -> bool:
    labels = [v for k, v, _ in typed[0] if k != "null"]
    return bool(labels) and all(k in ("text", "null") for k, _, _ in typed[0]) and len(set(labels)) == len(labels)


def is_flag_matrix(typed: list[list[tuple[str, Any, str]]]) -> bool:
    """True for a yes/no matrix: the first column labels the rows (text, each label once) and every other cell
    is yes or no (or a check mark, or empty), with at least one of each, over at least two items and two rows,
    e.g. permissions by role. Questions count its yes cells ("how many permissions does the Viewer role
    have"), which needs the matrix in long form."""
    if len(typed) < 3 or len(typed[0]) < 2 or not _label_column(typed):
        return False
    cells = [flag(v) for col in typed[1:] for k, v, _ in col if k != "null"]
    return bool(cells) and None not in cells and 0 in cells and 1 in cells


def item_name(title: str, heading: Sequence[str], taken: set[str]) -> str:
    """The name of the column that holds a matrix's column headers: the singular of the first plural word in the
    nearest heading ("Compare plans" -> ``plan``), else in the title, else ``item``. A word that names the rows
    (the label column's own name, "Limits" above a "Limit" column) or an SQL keyword is passed over."""
    for text in [*reversed(heading), title]:
        for word in re.findall(r"[A-Za-z]+", text):
            w = word.lower()
            if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
                name = sql_name(w[:-1], "item")
                if name == w[:-1] and not any(t.split("_")[0] == name for t in taken) and name not in LONG_COLUMNS:
                    return name
    return "item" if "item" not in taken else "item_name"


def long_table(header: Sequence[str], body: list[list[Any]], typed: list[list[tuple[str, Any, str]]], *,
               title: str = "", heading: Sequence[str] = ()) -> Table:
    """A matrix as one row per (label, item): ``<label>, <item>, value, unit, as_written``. ``value`` holds the
    cell's number (NULL for words such as "Unlimited"; in a yes/no matrix, see :func:`is_flag_matrix`, 1 for yes
    and 0 for no), ``unit`` its unit, ``as_written`` the cell's text; an empty cell gives no row."""
    flags = is_flag_matrix(typed)
    label = sql_name(header[0], "label")
    if label.endswith("_value") and label[:-6] in _RESERVED:  # "Limit": limit_name, not limit_value beside value
        label = label[:-6] + "_name"
    item = item_name(title, heading, {label})
    items = [h or f"column {j + 1}" for j, h in enumerate(header[1:], 1)]
    rows: list[list[Any]] = []
    for i, r in enumerate(body):
        for j, name in enumerate(items, 1):
            kind, value, unit = typed[j][i]
            if kind == "null":
                continue
            number = flag(value) if flags else value if kind in ("integer", "decimal") else None
            rows.append([typed[0][i][1], name, number, unit or None, clean_cell(r[j])])
    numbers = [r[2] for r in rows if r[2] is not None]
    kind = "integer" if numbers and all(isinstance(v, int) for v in numbers) else "decimal"
    value = (FLAG_VALUE_HEADER if flags else
             f"the {header[0] or 'row'}'s number for this {item} (a count, price or size): select it; COUNT(*) "
             "would count rows, not this number")
    columns = [
        TableColumn(label, header[0] or "label", "text"),
        TableColumn(item, f"{item} (a column of the original table: {', '.join(items)})", "text"),
        TableColumn("value", value, "integer" if flags else kind),
        TableColumn("unit", "the value's unit", "text"),
        TableColumn("as_written", "the cell as written (words such as Unlimited or Yes are only here)", "text")]
    return Table(columns=columns, rows=rows, title=title, heading=list(heading))


# --- sources ---------------------------------------------------------------------------------------------------

_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)+\|?\s*$")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _md_cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", line)]


def markdown_tables(text: str, title: str = "") -> list[Table]:
    """Pipe tables of a Markdown text (not inside code fences), each with the headings above it."""
    lines = text.splitlines()
    path: list[tuple[int, str]] = []
    out: list[Table] = []
    fenced, i = False, 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _MD_HEADING.match(line)):
            level = len(m.group(1))
            path = [p for p in path if p[0] < level] + [(level, clean_cell(m.group(2)))]
        elif (not fenced and "|" in line and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1])):
            header = _md_cells(line)
            j = i + 2
            rows = []
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                rows.append(_md_cells(lines[j]))
                j += 1
            table = build_table(header, rows, title=title, heading=[h for _, h in path])
            if table is not None:
                out.append(table)
            i = j
            continue
        i += 1
    return out


def html_tables(root: Any, title: str = "", dropped: set[int] = frozenset()) -> list[Table]:
    """``<table>`` elements under a BeautifulSoup node (innermost tables only; ``dropped`` tag ids are left out).
    The header is the ``<thead>`` row or a first row of ``<th>`` cells, else the first row."""
    out: list[Table] = []
    path: list[tuple[int, str]] = []
    for el in root.find_all(re.compile(r"^(h[1-6]|table)$")):
        if id(el) in dropped or any(id(p) in dropped for p in el.parents):
            continue
        if el.name != "table":
            level = int(el.name[1])
            path = [p for p in path if p[0] < level] + [(level, clean_cell(el.get_text(" ")))]
            continue
        if el.find("table") is not None:
            continue
        rows = [[clean_cell(c.get_text(" ")) for c in tr.find_all(["td", "th"])] for tr in el.find_all("tr")]
        rows = [r for r in rows if r]
        if len(rows) < 2:
            continue
        caption = el.find("caption")
        heading = [h for _, h in path] + ([clean_cell(caption.get_text(" "))] if caption is not None else [])
        table = build_table(rows[0], rows[1:], title=title, heading=heading)
        if table is not None:
            out.append(table)
    return out


def docx_tables(document: Any, title: str = "") -> list[Table]:
    """Tables of a python-docx Document, each with the headings above it."""
    from docx.table import Table as DocxTable

    out: list[Table] = []
    path: list[tuple[int, str]] = []
    for block in document.iter_inner_content():
        if isinstance(block, DocxTable):
            rows = []
            for row in block.rows:
                cells, seen = [], set()
                for cell in row.cells:
                    if id(cell._tc) not in seen:
                        seen.add(id(cell._tc))
                        cells.append(clean_cell(cell.text))
                rows.append(cells)
            if len(rows) >= 2:
                table = build_table(rows[0], rows[1:], title=title, heading=[h for _, h in path])
                if table is not None:
                    out.append(table)
            continue
        style = (block.style.name if block.style is not None else "").lower()
        m = re.match(r"^heading (\d)$", style)
        if m or style == "title":
            level = int(m.group(1)) if m else 1
            path = [p for p in path if p[0] < level] + [(level, clean_cell(block.text))]
    return out


def delimited_table(text: str, delimiter: str, title: str = "") -> Table | None:
    """A CSV/TSV text (first row: the header) as one table."""
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        return None
    return build_table(rows[0], rows[1:], title=title)


def xlsx_tables(data: bytes, title: str = "") -> list[Table]:
    """One table per non-empty sheet of an XLSX workbook (values as last computed, not formulas)."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    out = []
    try:
        for sheet in book.worksheets:
            rows = [list(r) for r, _ in zip(sheet.iter_rows(values_only=True), range(MAX_ROWS + 1))]
            rows = [r for r in rows if any(c is not None and str(c).strip() for c in r)]
            if len(rows) < 2:
                continue
            width = max(i + 1 for r in rows for i, c in enumerate(r) if c is not None and str(c).strip())
            table = build_table([c if c is not None else "" for c in rows[0][:width]], rows[1:],
                                title=title, heading=[sheet.title] if len(book.worksheets) > 1 else [])
            if table is not None:
                out.append(table)
    finally:
        book.close()
    return out


# --- naming and describing -------------------------------------------------------------------------------------

def table_name(source_stem: str, table: Table, taken: set[str]) -> str:
    """A unique SQL table name from the file name and the nearest heading, e.g. ``rate_limits__limits``."""
    base = sql_name(source_stem, "table")[:32].strip("_") or "table"
    if table.heading:
        base = base + "__" + sql_name(table.heading[-1], "t")[:28].strip("_")
    if base in _RESERVED or base.startswith("sqlite_") or base.startswith("ragkit_"):
        base = "t_" + base
    return _unique(base, taken)


def column_text(c: TableColumn) -> str:
    return c.name + f" ({c.type}" + (f", {c.unit}" if c.unit else "") + ")" + (
        f' "{c.header}"' if sql_name(c.header, c.name) != c.name else "")


def describe(table: Table, sample: int = 3) -> str:
    """The text indexed for a table (so retrieval finds it): its name, where it is, its columns, a few rows; for
    a matrix in long form also its row labels (:func:`ragkit.index.tables.row_labels`)."""
    where = " > ".join([table.title, *table.heading]) if table.title else " > ".join(table.heading)
    lines = [f"Table {table.name}: {where}".rstrip(": "),
             f"{len(table.rows)} rows. Columns: " + ", ".join(column_text(c) for c in table.columns)]
    if is_long_form(table):  # a matrix: its row labels are what questions name ("alert rules", "log retention")
        lines.append(f"{table.columns[0].header or table.columns[0].name}: {row_labels(r[0] for r in table.rows)}")
    heads = [c.name for c in table.columns]
    for row in table.rows[:sample]:
        lines.append("; ".join(f"{h} = {v}" for h, v in zip(heads, row) if v is not None))
    return "\n".join(lines)


def render_markdown(table: Table, max_rows: int = 200) -> str:
    """The table as Markdown text (the document text of a CSV/XLSX file), at most ``max_rows`` rows."""
    heads = [c.header or c.name for c in table.columns]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in table.rows[:max_rows]:
        lines.append("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
    if len(table.rows) > max_rows:
        lines.append(f"({len(table.rows) - max_rows} more rows)")
    return "\n".join(lines)
