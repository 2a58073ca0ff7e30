"""The SQL tool: numbers from an index's tables instead of from prose.

    tables   the tables retrieval found (their description chunks, or tables of the retrieved documents), only
             those the request's metadata filter lets it see
    prompt   each table's schema (column types and units) and a few sample rows, then the question
    query    the LLM writes one query; :func:`check_sql` parses it (sqlglot) and refuses anything but a single
             read-only SELECT over those tables with known, side-effect-free functions; it then runs on a
             read-only connection under a row limit, a time limit and an authorizer (``ragkit.index.tables``)
    guards   a query that names columns its table lacks moves to the one candidate table that has them; text
             equality that finds nothing is relaxed to LIKE; a COUNT of one cell of a matrix in long form reads
             the cell's value; a COUNT over a yes/no matrix counts its yes cells; a matrix's values read over
             every feature at once, or over every item while the question names some, and a whole column of
             numbers in several units ranked or aggregated, go back for repair
    repair   on a refusal, an error or an empty result the model gets one more try with the error text
    answer   the result in words, citing the table's description chunk as ``[1]``; the SQL, columns and rows in
             ``Answer.extras``

When no table fits or the query still fails, :meth:`SqlTool.run` returns no answer and the reason; the caller
answers from passages and says so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragkit.config import SqlConfig
from ragkit.generate.citations import citation_for
from ragkit.index.tables import SAFE_FUNCTIONS, QueryError, Result
from ragkit.types import Answer, Event, Hit, Table

# sqlglot's names for the functions SAFE_FUNCTIONS allows (it parses some into its own expression types)
_SQLGLOT_SAFE = SAFE_FUNCTIONS | {"if", "case", "timetostr", "strposition", "tsordstotimestamp", "tsordstodate",
                                  "trycast", "strtotime", "datestrtodate", "timestrtotime", "anyvalue", "concat",
                                  "dpipe", "unixtotime", "timetounix", "collate"}
_SYSTEM = re.compile(r"^(sqlite_|ragkit_)", re.I)
MAX_SQL_CHARS = 4000

SYSTEM_PROMPT = ("You write one SQLite query that answers the user's question from the tables below. Use only "
                 "these tables and columns. Numbers are stored as numbers (units are in the comments). For "
                 "names and labels, compare with LIKE '%word%' (case-insensitive). When two tables are versions of "
                 "the same data, read the current one (the newest date, not deprecated) unless the question asks "
                 "about the older one. Reply with one SELECT statement in a ```sql block and nothing else.")


MAX_LABEL_ROWS = 5000  # rows of a matrix read for its labels (a matrix from a page is far smaller)


class SqlRejected(Exception):
    """A query refused before it ran (the message says why; it is shown to the model on a repair attempt)."""


def check_sql(sql: str, allowed: Iterable[str]) -> str:
    """Parse ``sql`` and return it (as sqlglot writes it back) when it is one read-only SELECT (or UNION of
    SELECTs, with CTEs) that reads only ``allowed`` tables and calls only known, side-effect-free functions.
    Raises SqlRejected otherwise. The returned text is what runs, so nothing unparsed reaches SQLite."""
    import sqlglot
    from sqlglot import exp

    allowed_set = {a.lower() for a in allowed}
    text = sql.strip()
    if not text:
        raise SqlRejected("empty query")
    if len(text) > MAX_SQL_CHARS:
        raise SqlRejected(f"query longer than {MAX_SQL_CHARS} characters")
    try:
        statements = [s for s in sqlglot.parse(text, read="sqlite") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise SqlRejected(f"not valid SQL: {str(exc).splitlines()[0][:200]}") from None
    if len(statements) != 1:
        raise SqlRejected(f"exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        raise SqlRejected(f"only SELECT queries are allowed, not {tree.key.upper()}")
    forbidden = (exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Command, exp.Pragma,
                 exp.Attach, exp.Detach, exp.Transaction, exp.Commit, exp.Rollback, exp.Set, exp.Use, exp.Copy,
                 exp.Merge, exp.Into)
    for node in tree.walk():
        if isinstance(node, forbidden):
            raise SqlRejected(f"{node.key.upper()} is not allowed in a read-only query")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for t in tree.find_all(exp.Table):
        if not isinstance(t.this, exp.Identifier):
            raise SqlRejected(f"table-valued function {t.this.sql(dialect='sqlite')[:60]} is not allowed")
        if t.args.get("db") or t.args.get("catalog"):
            raise SqlRejected(f"schema-qualified table {t.sql(dialect='sqlite')} is not allowed")
        name = t.name.lower()
        if name in ctes and not _SYSTEM.match(name):
            continue
        if name not in allowed_set:
            shown = ", ".join(sorted(allowed_set)) or "none"
            raise SqlRejected(f"table {t.name!r} is not one of the tables this question may read ({shown})")
    for f in tree.find_all(exp.Func):
        if isinstance(f, exp.Connector):  # AND / OR / XOR: operators that sqlglot also types as functions
            continue
        name = (f.name if isinstance(f, exp.Anonymous) else f.key).lower()
        if name not in _SQLGLOT_SAFE:
            raise SqlRejected(f"function {name.upper()} is not allowed")
    return tree.sql(dialect="sqlite")


def _text_comparison(node: Any) -> tuple[Any, Any] | None:
    """(column, string literal) of a binary comparison between the two, on either side; None otherwise."""
    from sqlglot import exp

    col, lit = node.this, node.expression
    if isinstance(lit, exp.Column) and isinstance(col, exp.Literal):
        col, lit = lit, col
    if isinstance(col, exp.Column) and isinstance(lit, exp.Literal) and lit.is_string:
        return col, lit
    return None


def relax_text_equality(sql: str) -> str | None:
    """``col = 'Team'`` -> ``col LIKE '%Team%'`` (case-insensitive, a substring) for every comparison of a column
    with a text literal; None when the query has none. Tried when a checked query returns nothing: small models
    compare with the exact label they guess ("REST API") where the cell says more ("REST API (management)")."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="sqlite")
    changed = False

    def relax(node: exp.Expression) -> exp.Expression:
        nonlocal changed
        if isinstance(node, exp.EQ) and (pair := _text_comparison(node)) is not None:
            col, lit = pair
            changed = True
            return exp.Like(this=col.copy(), expression=exp.Literal.string(f"%{lit.this.strip()}%"))
        return node

    out = tree.transform(relax)
    return out.sql(dialect="sqlite") if changed else None


