"""The ``postgres`` store: an index in a PostgreSQL database with pgvector, named by a URL
(``postgresql://user@host/db``; ``?schema=NAME`` keeps several indexes in one database).

Several processes on several machines read one index; one writer at a time (a session advisory lock) builds
the next generation inside one transaction and makes it current by committing it. Rows are versioned by
generation (see ``schema.py``), so an open reader keeps the version it opened. Readers map the chunk ids of
their generation to rows ``0..n-1`` in id order (the order chunks were added, as in the embedded store).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.errors import IndexConfigMismatch, IndexCorruptError, IndexLockedError, RagkitError, first_line
from ragkit.filter_expr import Filter
from ragkit.index.embedded.generations import crash_point, now
from ragkit.index.postgres import search
from ragkit.index.postgres.connect import StoreUnavailable, connect, explain, pool, redact, split_url
from ragkit.index.postgres.filters import compile_filter
from ragkit.index.postgres.schema import RETAIN_SECONDS, SCHEMA_VERSION, migrate, visible
from ragkit.index.settings import Settings, first_difference
from ragkit.index.store import Candidates, DocRecord, FileRecord, Ranking
from ragkit.lru import LRU
from ragkit.plugins import QueryBundle, registry
from ragkit.types import Chunk

LOCK_WAIT = 2.0  # seconds a second writer waits for the lock before it is refused
_EMPTY: Ranking = (np.zeros(0, np.int64), np.zeros(0, np.float32))
_CHUNK_COLUMNS = ("id", "added_in", "chunk_id", "doc_id", "position", "text", "metadata", "n_tokens", "terms",
                  "tfs", "embedding")
_CHUNK_TYPES = ["int8", "int4", "text", "text", "int4", "text", "jsonb", "int4", "text[]", "int4[]", "bytea"]


def gen_name(gen: int) -> str:
    return f"g{gen:06d}"


HNSW_BUILD_MEMORY_CAP_MB = 4096


def hnsw_build_memory_mb(n_chunks: int, dim: int, m: int) -> int:
    """The memory an HNSW build needs to keep its graph in memory (pgvector builds far slower once the graph
    outgrows maintenance_work_mem): per vector its floats plus about 2m neighbour slots of layer 0 and the
    upper layers' share, with 25% slack; at least 512 MB and at most HNSW_BUILD_MEMORY_CAP_MB."""
    per_vector = 4 * dim + 48 * m + 64
    return int(min(max(512, n_chunks * per_vector * 1.25 / 2 ** 20), HNSW_BUILD_MEMORY_CAP_MB))


