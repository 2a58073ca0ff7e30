"""The query path, shared by every caller (``Engine.query``/``query_stream``, the server, ``ragkit ablate``):

    first_stage:  pre-filter -> transforms -> branches (bm25 | dense, inside the pre-filter) -> fusion
    post_stage:   rerankers -> filters -> top k
    generate / generate_stream:  the generator on the final hits, timings and trace merged into the Answer

Each function takes what it needs as arguments (a store read view, the plugins, the query vector function) and
returns plain data, so callers share the path without re-assembling it. Every stage records its time in
``timings`` and a line in ``trace``; every hit keeps its rank and score at every stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ragkit.errors import RagkitError
from ragkit.filter_expr import Filter, to_filter
from ragkit.generate.sql import SqlTool
from ragkit.index.store import Candidates, Ranking, StoreReader, search_both
from ragkit.index.tables import TABLE_POSITION
from ragkit.plugins import BRANCHES, Plugin, QueryBundle, QueryVariant
from ragkit.retrieve.router import Router
from ragkit.types import Answer, Chunk, Event, Hit, Table

MODES = ("bm25", "dense", "hybrid")


@dataclass
class Retrieval:
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)
    filter: Filter | None = None  # the metadata filter the hits were retrieved inside (the SQL tool keeps to it)


@dataclass
class SearchScope:
    """What a transform that runs a first retrieval pass (PRF) may search: the query's read view, inside the
    query's pre-filter."""

    reader: StoreReader
    candidates: Candidates | None = None

    def sparse_search(self, text: str, k: int) -> list[tuple[Chunk, float]]:
        if not text.strip():
            return []
        rows, scores = self.reader.sparse_search(QueryBundle(text), k, self.candidates)
        return list(zip(self.reader.chunks(rows), (float(s) for s in scores)))


def table_view(reader: StoreReader | None) -> Any:
    """The reader's SQL tables (``reader.tables()``), or None when the store keeps none."""
    get = getattr(reader, "tables", None)
    return get() if get is not None else None


def visible_tables(view: Any, filter: Any = None) -> list[Any]:
    """The catalog entries of ``view`` whose document passes ``filter`` (every one without a filter)."""
    flt = to_filter(filter)
    return [t for t in view.tables() if not flt or flt.test({**t.metadata, "doc_id": t.doc_id})]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise RagkitError(f"unknown retrieval mode {mode!r} (bm25, dense, hybrid)")
    return mode


# --- first stage ---------------------------------------------------------------------------------------------

def first_stage(reader: StoreReader | None, query: str, *, mode: str, depth: int, candidates: int,
                transforms: Sequence[Plugin], fusion: Plugin, embed_query: Callable[[str], np.ndarray],
                filter: Any = None) -> Retrieval:
    """Candidates for ``query``: up to ``candidates`` per branch and variant, fused, cut to ``depth``."""
    check_mode(mode)
    out = Retrieval([])
    if reader is None or not query.strip():
        out.trace.append("empty index" if reader is None else "empty query")
        return out
    flt = to_filter(filter)
    out.filter = flt
    allowed = _prefilter(reader, flt, out)
    variants = run_transforms(transforms, query, SearchScope(reader, allowed), out)
    rankings = _search(reader, variants, mode, candidates, allowed, flt, embed_query, out)
    if not rankings:
        out.trace.append(f"no query variant targets the {mode} branch")
        return out
    t = time.perf_counter()
    if len(rankings) == 1:
        (stage, (rows, scores)), = rankings.items()
    else:
        stage = fusion.name
        rows, scores = fusion.fuse(rankings, candidates)
        out.timings["fusion"] = time.perf_counter() - t
    out.trace.append(" + ".join(rankings) + (f" -> fusion {stage}" if len(rankings) > 1 else ""))
    out.hits = _hits(reader, rows[:depth], scores[:depth], rankings, stage if len(rankings) > 1 else None)
    return out


def _prefilter(reader: StoreReader, flt: Filter, out: Retrieval) -> Candidates | None:
    if not flt:
        return None
    t = time.perf_counter()
    allowed = reader.candidates(flt)
    out.timings["filter_mask"] = time.perf_counter() - t
    out.trace.append(f"pre-filter: {allowed.describe()}")
    return allowed


def run_transforms(transforms: Sequence[Plugin], query: str, scope: SearchScope, out: Retrieval) \
        -> list[QueryVariant]:
    """Every transform on every variant so far; a variant's outputs run only on branches both allow."""
    variants = [QueryVariant(query)]
    for tr in transforms:
        t = time.perf_counter()
        variants = [item for v in variants for item in _transform_one(tr, v, scope)]
        out.timings[f"transform:{tr.name}"] = time.perf_counter() - t
        out.trace.append(f"transform {tr.name}: " + " | ".join(
            f"{'+'.join(v.branches)}: {v.text[:60]!r}" for v in variants))
    return variants