_FILLER = {"the", "of", "a", "an", "and", "or", "for", "to", "in", "on", "at", "by", "with", "is", "are"}


def relax_words(sql: str) -> str | None:
    """``col LIKE '%monthly price%'`` -> ``col LIKE '%monthly%' AND col LIKE '%price%'``: every word of a several-word
    pattern (filler words left out), in any order; None when the query has no such pattern. Tried when a query
    still returns nothing after :func:`relax_text_equality`: the model's words ("monthly price") are in the label
    in another order ("Price per month (billed monthly)")."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="sqlite")
    changed = False

    def split(node: exp.Expression) -> exp.Expression:
        nonlocal changed
        if not isinstance(node, exp.Like) or (pair := _text_comparison(node)) is None:
            return node
        col, lit = pair
        words = [w for w in re.findall(r"[^\W_]+", lit.this) if w.lower() not in _FILLER]
        if len(words) < 2 or not re.fullmatch(r"%[^%_]*%", lit.this):
            return node
        changed = True
        parts = [exp.Like(this=col.copy(), expression=exp.Literal.string(f"%{w}%")) for w in words]
        return exp.Paren(this=exp.and_(*parts))

    out = tree.transform(split)
    return out.sql(dialect="sqlite") if changed else None


def retarget(sql: str, tables: Sequence[Table]) -> str | None:
    """A query over one table that names columns it lacks, rewritten over the one candidate table that has them
    all (small models mix up look-alike tables, e.g. this year's limits and 2022's); None when there is no such
    single table."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="sqlite")
    read = {t.name.lower() for t in tree.find_all(exp.Table)}
    aliases = {a.alias.lower() for a in tree.find_all(exp.Alias)}
    wanted = {c.name.lower() for c in tree.find_all(exp.Column)} - aliases
    if len(read) != 1 or not wanted:
        return None
    fits = [t.name for t in tables if wanted <= {c.name.lower() for c in t.columns}]
    if len(fits) != 1 or fits[0].lower() in read:
        return None
    (old,) = read
    for t in tree.find_all(exp.Table):
        if t.name.lower() == old:
            t.set("this", exp.to_identifier(fits[0]))
    return tree.sql(dialect="sqlite")


