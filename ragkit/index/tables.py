"""The tables of an index in one SQLite file: a catalog (``ragkit_tables``: name, source document, title, heading
path, the document's metadata, typed columns) and one SQL table per document table.

A query runs on its own connection opened read-only (``mode=ro``), under an authorizer that allows reading only
the tables it is given and calling only :data:`SAFE_FUNCTIONS`, with a row limit and a time limit (a progress
handler interrupts it). The SQL tool checks a query before it gets here; this is the second fence.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragkit.types import Table, TableColumn

CATALOG = "ragkit_tables"
TABLE_POSITION = 1_000_000  # a table's description chunk sits at this position (+ i) in its document
SQL_TYPES = {"integer": "INTEGER", "decimal": "REAL", "date": "TEXT", "text": "TEXT"}
SAFE_FUNCTIONS = frozenset({
    "count", "sum", "total", "avg", "min", "max", "group_concat", "abs", "round", "lower", "upper", "length",
    "substr", "substring", "trim", "ltrim", "rtrim", "replace", "instr", "coalesce", "ifnull", "nullif", "iif",
    "cast", "date", "time", "datetime", "julianday", "strftime", "unixepoch", "like", "glob", "printf", "format",
    "typeof", "sign", "ceil", "ceiling", "floor", "trunc",
})
LONG_COLUMNS = ("value", "unit", "as_written")  # the last columns of a matrix stored in long form
# the header of the value column of a yes/no matrix in long form (its cells: 1 for yes, 0 for no)
FLAG_VALUE_HEADER = "1 where the cell says yes, 0 where it says no: count the yes cells with value = 1"


MAX_LABEL_CHARS = 600  # row labels of a matrix listed in its description chunk and beside its schema


def is_long_form(table: Table) -> bool:
    """A matrix stored in long form: ``<label>, <item>, value, unit, as_written`` (``ragkit.ingest.tables``)."""
    return len(table.columns) == 5 and tuple(c.name for c in table.columns[2:]) == LONG_COLUMNS


def is_flag_form(table: Table) -> bool:
    """A yes/no matrix in long form: its ``value`` is 1 for a yes cell and 0 for a no cell."""
    return is_long_form(table) and table.columns[2].header == FLAG_VALUE_HEADER


def row_labels(labels: Iterable[Any]) -> str:
    """The row labels of a matrix in long form (the first column of its rows), each once, in the order of the
    page, joined by "; " and cut at a label boundary after ``MAX_LABEL_CHARS`` characters."""
    text = "; ".join(dict.fromkeys(str(v) for v in labels if v is not None))
    return text if len(text) <= MAX_LABEL_CHARS else text[:MAX_LABEL_CHARS].rsplit(";", 1)[0] + "; ..."


_CATALOG_SQL = f"""CREATE TABLE {CATALOG} (name TEXT PRIMARY KEY, doc_id TEXT NOT NULL, source TEXT NOT NULL,
    title TEXT, heading TEXT NOT NULL, metadata TEXT NOT NULL, columns TEXT NOT NULL, n_rows INTEGER NOT NULL)"""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def write_tables(path: Path, tables: Iterable[Table]) -> int:
    """Write ``tables`` (named, with rows) and their catalog to a new SQLite file; returns how many."""
    db = sqlite3.connect(str(path))
    n = 0
    try:
        db.execute(_CATALOG_SQL)
        for t in tables:
            cols = ", ".join(f"{quote(c.name)} {SQL_TYPES.get(c.type, 'TEXT')}" for c in t.columns)
            db.execute(f"CREATE TABLE {quote(t.name)} ({cols})")
            marks = ",".join("?" * len(t.columns))
            db.executemany(f"INSERT INTO {quote(t.name)} VALUES ({marks})", t.rows)
            db.execute(f"INSERT INTO {CATALOG} VALUES (?,?,?,?,?,?,?,?)",
                       (t.name, t.doc_id, t.source, t.title, json.dumps(t.heading, ensure_ascii=False),
                        json.dumps(t.metadata, ensure_ascii=False, default=str),
                        json.dumps([c.__dict__ for c in t.columns], ensure_ascii=False), len(t.rows)))
            n += 1
        db.commit()
    finally:
        db.close()
    return n


_RECURSIVE = getattr(sqlite3, "SQLITE_RECURSIVE", 33)  # a WITH RECURSIVE clause (reads only what it names)


class QueryError(Exception):
    """A query that SQLite refused, interrupted or failed (the message is SQLite's, for a repair attempt)."""


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple]
    truncated: bool  # more rows than the limit existed
    seconds: float


class TableDB:
    """The tables of one committed version (an absent file: no tables)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._catalog: list[Table] | None = None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path.as_posix()}?mode=ro&immutable=1", uri=True,
                               check_same_thread=False)

    def tables(self) -> list[Table]:
        """Every table's catalog entry (columns and provenance; ``rows`` left empty), by name."""
        with self._lock:
            if self._catalog is None:
                self._catalog = []
                if self.path.is_file():
                    db = self._connect()
                    try:
                        for name, did, src, title, heading, meta, cols, _n in db.execute(
                                f"SELECT * FROM {CATALOG} ORDER BY name"):
                            self._catalog.append(Table(
                                columns=[TableColumn(**c) for c in json.loads(cols)], rows=[], title=title or "",
                                heading=json.loads(heading), name=name, doc_id=did, source=src,
                                metadata=json.loads(meta)))
                    finally:
                        db.close()
            return list(self._catalog)

    def n_rows(self, name: str) -> int:
        return self._read(f"SELECT COUNT(*) FROM {quote(name)}")[0][0]

    def rows(self, name: str, limit: int | None = None) -> list[list[Any]]:
        sql = f"SELECT * FROM {quote(name)} ORDER BY rowid" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return [list(r) for r in self._read(sql)]

    def _read(self, sql: str) -> list[tuple]:
        db = self._connect()
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def run(self, sql: str, allowed: Sequence[str], *, max_rows: int = 100, timeout: float = 5.0) -> Result:
        """Run one read-only query that may read only the ``allowed`` tables; at most ``max_rows`` rows come back.
        Raises QueryError with SQLite's message (or "time limit exceeded")."""
        if not self.path.is_file():
            raise QueryError("this index has no tables")
        allowed_set = {a.lower() for a in allowed}
        t0 = time.perf_counter()
        deadline = t0 + timeout
        db = self._connect()

        def authorize(action: int, arg1: Any, arg2: Any, dbname: Any, trigger: Any) -> int:
            if action in (sqlite3.SQLITE_SELECT, _RECURSIVE):
                return sqlite3.SQLITE_OK
            if action == sqlite3.SQLITE_READ and (arg1 or "").lower() in allowed_set and dbname == "main":
                return sqlite3.SQLITE_OK
            if action == sqlite3.SQLITE_READ and not dbname:  # a column of a CTE (its own reads are checked)
                return sqlite3.SQLITE_OK
            if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in SAFE_FUNCTIONS:
                return sqlite3.SQLITE_OK
            return sqlite3.SQLITE_DENY

        try:
            db.set_authorizer(authorize)
            db.set_progress_handler(lambda: 1 if time.perf_counter() > deadline else 0, 1000)
            cur = db.execute(sql)
            rows = cur.fetchmany(max_rows + 1)
            columns = [d[0] for d in cur.description or []]
        except sqlite3.Error as exc:
            msg = str(exc)
            if "interrupted" in msg:
                msg = f"time limit of {timeout:g} s exceeded"
            raise QueryError(msg) from None
        finally:
            db.close()
        return Result(columns, rows[:max_rows], len(rows) > max_rows, time.perf_counter() - t0)