def _transform_one(tr: Plugin, v: QueryVariant, scope: SearchScope) -> list[QueryVariant]:
    out = []
    for item in tr.transform(v.text, scope):
        item = item if isinstance(item, QueryVariant) else QueryVariant(str(item))
        unknown = set(item.branches) - set(BRANCHES)
        if unknown:
            raise RagkitError(f"transform {tr.name!r}: unknown branch {sorted(unknown)[0]!r} "
                              f"(branches: {', '.join(BRANCHES)})")
        branches = tuple(b for b in item.branches if b in v.branches)
        flt = (item.filter,) if isinstance(item.filter, str) else tuple(item.filter)
        if branches and item.text.strip():
            out.append(QueryVariant(item.text, branches, item.label or v.label, v.filter + flt))
    return out


def _search(reader: StoreReader, variants: list[QueryVariant], mode: str, k: int, allowed: Candidates | None,
            flt: Filter, embed_query: Callable[[str], np.ndarray], out: Retrieval) -> dict[str, Ranking]:
    """One ranking per (variant, active branch), named ``bm25``, ``dense``, ``bm25#prf``, ..."""
    active = {"bm25": mode in ("bm25", "hybrid"), "dense": mode in ("dense", "hybrid")}
    rankings: dict[str, Ranking] = {}
    for qi, v in enumerate(variants):
        bundle = QueryBundle(v.text, embed_query)
        v_allowed = allowed
        if v.filter:
            v_allowed = reader.candidates(flt & to_filter(list(v.filter)))
        branches = [b for b in v.branches if active.get(b)]
        t = time.perf_counter()
        if set(branches) == {"bm25", "dense"}:  # both at once: one round trip where the store can
            found = dict(zip(("bm25", "dense"), search_both(reader, bundle, k, v_allowed)))
            out.timings["hybrid"] = out.timings.get("hybrid", 0) + time.perf_counter() - t
        else:
            found = {}
            for branch in branches:
                search = reader.sparse_search if branch == "bm25" else reader.dense_search
                t = time.perf_counter()
                found[branch] = search(bundle, k, v_allowed)
                out.timings[branch] = out.timings.get(branch, 0) + time.perf_counter() - t
        for branch in branches:
            name = branch
            if name in rankings:
                name = f"{branch}#{v.label or qi}"
                if name in rankings:
                    name = f"{name}.{qi}"
            rankings[name] = found[branch]
    return rankings


def _hits(reader: StoreReader, rows: np.ndarray, scores: np.ndarray, rankings: dict[str, Ranking],
          fused: str | None) -> list[Hit]:
    per_branch = {name: {int(r): (i + 1, float(s)) for i, (r, s) in enumerate(zip(*rk))}
                  for name, rk in rankings.items()}
    hits = []
    for rank, (row, chunk, score) in enumerate(zip(rows, reader.chunks(rows), scores), start=1):
        h = Hit(chunk=chunk, score=float(score))
        for name, table in per_branch.items():
            if int(row) in table:
                h.ranks[name], h.scores[name] = table[int(row)]
        if fused is not None:
            h.scores[fused], h.ranks[fused] = float(score), rank
        hits.append(h)
    return hits


# --- post stage ----------------------------------------------------------------------------------------------

def post_stage(query: str, retrieval: Retrieval, processors: Sequence[Plugin], k: int) -> Retrieval:
    """Rerankers then filters, in order, on the first stage's hits; the top ``k`` remain. ``retrieval`` is not
    changed (first-stage results can be shared by several post stages)."""
    out = Retrieval([_copy(h) for h in retrieval.hits], dict(retrieval.timings), list(retrieval.trace),
                    retrieval.filter)
    for p in processors:
        t = time.perf_counter()
        out.hits = p.process(query, out.hits)
        out.timings[f"{p.stage}:{p.name}"] = time.perf_counter() - t
        out.trace.append(f"{p.stage} {p.name}")
    out.hits = out.hits[:k]
    return out


def _copy(h: Hit) -> Hit:
    return Hit(h.chunk, h.score, dict(h.scores), dict(h.ranks))


# --- route: passages or the SQL tool ------------------------------------------------------------------------

@dataclass
class TableRoute:
    """What a routed answer needs: the router, the SQL tool, the read view, and a search for table description
    chunks inside a filter (``search(query, filter) -> hits``)."""

    router: Router
    tool: SqlTool
    reader: StoreReader | None
    search: Callable[[str, Filter], list[Hit]]