def _own(select: Any, kind: Any) -> list[Any]:
    """The ``kind`` nodes of one SELECT itself, not those inside its sub-queries."""
    return [n for n in select.find_all(kind) if n.find_ancestor(type(select)) is select]


def _pinned(where: Any) -> set[str]:
    """The columns an AND of conditions compares with a text literal (``=`` or ``LIKE``), lower-cased."""
    from sqlglot import exp

    if where is None:
        return set()
    conds = where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
    return {pair[0].name.lower() for c in conds
            if isinstance(c, (exp.EQ, exp.Like, exp.ILike)) and (pair := _text_comparison(c)) is not None}


def _long_table(select: Any, tables: Sequence[Table]) -> Table | None:
    """The matrix in long form that one SELECT reads, when it reads exactly one table (its own FROM and joins,
    not those of its sub-queries) and that table is one."""
    from sqlglot import exp

    from ragkit.index.tables import is_long_form

    read = _own(select, exp.Table)
    if len(read) != 1:
        return None
    return next((t for t in tables if t.name.lower() == read[0].name.lower() and is_long_form(t)), None)


def _matrix_select(sql: str, tables: Sequence[Table]) -> tuple[Any, Table, Any] | None:
    """(tree, table, WHERE) of a query that is one SELECT (no sub-query) over one matrix in long form, filtered by
    an AND of conditions (no OR, no NOT); None otherwise."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="sqlite")
    if not isinstance(tree, exp.Select) or len(list(tree.find_all(exp.Select))) != 1:
        return None
    table = _long_table(tree, tables)
    where = tree.args.get("where")
    if table is None or where is None or where.find(exp.Or, exp.Not):
        return None
    return tree, table, where


def count_cell(sql: str, tables: Sequence[Table]) -> str | None:
    """A top-level ``COUNT`` over a matrix in long form whose filter pins one label and one item, e.g.
    ``SELECT COUNT(*) FROM plans WHERE feature LIKE 'Alert rules' AND plan = 'Team'``, counts the one cell it
    pins (0 or 1), while the question ("how many alert rules ...") asks for the number in that cell: the COUNT
    becomes the ``value`` column. None when the query is not of that shape (a count of items, e.g. of the plans
    that offer a feature, pins no item and is left alone)."""
    from sqlglot import exp

    if (found := _matrix_select(sql, tables)) is None or found[0].args.get("group"):
        return None
    tree, table, where = found
    if not {table.columns[0].name.lower(), table.columns[1].name.lower()} <= _pinned(where):
        return None
    changed = False
    for e in tree.expressions:
        inner = e.this if isinstance(e, exp.Alias) else e
        if isinstance(inner, exp.Count):
            inner.replace(exp.column("value"))
            changed = True
    return tree.sql(dialect="sqlite") if changed else None


def count_flags(sql: str, tables: Sequence[Table]) -> str | None:
    """A top-level ``COUNT`` over a yes/no matrix in long form (:func:`ragkit.index.tables.is_flag_form`) whose
    filter pins a row label or an item but says nothing of the cells, e.g. ``SELECT COUNT(*) FROM roles WHERE
    role = 'Viewer'``, counts the no cells too, while the question ("how many permissions does the Viewer role
    have") counts the yes cells: ``value = 1`` is added to the filter. None when the query is not of that shape."""
    from sqlglot import exp

    from ragkit.index.tables import is_flag_form

    if (found := _matrix_select(sql, tables)) is None or not is_flag_form(found[1]):
        return None
    tree, table, where = found
    if not any(isinstance(e.unalias(), exp.Count) for e in tree.expressions):
        return None
    if not {table.columns[0].name.lower(), table.columns[1].name.lower()} & _pinned(where):
        return None
    if {c.name.lower() for c in where.find_all(exp.Column)} & {"value", "as_written"}:
        return None
    tree.set("where", exp.Where(this=exp.and_(where.this.copy(), exp.column("value").eq(1))))
    return tree.sql(dialect="sqlite")


def _scope_columns(select: Any) -> tuple[set[str], set[str]]:
    """The columns one SELECT selects (or orders, joins, groups by) and the columns its WHERE names, lower-cased,
    without its sub-queries'."""
    from sqlglot import exp

    own = _own(select, exp.Column)
    filtered = {c.name.lower() for c in own if c.find_ancestor(exp.Where)}
    return {c.name.lower() for c in own if not c.find_ancestor(exp.Where)}, filtered


def named_items(question: str, items: Iterable[str]) -> list[str]:
    """The items (a matrix's column headers: plans, products) that ``question`` names, as whole words."""
    return [i for i in items if i and re.search(r"(?<!\w)" + re.escape(i) + r"(?!\w)", question, re.I)]


_STOP = {"how", "many", "much", "what", "which", "the", "and", "does", "did", "can", "for", "with", "from", "per",
         "have", "has", "are", "is", "plan", "plans", "now", "than", "more", "most"}


def _words(text: str) -> set[str]:
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w
            for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOP}


