"""CSV, TSV and XLSX files: each becomes one document whose tables are typed (see ``ragkit.ingest.tables``) and
whose text is the table in Markdown (at most 200 rows; the rest are reachable through the SQL tool). XLSX needs
``openpyxl`` (the ``ragkit[tables]`` extra); a workbook gives one table per non-empty sheet."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ragkit.errors import LoadError
from ragkit.ingest._read import LineLimit, one_line, read_bytes, read_decoded, read_sidecar
from ragkit.ingest.tables import MAX_ROWS, delimited_table, render_markdown, xlsx_tables
from ragkit.plugins import Plugin
from ragkit.types import Document, LoadIssue


class TableFileLoader(Plugin):
    stage, name = "loader", "table"
    extensions = (".csv", ".tsv", ".xlsx")
    Params = LineLimit

    def load(self, path: Path, doc_id: str) -> Iterator[Document | LoadIssue]:
        meta = read_sidecar(path)
        issue = None
        title = str(meta.pop("title", "")) or path.stem.replace("_", " ").replace("-", " ")
        suffix = path.suffix.lower()
        if suffix == ".xlsx":
            try:
                tables = xlsx_tables(read_bytes(path), title)
            except ImportError:
                raise LoadError("reading .xlsx needs openpyxl: pip install 'ragkit[tables]'") from None
            except Exception as exc:  # openpyxl raises many types for a damaged workbook
                raise LoadError(f"unreadable workbook ({type(exc).__name__}: {one_line(exc)})") from None
        else:
            dec = read_decoded(path, self.params.max_line_chars)
            meta, issue = dec.metadata() | meta, dec.issue(path)
            try:
                table = delimited_table(dec.text, "\t" if suffix == ".tsv" else ",", title)
            except csv.Error as exc:
                raise LoadError(f"malformed {suffix[1:].upper()}: {one_line(exc)}") from None
            tables = [table] if table is not None else []
        if not tables:
            raise LoadError("no table (a header row and at least one data row, two columns or more)")
        text = "\n\n".join(("## " + " > ".join(t.heading) + "\n\n" if t.heading else "") + render_markdown(t)
                           for t in tables)
        yield Document(doc_id=doc_id, text=f"# {title}\n\n{text}", title=title, metadata=meta, tables=tables)
        if issue is not None:
            yield issue
        for t in tables:
            if len(t.rows) >= MAX_ROWS:
                where = " > ".join(t.heading) or "table"
                yield LoadIssue(f"{path}:{where}", f"kept the first {MAX_ROWS} rows of {where}")