def _table_hit(reader: StoreReader, table: Table) -> Hit | None:
    """The description chunk of ``table`` (as a hit), found among its document's table positions."""
    found = reader.neighbours(table.doc_id, range(TABLE_POSITION, TABLE_POSITION + 200))
    chunk = next((c for c in found.values() if c.metadata.get("table") == table.name), None)
    return Hit(chunk, 0.0) if chunk is not None else None


def route_answer(route: TableRoute, query: str, retrieval: Retrieval) -> tuple[Answer | None, list[Event], str]:
    """Route the question; for ``sql`` / ``both``, try the SQL tool over the tables the retrieval's filter lets
    it see. Returns (the SQL answer or None, the events, why there is no SQL answer)."""
    t = time.perf_counter()
    decision = route.router.route(query)
    events = [Event("route", f"route: {decision.route} ({decision.reason})",
                    {"route": decision.route, "reason": decision.reason, "p_sql": decision.p_sql,
                     "seconds": time.perf_counter() - t})]
    if decision.route == "passages":
        return None, events, ""
    view = table_view(route.reader)
    visible = {t.name: t for t in visible_tables(view, retrieval.filter)} if view is not None else {}
    if not visible:
        events.append(Event("sql", "sql: no table is visible to this request"))
        return None, events, "no table is visible to this request"
    table_hits = route.search(query, retrieval.filter or Filter())
    chosen = route.tool.pick(retrieval.hits, table_hits, visible, lambda tb: _table_hit(route.reader, tb))
    outcome = route.tool.run(query, chosen, view)
    events += [e for e in outcome.events]
    if outcome.answer is None:
        return None, events, outcome.reason
    answer = outcome.answer
    answer.events = events
    answer.extras["route"] = decision.route
    if decision.route == "both":
        answer.sources += [h for h in retrieval.hits if h.chunk_id != answer.sources[0].chunk_id]
    return answer, events, ""


def _fallback(answer: Answer, events: list[Event], reason: str) -> Answer:
    answer.events = events + answer.events
    if reason:
        answer.warnings.append(f"answered from passages: {reason}")
        answer.extras.update({"route": "passages", "fallback": reason})
    return answer


# --- generate ------------------------------------------------------------------------------------------------

def _finish(answer: Answer, generator: Plugin, retrieval: Retrieval, timings: dict[str, float],
            name: str | None = None) -> Answer:
    name = name or generator.name
    answer.timings.update({**retrieval.timings, **timings})
    answer.events = ([Event("retrieval", line) for line in retrieval.trace]
                     + [Event("generator", f"generator {name}", {"name": name})] + answer.events)
    return answer


def generate(generator: Plugin, query: str, retrieval: Retrieval, started: float | None = None,
             route: TableRoute | None = None) -> Answer:
    """The generator's answer on the retrieval's hits; ``started`` (perf_counter) dates ``timings['total']``.
    With a ``route``, a question routed to SQL is answered by the SQL tool when it can."""
    t = time.perf_counter()
    events, reason = [], ""
    if route is not None:
        sql_answer, events, reason = route_answer(route, query, retrieval)
        if sql_answer is not None:
            end = time.perf_counter()
            return _finish(sql_answer, generator, retrieval, {"generate": end - t, "total": end - (started or t)},
                           name="sql")
    answer = _fallback(generator.answer(query, retrieval.hits), events, reason)
    end = time.perf_counter()
    return _finish(answer, generator, retrieval, {"generate": end - t, "total": end - (started or t)})


def generate_stream(generator: Plugin, query: str, retrieval: Retrieval,
                    started: float | None = None, route: TableRoute | None = None) -> Iterator[str | Answer]:
    """Text deltas as the generator writes them, then the checked Answer (timings incl. ``first_token``)."""
    t = time.perf_counter()
    events, reason = [], ""
    if route is not None:
        sql_answer, events, reason = route_answer(route, query, retrieval)
        if sql_answer is not None:
            yield sql_answer.text
            end = time.perf_counter()
            yield _finish(sql_answer, generator, retrieval, {"generate": end - t, "first_token": end - t,
                                                             "total": end - (started or t)}, name="sql")
            return
    first = None
    answer = None
    for item in generator.stream(query, retrieval.hits):
        if isinstance(item, Answer):
            answer = item
            continue
        if first is None:
            first = time.perf_counter() - t
        yield item
    if answer is None:
        raise RagkitError(f"generator {generator.name!r} ended its stream without an answer")
    answer = _fallback(answer, events, reason)
    end = time.perf_counter()
    timings = {"generate": end - t, **({"first_token": first} if first is not None else {}),
               "total": end - (started or t)}
    yield _finish(answer, generator, retrieval, timings)