def best_label(question: str, labels: Sequence[str]) -> str | None:
    """The one row label sharing the most words with ``question`` (plurals folded, common words left out); None
    when no label shares a word or two share the most."""
    asked = _words(question)
    scored = sorted(((len(asked & _words(lab)), lab) for lab in labels), key=lambda x: -x[0])
    if not scored or scored[0][0] == 0 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return scored[0][1]


def matrix_filters(sql: str, tables: Sequence[Table], question: str = "",
                   matrices: dict[str, tuple[list[str], list[str]]] | None = None) -> str | None:
    """Why a query that reads a long-form matrix's ``value`` without saying which cells it means is wrong, as an
    error for the repair attempt; None when the query is not such a query. Two ways to miss:

    * no row label: ``SELECT value ... WHERE plan = 'Team'`` returns every feature's number at once (a price, a
      size, a count) and ``SUM(value)`` adds them up (not checked for a yes/no matrix, whose cells are all one
      kind);
    * no item while the question names some: "the monthly price of the Business plan" answered by
      ``SELECT value ... WHERE feature LIKE '%price%'`` lists every plan's price.

    ``matrices`` maps a table's name to its row labels and its items (the original column headers); the error
    shows the whole filter the question needs, with the label sharing the most words with the question, so a
    repair that adds one condition keeps the other. A query that selects, filters on or groups by the column is
    left alone; each SELECT is checked on its own (a sub-query's filter does not cover the query around it)."""
    import sqlglot
    from sqlglot import exp

    from ragkit.index.tables import is_flag_form

    tree = sqlglot.parse_one(sql, read="sqlite")
    for select in tree.find_all(exp.Select):
        table = _long_table(select, tables)
        if table is None or select.args.get("group"):
            continue
        label, item = table.columns[0].name.lower(), table.columns[1].name.lower()
        shown, filtered = _scope_columns(select)
        if "value" not in shown:
            continue
        labels, items = (matrices or {}).get(table.name, ([], []))
        named = named_items(question, items)
        no_label = label not in shown | filtered and not is_flag_form(table)
        no_item = bool(named) and item not in shown | filtered
        if not (no_label or no_item):
            continue
        hint = best_label(question, labels)
        label_cond = f"{label} LIKE '%{hint}%'" if hint else f"{label} LIKE '%...%' (the words of the question)"
        values = ", ".join(f"'{n}'" for n in named)
        item_cond = f"{item} LIKE '%{named[0]}%'" if len(named) == 1 else f"{item} IN ({values})"
        why = []
        if no_label:
            why.append(f"for every {label} at once (different quantities and units)")
        if no_item:
            why.append(f"for every {item}, but the question names {item} {values}")
        if no_label and named:
            fix = f"add a condition on {label} and keep one on {item}, e.g. WHERE {label_cond} AND {item_cond}"
        elif no_label:
            fix = f"add a condition on {label}, e.g. {label_cond}"
        else:
            fix = f"add a condition on {item} and keep the one on {label}, e.g. WHERE {label_cond} AND {item_cond}"
        return f"the query reads value from {table.name} {' and '.join(why)}: {fix}"
    return None


_RANKING = ("max", "min", "sum", "avg", "total")