def parse_memory_mb(setting: str) -> float:
    """A PostgreSQL memory setting as SHOW prints it ('64MB', '1GB', '512kB') in MB."""
    units = {"kB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024 ** 2}
    for unit, scale in units.items():
        if setting.endswith(unit):
            return float(setting[: -len(unit)]) * scale
    return float(setting) / 2 ** 20  # plain bytes


# the graph when [dense] does not ask for HNSW itself: pgvector's own defaults (m 16, ef_construction 64) recall
# too little on large clustered indexes; ef_construction 128 with ef_search 200 recalled 0.978 at 1M chunks
# (benchmarks/pg_hnsw_params.py)
HNSW_DEFAULTS = {"m": 16, "ef_construction": 128, "ef_search": 200}


def hnsw_params(dense: dict[str, Any]) -> dict[str, int]:
    """HNSW graph parameters: the dense spec's ``hnsw_m`` / ``ef_construction`` / ``ef_search`` when it asks for
    an HNSW index (the same graph the embedded store builds), else HNSW_DEFAULTS (past HNSW_FROM chunks postgres
    always searches a graph, even for a spec that asks the embedded store for exact search)."""
    if dense.get("index") != "hnsw":
        return dict(HNSW_DEFAULTS)
    return {"m": int(dense.get("hnsw_m", HNSW_DEFAULTS["m"])),
            "ef_construction": int(dense.get("ef_construction", HNSW_DEFAULTS["ef_construction"])),
            "ef_search": int(dense.get("ef_search", HNSW_DEFAULTS["ef_search"]))}


class PostgresReader:
    """One committed generation of a postgres index (read-only; later commits do not change it)."""

    def __init__(self, store: "PostgresStore", row: tuple) -> None:
        gen, created, settings, model_id, dim, n_docs, n_chunks, n_tokens = row
        self.store, self.gen, self.name = store, gen, gen_name(gen)
        self.settings, self.model_id, self.dim = settings, model_id, dim
        self.n_documents, self.n_chunks, self.created = n_docs, n_chunks, created
        self.n_tokens = int(n_tokens)
        self.bm25 = search.bm25_params(settings["sparse"])
        self.analyzer = registry.create("sparse", settings["sparse"]).analyzer
        self.hnsw = hnsw_params(settings.get("dense", {}))
        self._s = f'"{store.schema}"'
        self._ids: np.ndarray | None = None
        self._lengths: np.ndarray | None = None  # BM25 tokens per row
        self._row_of: np.ndarray | None = None  # chunk id -> row (-1: not seen by this generation)
        self._lock = threading.Lock()
        self._masks: LRU[tuple, Candidates] = LRU(128)
        self._allowed: LRU[str, np.ndarray] = LRU(128)  # filter condition -> row mask

    # --- plumbing ---

    def _q(self, sql: str, params: Any = None) -> list[tuple]:
        return self.store.query(sql, {"gen": self.gen, **(params or {})})

    def ids(self) -> np.ndarray:
        """The chunk ids this generation sees, ascending: row r is ``ids()[r]``."""
        with self._lock:
            if self._ids is None:
                sql = (f"COPY (SELECT c.id, c.n_tokens FROM {self._s}.chunks c WHERE "
                       f"{visible('c', str(int(self.gen)))} ORDER BY c.id) TO STDOUT (FORMAT BINARY)")
                data = self.store.copy_out(sql)
                ids, lengths = search.copy_columns(data, (">i8", ">i4"))
                if len(ids) != self.n_chunks:
                    raise IndexCorruptError(f"{self.store.where}: generation {self.name} holds {len(ids)} chunks, "
                                            f"its record says {self.n_chunks} (collected? reopen the index)")
                self._lengths = lengths.astype(np.float64)
                self._ids = ids
            return self._ids

    def row_of(self) -> np.ndarray:
        """Chunk id -> this generation's row, -1 for the ids it does not see."""
        ids = self.ids()
        with self._lock:
            if self._row_of is None:
                row_of = np.full(int(ids[-1]) + 1 if len(ids) else 0, -1, np.int64)
                row_of[ids] = np.arange(len(ids))
                self._row_of = row_of
            return self._row_of

    def _allowed_rows(self, condition: str) -> np.ndarray:
        """The rows a compiled filter lets through, as a mask over rows (read once per filter and reader: the
        BM25 branch scores only these; the dense branch's SQL applies the condition itself)."""
        mask = self._allowed.get(condition)
        if mask is None:
            data = self.store.copy_out(f"COPY (SELECT c.id FROM {self._s}.chunks c WHERE {visible('c')} AND "
                                       f"({condition})) TO STDOUT (FORMAT BINARY)", {"gen": self.gen})
            (ids,) = search.copy_columns(data, (">i8",))
            mask = np.zeros(len(self.ids()), bool)
            mask[self.row_of()[ids]] = True
            self._allowed.put(condition, mask)
        return mask

    def _rows(self, found: list[tuple]) -> Ranking:
        if not found:
            return _EMPTY
        ids = np.array([r[0] for r in found], dtype=np.int64)
        rows = np.searchsorted(self.ids(), ids)
        return rows.astype(np.int64), np.array([r[1] for r in found], dtype=np.float32)

    def warm_up(self) -> None:
        self.ids()

    def close(self) -> None:
        """Nothing to release: connections belong to the process's pool."""

    # --- contents ---

    def documents(self) -> list[DocRecord]:
        return [DocRecord(d, s, t or "", m) for d, s, t, m in self._q(
            f"SELECT doc_id, source, title, metadata FROM {self._s}.documents d WHERE {visible('d')} "
            "ORDER BY doc_id")]

    def files(self) -> dict[str, FileRecord]:
        return {s: FileRecord(s, h, size, mtime, list(ids)) for s, h, size, mtime, ids in self._q(
            f"SELECT source, sha256, size, mtime, doc_ids FROM {self._s}.files f WHERE {visible('f')}")}

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        if not len(rows):
            return []
        wanted = self.ids()[np.asarray(rows, dtype=np.int64)].tolist()
        found = {i: Chunk(cid, did, text, pos, meta) for i, cid, did, pos, text, meta in self._q(
            f"SELECT id, chunk_id, doc_id, position, text, metadata FROM {self._s}.chunks "
            "WHERE id = ANY(%(ids)s)", {"ids": sorted(set(wanted))})}
        if len(found) < len(set(wanted)):
            raise IndexCorruptError(f"{self.store.where}: chunks of generation {self.name} were collected "
                                    "(held open too long); reopen the index")
        return [found[i] for i in wanted]

    def iter_chunks(self) -> list[Chunk]:
        return [Chunk(cid, did, text, pos, meta) for cid, did, pos, text, meta in self._q(
            f"SELECT chunk_id, doc_id, position, text, metadata FROM {self._s}.chunks c WHERE {visible('c')} "
            "ORDER BY id")]

    def neighbours(self, doc_id: str, positions: Sequence[int]) -> dict[int, Chunk]:
        pos = [int(p) for p in positions]
        if not pos:
            return {}
        return {p: Chunk(cid, did, text, p, meta) for cid, did, p, text, meta in self._q(
            f"SELECT chunk_id, doc_id, position, text, metadata FROM {self._s}.chunks c WHERE c.doc_id = "
            f"%(doc)s AND c.position = ANY(%(pos)s) AND {visible('c')}", {"doc": doc_id, "pos": pos})}

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, self.dim), np.float32)
        wanted = self.ids()[np.asarray(rows, dtype=np.int64)].tolist()
        found = dict(self._q(f"SELECT id, embedding::text FROM {self._s}.chunks WHERE id = ANY(%(ids)s)",
                             {"ids": sorted(set(wanted))}))
        return np.stack([search.parse_vector(found[i]) for i in wanted])

    # --- search ---

    def candidates(self, flt: Filter) -> Candidates:
        key = flt.key()
        cached = self._masks.get(key)
        if cached is None:
            condition = compile_filter(flt, self.store.schema)
            count = int(self._allowed_rows(condition).sum())
            cached = Candidates(flt, count, self.n_chunks, condition)
            self._masks.put(key, cached)
        return cached

    def analyze(self, text: str) -> list[str]:
        return list(self.analyzer(text))

    def sparse_search(self, query: QueryBundle, k: int, candidates: Candidates | None) -> Ranking:
        plan = self._sparse_plan(query, k, candidates)
        return _EMPTY if plan is None else plan[2](self.store.query(plan[0], plan[1], binary=True))

    def dense_search(self, query: QueryBundle, k: int, candidates: Candidates | None) -> Ranking:
        plan = self._dense_plan(query, k, candidates)
        if plan is None:
            return _EMPTY
        sql, params, setup, want = plan
        found = self.store.query(sql, params, setup=setup)
        return self._rows(found if len(found) >= want else self._dense_exact(query, k, candidates))

    def hybrid_search(self, query: QueryBundle, k: int, candidates: Candidates | None) -> tuple[Ranking, Ranking]:
        """Both branches' top-k in one round trip to the server (psycopg's pipeline mode); a second one only when
        the HNSW walk comes back short under a selective filter and the exact query has to answer."""
        sparse, dense = self._sparse_plan(query, k, candidates), self._dense_plan(query, k, candidates)
        statements = ([(sparse[0], sparse[1], True)] if sparse is not None else []) + \
            ([(dense[0], dense[1], False)] if dense is not None else [])
        setup = dense[2] if dense is not None else []
        results = iter(self.store.query_pipelined(statements, setup) if statements else [])
        bm25 = _EMPTY if sparse is None else sparse[2](next(results))
        if dense is None:
            return bm25, _EMPTY
        found = next(results)
        return bm25, self._rows(found if len(found) >= dense[3] else self._dense_exact(query, k, candidates))

    def _sparse_plan(self, query: QueryBundle, k: int,
                     candidates: Candidates | None) -> tuple[str, dict, Callable[[list[tuple]], Ranking]] | None:
        """(sql, params, scoring) of the BM25 branch: the SQL reads the query terms' posting blocks, the scoring
        function turns its rows into the ranking."""
        tokens = self.analyze(query.text)
        if not tokens or not self.n_chunks or (candidates is not None and not candidates.count) or k <= 0:
            return None
        terms, counts = search.term_counts(tokens)
        qtf = dict(zip(terms, counts))
        row_of, lengths = self.row_of(), self._lengths
        allowed = None if candidates is None else self._allowed_rows(candidates.native)
        avglen = self.n_tokens / self.n_chunks if self.n_tokens else 1.0

        def score(blocks: list[tuple]) -> Ranking:
            rows, scores = search.bm25_top_k(blocks, qtf, row_of, lengths, avglen, self.bm25, int(k), allowed)
            return (rows, scores) if len(rows) else _EMPTY

        return search.blocks_sql(self.store.schema, visible("b")), {"gen": self.gen, "terms": terms}, score

    def _dense_plan(self, query: QueryBundle, k: int,
                    candidates: Candidates | None) -> tuple[str, dict, list[str], int] | None:
        """(sql, params, setup statements, how many rows it must return) of the dense query: through the HNSW
        index with an iterative scan from EXACT_BELOW passing chunks (FILTERED_EXACT_BELOW under a filter), else
        exact."""
        passing = self.n_chunks if candidates is None else candidates.count
        if not passing or k <= 0:
            return None
        exact_below = search.EXACT_BELOW if candidates is None else \
            max(search.EXACT_BELOW, search.FILTERED_EXACT_BELOW)
        condition = "true" if candidates is None else candidates.native
        params = {"gen": self.gen, "q": search.vector_text(query.vector), "k": int(k)}
        want = min(int(k), passing)
        if passing >= exact_below and self.store.has_hnsw():
            ef = max(self.hnsw["ef_search"], min(int(k), 1000))
            return (search.dense_sql(self.store.schema, visible("c"), condition, exact=False), params,
                    [f"SET LOCAL hnsw.ef_search = {ef}", "SET LOCAL hnsw.iterative_scan = strict_order"], want)
        return search.dense_sql(self.store.schema, visible("c"), condition, exact=True), params, [], 0

    def _dense_exact(self, query: QueryBundle, k: int, candidates: Candidates | None) -> list[tuple]:
        condition = "true" if candidates is None else candidates.native
        return self._q(search.dense_sql(self.store.schema, visible("c"), condition, exact=True),
                       {"q": search.vector_text(query.vector), "k": int(k)})


