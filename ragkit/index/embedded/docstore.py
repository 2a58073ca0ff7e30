"""The document store of one generation: documents, chunks (row = position in every index part) and the
source files they came from, in one SQLite file. A generation is immutable once committed, so readers open
it read-only and immutable (no locking, no journal)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.filter_expr import Filter
from ragkit.index.store import DocRecord, FileRecord
from ragkit.lru import LRU
from ragkit.types import Chunk

_SCHEMA = """
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT, metadata TEXT NOT NULL);
CREATE TABLE chunks (row INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL,
                     position INTEGER NOT NULL, text TEXT NOT NULL, metadata TEXT NOT NULL);
CREATE INDEX chunks_by_doc ON chunks (doc_id, position);
CREATE TABLE files (source TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER, mtime REAL, doc_ids TEXT NOT NULL);
"""


def write_docstore(path: Path, docs: Iterable[DocRecord], chunks: Sequence[Chunk], files: Iterable[FileRecord]) -> None:
    db = sqlite3.connect(str(path))
    try:
        db.executescript(_SCHEMA)
        db.executemany("INSERT INTO documents VALUES (?,?,?,?)",
                       ((d.doc_id, d.source, d.title, json.dumps(d.metadata, ensure_ascii=False)) for d in docs))
        db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?)",
                       ((i, c.chunk_id, c.doc_id, c.position, c.text, json.dumps(c.metadata, ensure_ascii=False))
                        for i, c in enumerate(chunks)))
        db.executemany("INSERT INTO files VALUES (?,?,?,?,?)",
                       ((f.source, f.sha256, f.size, f.mtime, json.dumps(f.doc_ids)) for f in files))
        db.commit()
    finally:
        db.close()


class DocStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        uri = f"file:{path.as_posix()}?mode=ro&immutable=1"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self._meta: list[dict[str, Any]] | None = None
        self._masks: LRU[tuple, np.ndarray] = LRU(128)
        self.n_chunks = self._q("SELECT COUNT(*) FROM chunks")[0][0]

    def _q(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        if not len(rows):
            return []
        wanted = [int(r) for r in rows]
        found = {}
        for i in range(0, len(wanted), 500):
            part = wanted[i:i + 500]
            q = f"SELECT row, chunk_id, doc_id, position, text, metadata FROM chunks WHERE row IN ({','.join('?' * len(part))})"
            for row, cid, did, pos, text, meta in self._q(q, part):
                found[row] = Chunk(cid, did, text, pos, json.loads(meta))
        return [found[r] for r in wanted]

    def neighbours(self, doc_id: str, positions: Sequence[int]) -> dict[int, Chunk]:
        """Chunks of ``doc_id`` at the given positions (those that exist), keyed by position."""
        pos = [int(p) for p in positions]
        if not pos:
            return {}
        q = (f"SELECT chunk_id, doc_id, position, text, metadata FROM chunks WHERE doc_id=? "
             f"AND position IN ({','.join('?' * len(pos))})")
        return {p: Chunk(cid, did, text, p, json.loads(meta)) for cid, did, p, text, meta in self._q(q, [doc_id, *pos])}

    def iter_chunks(self) -> list[Chunk]:
        return [Chunk(cid, did, text, pos, json.loads(meta)) for cid, did, pos, text, meta in
                self._q("SELECT chunk_id, doc_id, position, text, metadata FROM chunks ORDER BY row")]

    def chunk_ids(self) -> list[str]:
        return [r[0] for r in self._q("SELECT chunk_id FROM chunks ORDER BY row")]

    def documents(self) -> list[DocRecord]:
        return [DocRecord(d, s, t or "", json.loads(m)) for d, s, t, m in
                self._q("SELECT doc_id, source, title, metadata FROM documents ORDER BY doc_id")]

    def files(self) -> dict[str, FileRecord]:
        return {s: FileRecord(s, h, size, mtime, json.loads(ids)) for s, h, size, mtime, ids in
                self._q("SELECT source, sha256, size, mtime, doc_ids FROM files")}

    def n_documents(self) -> int:
        return self._q("SELECT COUNT(*) FROM documents")[0][0]

    def mask(self, flt: Filter) -> np.ndarray:
        """Boolean row mask of the chunks that pass ``flt`` (cached per filter)."""
        key = flt.key()
        cached = self._masks.get(key)
        if cached is not None:
            return cached
        if self._meta is None:
            meta = [json.loads(m) for (m,) in self._q("SELECT metadata FROM chunks ORDER BY row")]
            for m, (did,) in zip(meta, self._q("SELECT doc_id FROM chunks ORDER BY row")):
                m.setdefault("doc_id", did)
            self._meta = meta
        out = np.fromiter((flt.test(m) for m in self._meta), dtype=bool, count=len(self._meta))
        out.setflags(write=False)
        self._masks.put(key, out)
        return out