def mixed_units(sql: str, tables: Sequence[Table], units: dict[str, dict[str, list[str]]]) -> str | None:
    """Why a query that ranks or aggregates a whole numeric column holding several units is meaningless, as an
    error for the repair attempt; None when the query is not such a query. "Which plan has the most months of
    metrics retention" answered by ``SELECT plan FROM plans ORDER BY metrics DESC`` puts 30 days above 25
    months. ``units`` maps a table's name to its numeric columns with a ``<name>_unit`` column and the units
    that column holds; only a SELECT without a WHERE (every row) is checked, and one that names the unit column
    anywhere is left alone."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="sqlite")
    for select in tree.find_all(exp.Select):
        read = _own(select, exp.Table)
        if len(read) != 1 or select.args.get("where") is not None:
            continue
        mixed = {c: u for c, u in units.get(read[0].name, {}).items() if len(u) > 1}
        named = {c.name.lower() for c in _own(select, exp.Column)}
        ranked = {c.name.lower() for f in _own(select, exp.AggFunc) if f.key in _RANKING
                  for c in f.find_all(exp.Column)}
        order = select.args.get("order")
        if order is not None:
            ranked |= {c.name.lower() for c in order.find_all(exp.Column) if not c.find_ancestor(exp.Count)}
        for col in sorted(ranked & set(mixed)):
            if f"{col}_unit" not in named:
                return (f"{col} in {read[0].name} holds numbers in different units ({', '.join(mixed[col])}): "
                        f"compare them within one unit, e.g. WHERE {col}_unit = '{mixed[col][-1]}'")
    return None


def extract_sql(reply: str) -> str:
    """The query in a model's reply: the first fenced block, else the text from the first SELECT or WITH."""
    m = re.search(r"```[a-zA-Z]*\s*\n?(.*?)(```|$)", reply, re.S)
    if m and m.group(1).strip():
        return m.group(1).strip()
    m = re.search(r"\b(SELECT|WITH)\b.*", reply, re.S | re.I)
    return m.group(0).strip() if m else reply.strip()


def schema_text(table: Table, sample: list[list[Any]], metadata: Sequence[str] = (), labels: str = "") -> str:
    """A table as the model sees it: CREATE TABLE with typed columns (units and original headers as comments),
    where it comes from (title, headings and the document's ``metadata`` fields it has, e.g. its date and
    status, so the model can tell the current version of a table from an older one), and sample rows. For a
    matrix in long form, ``labels`` (its row labels, from :func:`ragkit.index.tables.row_labels`) are listed
    beside the label column, so the model compares with a label that exists even when the sample rows do not
    show it."""
    from ragkit.index.tables import SQL_TYPES, is_long_form

    meta = "; ".join(f"{k} {table.metadata[k]}" for k in metadata if table.metadata.get(k) not in (None, ""))
    place = " > ".join([table.title, *table.heading]).strip(" >")
    lines = [f"-- {place}" + (f" ({meta})" if meta else ""), f"CREATE TABLE {table.name} ("]
    for i, c in enumerate(table.columns):
        note = ", ".join(x for x in (c.unit, f'"{c.header}"' if c.header else "") if x)
        if i == 0 and labels and is_long_form(table):
            note += f" one of: {labels}"
        comma = "," if i < len(table.columns) - 1 else ""
        lines.append(f"  {c.name} {SQL_TYPES.get(c.type, 'TEXT')}{comma}" + (f"  -- {note}" if note else ""))
    lines.append(");")
    if sample:
        lines.append(f"/* {len(sample)} example rows:")
        lines.append(" | ".join(c.name for c in table.columns))
        lines.extend(" | ".join("NULL" if v is None else str(v) for v in row) for row in sample)
        lines.append("*/")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{round(value, 4):g}" if abs(value) < 1e15 else str(value)
    return "NULL" if value is None else str(value)


def result_text(result: Result, units: dict[str, str]) -> str:
    """The result in words: one value; one row of named values; or a list of rows."""
    cols, rows = result.columns, result.rows
    if len(rows) == 1 and len(cols) == 1:
        unit = units.get(cols[0].lower(), "")
        value = _fmt(rows[0][0])
        return f"The answer is {value}{' ' + unit if unit and unit not in ('$', '%') else unit if unit == '%' else ''}"
    if len(rows) == 1:
        return "The answer is " + ", ".join(f"{c} = {_fmt(v)}" for c, v in zip(cols, rows[0]))
    items = "; ".join(", ".join(_fmt(v) for v in row) for row in rows[:20])
    more = f" (and {len(rows) - 20} more)" if len(rows) > 20 else ""
    cut = " (cut at the row limit)" if result.truncated else ""
    return f"The query returned {len(rows)} rows{cut} ({', '.join(cols)}): {items}{more}"


@dataclass
class SqlOutcome:
    answer: Answer | None  # None: fall back to passages
    reason: str = ""  # why there is no answer
    events: list[Event] = field(default_factory=list)