class PostgresWriter:
    """Builds the next generation inside the writer's transaction; ``commit()`` makes it current."""

    def __init__(self, store: "PostgresStore", conn, settings: Settings, current: PostgresReader | None,
                 rebuild: bool, model_id: str) -> None:
        self.store, self.conn, self.settings, self.current = store, conn, settings, current
        self.previous = None if rebuild else current
        self._model_id = model_id
        self._s = f'"{store.schema}"'
        with conn.cursor() as cur:
            cur.execute(f"SELECT coalesce(max(gen), 0) + 1 FROM {self._s}.generations")
            self.gen = cur.fetchone()[0]
            cur.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {self._s}.chunks")
            self._next_id = cur.fetchone()[0]
            # never reuse the id of a chunk that was removed and collected: its postings live on in old blocks
            cur.execute(f"SELECT value FROM {self._s}.meta WHERE key = 'next_chunk_id'")
            row = cur.fetchone()
            self._next_id = max(self._next_id, int(row[0]) if row else 0)
        self._dim = self.previous.dim if self.previous is not None else 0
        self._removed: set[str] = set()
        self._added = 0
        self._batches = 0  # batches of postings staged for this generation
        self.analyzer = registry.create("sparse", settings["sparse"]).analyzer
        self.committed = False
        self.n_documents = self.n_chunks = 0

    def remove(self, sources: Iterable[str]) -> None:
        self._removed.update(sources)

    def _check_dim(self, cur, dim: int) -> None:
        if self._dim and dim != self._dim and self.previous is not None and self.previous.n_chunks:
            raise IndexConfigMismatch(f"{self.store.where}: the index holds {self._dim}-d vectors, these are "
                                      f"{dim}-d; re-run ingest with --rebuild to rebuild the index")
        cur.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'",
                    (f"{self._s}.chunks",))
        if cur.fetchone()[0] != dim:  # a new index, or a rebuild with another embedder: retype the column
            cur.execute(f"DELETE FROM {self._s}.chunks WHERE embedding IS NOT NULL")
            cur.execute(f"DELETE FROM {self._s}.term_blocks WHERE added_in < %s", (self.gen,))
            cur.execute(f"DROP INDEX IF EXISTS {self._s}.chunks_hnsw")
            cur.execute(f"ALTER TABLE {self._s}.chunks ALTER COLUMN embedding TYPE vector({int(dim)})")
        self._dim = dim

    def add(self, documents: Sequence[DocRecord], chunks: Sequence[Chunk], vectors: np.ndarray,
            files: Sequence[FileRecord]) -> None:
        from psycopg.types.json import Jsonb

        if len(vectors) != len(chunks):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be a 2-d array, not {vectors.ndim}-d")
        g = self.gen
        try:
            with self.conn.cursor() as cur:
                if len(chunks) and int(vectors.shape[1]) != self._dim or (len(chunks) and not self._added):
                    self._check_dim(cur, int(vectors.shape[1]))
                postings: dict[str, tuple[list[int], list[int]]] = {}  # term -> (chunk ids, tfs)
                with cur.copy(f"COPY {self._s}.chunks ({', '.join(_CHUNK_COLUMNS)}) FROM STDIN (FORMAT BINARY)") \
                        as copy:
                    copy.set_types(_CHUNK_TYPES)
                    for c, v in zip(chunks, vectors):
                        tokens = self.analyzer(c.text)
                        terms, tfs = search.term_counts(tokens)
                        copy.write_row((self._next_id, g, c.chunk_id, c.doc_id, c.position, c.text,
                                        Jsonb(c.metadata), len(tokens), [], [], search.vector_binary(v)))
                        for term, tf in zip(terms, tfs):
                            entry = postings.get(term)
                            if entry is None:
                                postings[term] = entry = ([], [])
                            entry[0].append(self._next_id)
                            entry[1].append(tf)
                        self._next_id += 1
                self._stage(cur, postings)
                cur.executemany(f"INSERT INTO {self._s}.documents (doc_id, added_in, source, title, metadata) "
                                "VALUES (%s, %s, %s, %s, %s)",
                                [(d.doc_id, g, d.source, d.title, Jsonb(d.metadata)) for d in documents])
                cur.executemany(f"INSERT INTO {self._s}.files (source, added_in, sha256, size, mtime, doc_ids) "
                                "VALUES (%s, %s, %s, %s, %s, %s)",
                                [(f.source, g, f.sha256, f.size, f.mtime, Jsonb(list(f.doc_ids))) for f in files])
        except RagkitError:
            raise
        except Exception as exc:
            raise self.store.failure(exc) from None
        self._added += len(chunks)

    def _stage(self, cur, postings: dict[str, tuple[list[int], list[int]]]) -> None:
        """This batch's postings as one packed block per term, in a temporary table of the writer's transaction;
        the commit joins each term's blocks of the generation into one row of ``term_blocks``."""
        if not postings:
            return
        if not self._batches:
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS ragkit_staged_blocks (term text, seq integer, ids bytea, "
                        "tfs bytea) ON COMMIT DROP")
        self._batches += 1
        with cur.copy("COPY ragkit_staged_blocks (term, seq, ids, tfs) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4", "bytea", "bytea"])
            for term, (ids, tfs) in postings.items():
                copy.write_row((term, self._batches, *search.pack_postings(ids, tfs)))

    def commit(self) -> str:
        g, s = self.gen, self._s
        live = "removed_in IS NULL AND added_in < %(g)s"
        try:
            with self.conn.cursor() as cur:
                if self.previous is None:  # a rebuild (or the first commit): nothing before this one stays
                    for table in ("chunks", "documents", "files", "term_blocks"):
                        cur.execute(f"UPDATE {s}.{table} SET removed_in = %(g)s WHERE {live}", {"g": g})
                elif self._removed:
                    src = {"g": g, "src": sorted(self._removed)}
                    cur.execute(f"SELECT doc_ids FROM {s}.files WHERE {live} AND source = ANY(%(src)s)", src)
                    doc_ids = sorted({d for (ids,) in cur.fetchall() for d in ids})
                    ids = {"g": g, "ids": doc_ids}
                    cur.execute(f"UPDATE {s}.chunks SET removed_in = %(g)s WHERE {live} AND doc_id = ANY(%(ids)s)", ids)
                    cur.execute(f"UPDATE {s}.documents SET removed_in = %(g)s WHERE {live} AND doc_id = ANY(%(ids)s)",
                                ids)
                    cur.execute(f"UPDATE {s}.files SET removed_in = %(g)s WHERE {live} AND source = ANY(%(src)s)", src)
                    # the removed chunks' postings stay in their blocks: readers of this generation do not see
                    # those chunks, so they are not counted (search.bm25_top_k)
                if self._batches:
                    cur.execute(f"INSERT INTO {s}.term_blocks (term, added_in, ids, tfs) SELECT term, %(g)s, "
                                "string_agg(ids, ''::bytea ORDER BY seq), string_agg(tfs, ''::bytea ORDER BY seq) "
                                "FROM ragkit_staged_blocks GROUP BY term", {"g": g})
                cur.execute(f"SELECT count(*), coalesce(sum(n_tokens), 0) FROM {s}.chunks WHERE removed_in IS NULL")
                n_chunks, n_tokens = cur.fetchone()
                cur.execute(f"SELECT count(*) FROM {s}.documents WHERE removed_in IS NULL")
                n_docs = cur.fetchone()[0]
                if self._added > 1000 and self._added * 5 > n_chunks:
                    cur.execute(f"ANALYZE {s}.chunks")
                    cur.execute(f"ANALYZE {s}.term_blocks")
                self._build_hnsw(cur, n_chunks)
                cur.execute(f"INSERT INTO {s}.meta VALUES ('next_chunk_id', %s) "
                            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (str(self._next_id),))
                cur.execute(f"INSERT INTO {s}.generations VALUES (%s, now(), %s, %s, %s, %s, %s, %s, %s)",
                            (g, now(), _jsonb(self.settings), self._model_id, int(self._dim), n_docs, n_chunks,
                             n_tokens))
                self._collect(cur)
            crash_point("before-commit")
            self.conn.commit()
        except RagkitError:
            raise
        except Exception as exc:
            raise self.store.failure(exc) from None
        self.committed = True
        if self._added > 1000 and self._added * 5 > n_chunks:
            self._vacuum()
        self.n_documents, self.n_chunks = n_docs, n_chunks
        return gen_name(g)

    def _vacuum(self) -> None:
        """After a large commit: vacuum and analyze the posting blocks now rather than at autovacuum's next pass,
        so the planner knows their sizes (the commit is done; a failure here only costs speed)."""
        import psycopg

        try:
            self.conn.autocommit = True
            self.conn.execute(f"VACUUM (ANALYZE) {self._s}.term_blocks")
        except psycopg.Error:
            pass

    def _build_hnsw(self, cur, n_chunks: int) -> None:
        if n_chunks < search.HNSW_FROM or not self._dim:
            return
        cur.execute("SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = 'chunks_hnsw'",
                    (self.store.schema,))
        if cur.fetchone() is None:
            p = hnsw_params(self.settings.get("dense", {}))
            cur.execute("SHOW maintenance_work_mem")
            have = parse_memory_mb(cur.fetchone()[0])
            want = hnsw_build_memory_mb(n_chunks, self._dim, p["m"])
            if want > have:  # never lower what the server's operator configured
                cur.execute(f"SET LOCAL maintenance_work_mem = '{want}MB'")
            cur.execute(f"CREATE INDEX chunks_hnsw ON {self._s}.chunks USING hnsw (embedding vector_ip_ops) "
                        f"WITH (m = {p['m']}, ef_construction = {p['ef_construction']})")

    def _collect(self, cur) -> None:
        """Delete rows removed by generations committed more than RETAIN_SECONDS ago."""
        old = (f"removed_in IN (SELECT gen FROM {self._s}.generations "
               f"WHERE committed_at < now() - interval '{RETAIN_SECONDS} seconds')")
        for table in ("chunks", "documents", "files", "term_blocks"):
            cur.execute(f"DELETE FROM {self._s}.{table} WHERE {old}")


