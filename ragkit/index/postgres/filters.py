"""A metadata filter (:class:`ragkit.filter_expr.Filter`) compiled to one SQL condition on the ``chunks`` table
(alias ``c``), with exactly the semantics of ``Filter.test``: a missing or null field fails every operator but
``!=`` / ``not in``; a list-valued field matches if any element does (``!=`` / ``not in``: if every element
does); values that both read as numbers compare as numbers, anything else as text (code-point order).

String equality (``field=text``, ``field in a,b``) compiles to ``metadata @> ...`` so the GIN index on
the metadata answers selective filters without a scan. The helper functions ``ragkit_num`` / ``ragkit_str``
are created by the schema migrations.
"""

from __future__ import annotations

import json
from typing import Any

from ragkit.filter_expr import Condition, Filter, number

_CMP = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class Compiler:
    """Builds the SQL text with every value inlined as a quoted literal (``%`` doubled for the driver's
    placeholder syntax); ``schema`` qualifies the helper functions."""

    def __init__(self, schema: str) -> None:
        self.fn = f'"{schema}".'

    @staticmethod
    def p(value: Any) -> str:
        if isinstance(value, float):
            return f"'{value!r}'::float8"
        return "'" + str(value).replace("'", "''").replace("%", "%%") + "'"

    def value(self, field: str) -> str:
        """The field's jsonb value (SQL NULL when the key is absent); ``doc_id`` falls back to the chunk's."""
        if field == "doc_id":
            return "(CASE WHEN c.metadata ? 'doc_id' THEN c.metadata->'doc_id' ELSE to_jsonb(c.doc_id) END)"
        return f"(c.metadata->{self.p(field)})"

    def eq(self, e: str, want: Any) -> str:
        """One scalar jsonb ``e`` equals ``want``."""
        n = number(want)
        text = str(want)
        if n is not None:
            out = f"{self.fn}ragkit_num({e}) = {self.p(n)}"
        elif isinstance(want, bool):
            out = f"lower({self.fn}ragkit_str({e})) = {self.p(text.lower())}"
        else:
            out = (f"CASE WHEN jsonb_typeof({e}) = 'boolean' THEN ({e} #>> '{{}}') = {self.p(text.lower())} "
                   f"ELSE {self.fn}ragkit_str({e}) = {self.p(text)} END")
        return f"COALESCE({out}, false)"

    def one(self, e: str, c: Condition) -> str:
        """The condition on one scalar element."""
        if c.op in ("eq", "ne"):
            out = self.eq(e, c.value)
            return out if c.op == "eq" else f"(NOT {out})"
        if c.op in ("in", "nin"):
            out = "(" + " OR ".join(self.eq(e, w) for w in c.value) + ")" if c.value else "false"
            return out if c.op == "in" else f"(NOT {out})"
        op = _CMP[c.op]
        text = self.p(str(c.value))
        if number(c.value) is None:
            return f'({self.fn}ragkit_str({e}) COLLATE "C" {op} {text})'
        n = self.p(number(c.value))
        return (f"(CASE WHEN {self.fn}ragkit_num({e}) IS NOT NULL THEN {self.fn}ragkit_num({e}) {op} {n} "
                f'ELSE {self.fn}ragkit_str({e}) COLLATE "C" {op} {text} END)')

    def contains(self, c: Condition) -> str | None:
        """``metadata @> ...`` for string equality (GIN-indexed), when that is exactly the condition."""
        wants = [c.value] if c.op == "eq" else c.value if c.op == "in" else None
        if not wants or c.field == "doc_id":
            return None
        for w in wants:
            if not isinstance(w, str) or number(w) is not None or w.lower() in ("true", "false"):
                return None
        parts = []
        for w in wants:
            parts.append(f"c.metadata @> {self.p(json.dumps({c.field: w}))}::jsonb")
            parts.append(f"c.metadata @> {self.p(json.dumps({c.field: [w]}))}::jsonb")
        return "(" + " OR ".join(parts) + ")"

    def condition(self, c: Condition) -> str:
        fast = self.contains(c)
        if fast is not None:
            return fast
        v = self.value(c.field)
        present = f"({v} IS NOT NULL AND jsonb_typeof({v}) <> 'null')"
        if c.op == "exists":
            return present
        if c.op == "missing":
            return f"(NOT {present})"
        negative = c.op in ("ne", "nin")
        if negative:  # every element must pass: no element matches the positive form
            positive = Condition(c.field, "eq" if c.op == "ne" else "in", c.value)
            listed = f"(NOT EXISTS (SELECT 1 FROM jsonb_array_elements({v}) e WHERE {self.one('e', positive)}))"
        else:
            listed = f"(EXISTS (SELECT 1 FROM jsonb_array_elements({v}) e WHERE {self.one('e', c)}))"
        return (f"(CASE WHEN NOT {present} THEN {'true' if negative else 'false'} "
                f"WHEN jsonb_typeof({v}) = 'array' THEN {listed} ELSE COALESCE({self.one(v, c)}, false) END)")


def compile_filter(flt: Filter, schema: str) -> str:
    """``flt`` as one SQL boolean expression over ``chunks c`` (``true`` when empty)."""
    comp = Compiler(schema)
    parts = [comp.condition(c) for c in flt.conditions]
    return " AND ".join(parts) if parts else "true"