class SqlTool:
    """Picks the tables for a question (:meth:`pick`) and asks ``llm()`` for one checked query over them
    (:meth:`run`); the caller supplies the visible tables, the hits and the table database."""

    def __init__(self, cfg: SqlConfig, llm: Callable[[], Any]) -> None:
        self.cfg = cfg
        self._llm = llm

    def pick(self, hits: Sequence[Hit], table_hits: Sequence[Hit], visible: dict[str, Table],
             table_hit: Callable[[Table], Hit | None]) -> list[tuple[Table, Hit]]:
        """Up to ``max_tables`` tables: those whose description chunk was retrieved, then the tables of the
        documents whose passages were retrieved, in rank order; only ``visible`` ones."""
        out: dict[str, tuple[Table, Hit]] = {}
        by_doc: dict[str, list[Table]] = {}
        for t in visible.values():
            by_doc.setdefault(t.doc_id, []).append(t)
        for h in [*table_hits, *hits]:
            name = h.chunk.metadata.get("table")
            if name in visible and name not in out:
                out[name] = (visible[name], h)
        for h in hits:
            for t in by_doc.get(h.doc_id, []):
                if t.name not in out:
                    th = table_hit(t)
                    if th is not None:
                        out[t.name] = (t, th)
        return list(out.values())[: self.cfg.max_tables]

    def _sample(self, view: Any, name: str) -> list[list[Any]]:
        """``sample_rows`` rows, or every row of a table at most twice that long."""
        n = self.cfg.sample_rows
        if not n:
            return []
        return view.rows(name, None if view.n_rows(name) <= 2 * n else n)

    def _matrices(self, view: Any, tables: Sequence[Table]) -> dict[str, tuple[list[str], list[str]]]:
        """The row labels and the items (the original column headers) of each matrix in long form."""
        from ragkit.index.tables import is_long_form

        out = {}
        for t in tables:
            if is_long_form(t):
                rows = view.rows(t.name, MAX_LABEL_ROWS)
                out[t.name] = tuple([str(v) for v in dict.fromkeys(r[i] for r in rows) if v is not None]
                                    for i in (0, 1))
        return out

    def _units(self, view: Any, tables: Sequence[Table]) -> dict[str, dict[str, list[str]]]:
        """Each table's numeric columns that have a ``<name>_unit`` column, with the units it holds."""
        out: dict[str, dict[str, list[str]]] = {}
        for t in tables:
            names = [c.name.lower() for c in t.columns]
            pairs = [(names.index(n), names.index(n + "_unit")) for n, c in zip(names, t.columns)
                     if c.type in ("integer", "decimal") and n + "_unit" in names]
            if pairs:
                rows = view.rows(t.name, MAX_LABEL_ROWS)
                out[t.name] = {names[i]: [str(u) for u in dict.fromkeys(r[j] for r in rows) if u is not None]
                               for i, j in pairs}
        return out

    def _execute(self, sql: str, chosen: list[tuple[Table, Hit]], view: Any, events: list[Event],
                 unclear: Callable[[str], str | None]) -> tuple[str, Result]:
        """Check and run one query; a query ``unclear`` explains as wrong goes back (QueryError); an empty result
        is retried with text comparisons relaxed, a missing column on the one candidate table that has every
        column named. Raises SqlRejected or QueryError."""
        tables = [t for t, _ in chosen]
        names = [t.name for t in tables]
        checked = check_sql(sql, names)
        for rewrite, how in ((count_cell, "a COUNT of one matrix cell read as the cell's value"),
                             (count_flags, "a COUNT over a yes/no matrix counts its yes cells")):
            if (new := rewrite(checked, tables)) is not None:
                new = check_sql(new, names)
                events.append(Event("sql", f"sql: {how}: {new}", {"sql": checked, "rewritten": new}))
                checked = new
        if (why := unclear(checked)) is not None:
            raise QueryError(why)

        def run(q: str) -> Result:
            return view.run(q, names, max_rows=self.cfg.max_rows, timeout=self.cfg.timeout)

        try:
            result = run(checked)
        except QueryError as exc:
            moved = retarget(checked, tables) if "no such column" in str(exc) else None
            if moved is None:
                raise
            moved = check_sql(moved, names)
            events.append(Event("sql", f"sql: {exc}; moved to the table that has those columns: {moved}",
                                {"sql": checked, "retargeted": moved}))
            checked, result = moved, run(moved)
        for relax, how in ((relax_text_equality, "text comparisons relaxed to LIKE"),
                           (relax_words, "LIKE patterns split into their words")):
            if _empty(result) and (relaxed := relax(checked)) is not None:
                relaxed = check_sql(relaxed, names)
                events.append(Event("sql", f"sql: no rows; {how}: {relaxed}", {"sql": checked, "relaxed": relaxed}))
                checked, result = relaxed, run(relaxed)
        if _empty(result):
            raise QueryError("the query returned no rows (or only NULL): check the values you compare with "
                             "(spelling, case: use LIKE) and the columns")
        return checked, result

    def run(self, query: str, chosen: list[tuple[Table, Hit]], view: Any) -> SqlOutcome:
        if not chosen:
            return SqlOutcome(None, "no table fits the question",
                              [Event("sql", "sql: no table fits the question", {"tables": []})])
        from ragkit.index.tables import row_labels

        tables = [t for t, _ in chosen]
        names = [t.name for t in tables]
        events = [Event("sql", "sql: tables " + ", ".join(names), {"tables": names})]
        matrices, units = self._matrices(view, tables), self._units(view, tables)

        def unclear(sql: str) -> str | None:
            return matrix_filters(sql, tables, query, matrices) or mixed_units(sql, tables, units)

        schema = "\n\n".join(schema_text(t, self._sample(view, t.name), self.cfg.schema_metadata,
                                           row_labels(matrices[t.name][0]) if t.name in matrices else "")
                               for t in tables)
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": f"{schema}\n\nQuestion: {query}"}]
        llm = self._llm()
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        t0 = time.perf_counter()
        attempts = 2 if self.cfg.repair else 1
        error, sql, result = "", "", None
        for attempt in range(attempts):
            reply = llm.chat(messages, max_tokens=self.cfg.max_tokens, temperature=0.0)
            usage["prompt_tokens"] += reply.usage.prompt_tokens
            usage["completion_tokens"] += reply.usage.completion_tokens
            sql = extract_sql(reply.text)
            try:
                sql, result = self._execute(sql, chosen, view, events, unclear)
                events.append(Event("sql", f"sql: {sql}", {"sql": sql, "attempt": attempt + 1}))
                error = ""
                break
            except (SqlRejected, QueryError) as exc:
                result, error = None, str(exc)
                kind = "refused" if isinstance(exc, SqlRejected) else "failed"
                events.append(Event("sql", f"sql {kind} (attempt {attempt + 1}): {error} in: {sql[:300]}",
                                    {"sql": sql, "error": error, "attempt": attempt + 1,
                                     "refused": isinstance(exc, SqlRejected)}))
                columns = "; ".join(f"{t.name}({', '.join(c.name for c in t.columns)})" for t, _ in chosen)
                messages += [{"role": "assistant", "content": f"```sql\n{sql}\n```"},
                             {"role": "user", "content": f"That query failed: {error}\nThe tables you may use and "
                                                         f"their columns: {columns}\nWrite a corrected query."}]
        seconds = time.perf_counter() - t0
        if result is None:
            return SqlOutcome(None, f"the SQL query failed: {error}", events)
        table, hit = next(((t, h) for t, h in chosen if t.name in _read_tables(sql)), chosen[0])
        units = {c.name.lower(): c.unit for t, _ in chosen for c in t.columns if c.unit}
        text = result_text(result, units) + f" [1]. (SQL over table {table.name})"
        extras = {"route": "sql", "sql": sql, "columns": result.columns, "rows": [list(r) for r in result.rows],
                  "truncated": result.truncated, "table": table.name, "tables": names,
                  "source": table.source}
        events.append(Event("sql", f"sql: {len(result.rows)} rows in {result.seconds * 1000:.1f} ms",
                            {"rows": len(result.rows), "seconds": result.seconds}))
        answer = Answer(query=query, text=text, citations=[citation_for(1, hit)], sources=[hit],
                        timings={"sql": seconds}, usage=usage, packed=[1], events=events, extras=extras)
        return SqlOutcome(answer, "", events)


def _empty(result: Result) -> bool:
    return not result.rows or (len(result.rows) == 1 and all(v is None for v in result.rows[0]))


def _read_tables(sql: str) -> set[str]:
    import sqlglot
    from sqlglot import exp

    try:
        return {t.name for t in sqlglot.parse_one(sql, read="sqlite").find_all(exp.Table)}
    except sqlglot.errors.SqlglotError:
        return set()

