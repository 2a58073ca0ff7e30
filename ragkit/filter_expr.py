"""Metadata filter expressions, shared by the CLI, the Python API, the index branches and the server.

Forms (several are ANDed):
    product=cloud        product!=cloud       year>=2020   year<2023   date>=2024-01-01
    product in cloud,all product not in beta  status?      (field exists)    !status  (field is absent)
As a dict: {"product": "cloud", "year": {"gte": 2020}, "tier": ["a", "b"], "status": {"exists": True}}.
Numbers compare numerically, everything else as text (ISO dates order correctly as text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator

from ragkit.errors import ConfigError

_EXPR = re.compile(r"^\s*(?P<field>[\w.\-]+)\s*(?P<op>>=|<=|!=|==|=|>|<|\s+not\s+in\s+|\s+in\s+)\s*(?P<value>.*?)\s*$")
_OPS = {"=": "eq", "==": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # eq ne gt gte lt lte in nin exists missing
    value: Any = None

    def test(self, meta: dict[str, Any]) -> bool:
        present = self.field in meta and meta[self.field] is not None
        if self.op == "exists":
            return present
        if self.op == "missing":
            return not present
        if not present:
            return self.op in ("ne", "nin")
        have = meta[self.field]
        if isinstance(have, list):  # a list-valued field matches if any element does
            return any(self._test_one(h) for h in have) if self.op not in ("ne", "nin") \
                else all(self._test_one(h) for h in have)
        return self._test_one(have)

    def _test_one(self, have: Any) -> bool:
        op, want = self.op, self.value
        if op in ("in", "nin"):
            hit = any(_eq(have, w) for w in want)
            return hit if op == "in" else not hit
        if op == "eq":
            return _eq(have, want)
        if op == "ne":
            return not _eq(have, want)
        a, b = _comparable(have, want)
        if a is None:
            return False
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def number(x: Any) -> float | None:
    """The value as a number the way a filter reads it (a bool is not a number), else None."""
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    try:
        return float(str(x))
    except ValueError:
        return None


def _eq(have: Any, want: Any) -> bool:
    a, b = number(have), number(want)
    if a is not None and b is not None:
        return a == b
    return str(have).lower() == str(want).lower() if isinstance(have, bool) or isinstance(want, bool) \
        else str(have) == str(want)


def _comparable(have: Any, want: Any) -> tuple[Any, Any]:
    a, b = number(have), number(want)
    if a is not None and b is not None:
        return a, b
    return str(have), str(want)


@dataclass(frozen=True)
class Filter:
    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def test(self, meta: dict[str, Any]) -> bool:
        return all(c.test(meta) for c in self.conditions)

    def key(self) -> tuple:
        return tuple((c.field, c.op, tuple(c.value) if isinstance(c.value, list) else c.value)
                     for c in self.conditions)

    def __and__(self, other: "Filter") -> "Filter":
        return Filter(self.conditions + other.conditions)

    @classmethod
    def parse(cls, expr: str) -> "Filter":
        text = expr.strip()
        if text.endswith("?") and re.fullmatch(r"[\w.\-]+\?", text):
            return cls((Condition(text[:-1], "exists"),))
        if text.startswith("!") and re.fullmatch(r"![\w.\-]+", text):
            return cls((Condition(text[1:], "missing"),))
        m = _EXPR.match(text)
        if not m or not m.group("value") or m.group("value")[0] in "<>=!":
            raise ConfigError(f"filter {expr!r}: expected field=value, field!=value, field>=value, "
                              "field in a,b, field? or !field")
        op = m.group("op").strip()
        value = _scalar(m.group("value"))
        if op in ("in", "not in"):
            items = [_scalar(v) for v in m.group("value").split(",") if v.strip()]
            return cls((Condition(m.group("field"), "in" if op == "in" else "nin", items),))
        return cls((Condition(m.group("field"), _OPS[op], value),))

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> "Filter":
        conds = []
        for field, want in spec.items():
            if isinstance(want, list):
                conds.append(Condition(field, "in", _values(field, want)))
            elif isinstance(want, dict):
                for op, v in want.items():
                    op = {"$" + k: k for k in ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")}.get(op, op)
                    if op == "exists":
                        conds.append(Condition(field, "exists" if v else "missing"))
                    elif op in ("eq", "ne", "gt", "gte", "lt", "lte"):
                        conds.append(Condition(field, op, _value(field, v)))
                    elif op in ("in", "nin"):
                        if not isinstance(v, (list, tuple, set)):
                            raise ConfigError(f"filter on {field!r}: {op!r} takes a list of values, "
                                              f"not {type(v).__name__} {v!r}")
                        conds.append(Condition(field, op, _values(field, v)))
                    else:
                        raise ConfigError(f"filter on {field!r}: unknown operator {op!r} "
                                          "(eq, ne, gt, gte, lt, lte, in, nin, exists)")
            else:
                conds.append(Condition(field, "eq", _value(field, want)))
        return cls(tuple(conds))


def _value(field: str, value: Any) -> Any:
    """A filter value must be text, a number, a boolean or null: nested tables and lists are refused."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ConfigError(f"filter on {field!r}: a value must be text, a number or a boolean, not {type(value).__name__} "
                      "(filters are field: value pairs, ANDed; there is no nesting)")


def _values(field: str, values: Any) -> list[Any]:
    return [_value(field, v) for v in values]


def _scalar(text: str) -> Any:
    text = text.strip().strip("'\"")
    return text


def to_filter(spec: "Filter | str | list[str] | dict[str, Any] | None") -> Filter:
    if spec is None:
        return Filter()
    if isinstance(spec, Filter):
        return spec
    if isinstance(spec, str):
        return Filter.parse(spec)
    if isinstance(spec, dict):
        return Filter.from_dict(spec)
    out = Filter()
    for item in spec:
        out = out & to_filter(item)
    return out


def _parses(expr: str) -> str:
    Filter.parse(expr)
    return expr


#: A config field holding one filter expression, checked when the config is read (rules' ``when``, routes).
FilterText = Annotated[str, AfterValidator(_parses)]