def _jsonb(value: Any):
    from psycopg.types.json import Jsonb

    return Jsonb(value)


class PostgresStore:
    """An index in PostgreSQL: ``Engine.open("postgresql://user@host/db")``."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self.where = redact(self.location)
        self.conninfo, self.schema = split_url(self.location)
        self._s = f'"{self.schema}"'
        self._hnsw: bool | None = None

    # --- plumbing ---

    @property
    def pool(self):
        return pool(self.conninfo, self.where)

    def failure(self, exc: BaseException) -> RagkitError:
        return exc if isinstance(exc, RagkitError) else explain(exc, self.where)

    def query(self, sql: str, params: Any = None, setup: Sequence[str] = (), binary: bool = False) -> list[tuple]:
        """The rows of one read statement (``binary``: results in the binary format, e.g. for bytea)."""
        import psycopg

        try:
            with self.pool.connection() as conn:
                if not setup:  # one statement in autocommit mode: one round trip
                    return conn.execute(sql, params, binary=binary).fetchall()
                with conn.transaction():
                    for stmt in setup:
                        conn.execute(stmt)
                    return conn.execute(sql, params, binary=binary).fetchall()
        except psycopg.errors.UndefinedTable:
            raise
        except (psycopg.Error, Exception) as exc:
            if isinstance(exc, RagkitError):
                raise
            raise self.failure(exc) from None

    def query_pipelined(self, statements: Sequence[tuple], setup: Sequence[str] = ()) -> list[list[tuple]]:
        """Several read statements, each (sql, params) or (sql, params, binary), sent together and answered in one
        round trip (psycopg's pipeline mode), in one transaction when ``setup`` (``SET LOCAL ...``) is given.
        (``conn.transaction()`` and an explicit sync would each cost a round trip of their own.)"""
        import psycopg

        try:
            with self.pool.connection() as conn:
                with conn.pipeline():  # leaving the block sends everything queued and one Sync
                    for stmt in ["BEGIN", *setup] if setup else []:
                        conn.execute(stmt)
                    cursors = [conn.execute(st[0], st[1], binary=bool(st[2:] and st[2])) for st in statements]
                    if setup:
                        conn.execute("COMMIT")
                return [cur.fetchall() for cur in cursors]
        except psycopg.errors.UndefinedTable:
            raise
        except (psycopg.Error, Exception) as exc:
            if isinstance(exc, RagkitError):
                raise
            raise self.failure(exc) from None

    def copy_out(self, sql: str, params: Any = None) -> bytes:
        """What a ``COPY ... TO STDOUT`` writes (``params`` bound on the client, as COPY takes none)."""
        try:
            with self.pool.connection() as conn:
                with conn.cursor().copy(sql, params) as copy:
                    return b"".join(bytes(b) for b in copy)
        except Exception as exc:
            raise self.failure(exc) from None

    def _latest(self) -> tuple | None:
        import psycopg

        try:
            rows = self.query(f"SELECT gen, created, settings, model_id, dim, n_documents, n_chunks, n_tokens "
                              f"FROM {self._s}.generations ORDER BY gen DESC LIMIT 1")
        except psycopg.errors.UndefinedTable:
            return None
        return rows[0] if rows else None

    def has_hnsw(self) -> bool:
        if not self._hnsw:  # once built it stays; until then look again (another process may build it)
            self._hnsw = bool(self.query("SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = "
                                         "'chunks_hnsw'", (self.schema,)))
        return self._hnsw

    # --- the Store interface ---

    def version(self) -> str | None:
        import psycopg

        try:
            rows = self.query(f"SELECT max(gen) FROM {self._s}.generations")
        except psycopg.errors.UndefinedTable:
            return None
        return None if rows[0][0] is None else gen_name(rows[0][0])

    def settings(self) -> Settings | None:
        row = self._latest()
        return None if row is None else row[2]

    def reader(self) -> PostgresReader | None:
        row = self._latest()
        if row is None:
            return None
        have = self.describe()["schema_version"]
        if have != SCHEMA_VERSION:
            raise IndexCorruptError(
                f"{self.where}: index schema version {have} "
                + (f"is older than this ragkit's ({SCHEMA_VERSION}); run any `ragkit ingest` into it once to migrate "
                   "it (readers never write)" if (have or 0) < SCHEMA_VERSION else
                   f"is newer than this ragkit understands ({SCHEMA_VERSION}); upgrade ragkit"))
        return PostgresReader(self, row)

    def _lock(self, conn) -> None:
        key = int.from_bytes(hashlib.sha256(f"ragkit index {self.schema}".encode()).digest()[:8], "big",
                             signed=True)
        import psycopg

        with conn.cursor() as cur:
            # wait a moment: a writer that was just killed holds the lock until the server has noticed
            cur.execute(f"SET lock_timeout = '{int(LOCK_WAIT * 1000)}ms'")
            try:
                cur.execute("SELECT pg_advisory_lock(%s)", (key,))
                cur.execute("RESET lock_timeout")
                conn.commit()
                return
            except psycopg.errors.LockNotAvailable:
                conn.rollback()
            cur.execute("SELECT a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a "
                        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s "
                        "AND l.objid::bigint = %s", ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF))
            holder = cur.fetchone()
            conn.rollback()
        who = f"{holder[0] or 'unnamed client'}" + (f" from {holder[1]}" if holder and holder[1] else "") \
            if holder else "unknown"
        raise IndexLockedError(f"{self.where}: index is locked by another writer ({who}); wait for it to finish")

    def _prepare(self, conn) -> None:
        """The vector extension and the schema, migrated to the current version (committed)."""
        import psycopg

        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            if cur.fetchone() is None:
                try:
                    cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except psycopg.Error as exc:
                    conn.rollback()
                    raise StoreUnavailable(
                        f"{self.where}: the pgvector extension is not enabled in this database and ragkit may not "
                        f"enable it ({first_line(exc)}); run: CREATE EXTENSION vector; (as the database owner or a "
                        "superuser; the server needs pgvector installed)") from None
            migrate(cur, self.schema)
        conn.commit()

    @contextmanager
    def writer(self, settings: Settings, *, rebuild: bool = False, model_id: str = "") -> Iterator[PostgresWriter]:
        search.bm25_params(settings["sparse"])
        import psycopg

        conn = connect(self.conninfo, self.where, "ingest")
        try:
            try:
                self._lock(conn)
                self._prepare(conn)
            except psycopg.Error as exc:
                raise explain(exc, self.where) from None
            current = self.reader()
            if current is not None and not rebuild:
                diff = first_difference(current.settings, settings)
                if diff is not None:
                    raise diff.error(self.location)
            w = PostgresWriter(self, conn, settings, current, rebuild, model_id)
            yield w
        finally:
            try:
                if not conn.closed:
                    conn.rollback()  # an uncommitted writer leaves nothing behind
            finally:
                conn.close()  # closing the session releases the advisory lock

    def embedding_cache_path(self) -> Path | None:
        return None

    def describe(self) -> dict[str, Any]:
        """What ``ragkit info`` shows about the store: the URL (no password), schema and its version."""
        import psycopg

        try:
            rows = self.query(f"SELECT value FROM {self._s}.meta WHERE key = 'schema_version'")
        except psycopg.errors.UndefinedTable:
            rows = []
        return {"store": "postgres", "url": self.where, "schema": self.schema,
                "schema_version": int(rows[0][0]) if rows else None, "ragkit_schema_version": SCHEMA_VERSION}
