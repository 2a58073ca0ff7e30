"""Embedding cache: (model id, sha256 of text) -> float32 vector, in one SQLite file.

Shared by every generation of an index and by ablations, so unchanged text is never embedded twice.
SQLite's journal makes it safe against a killed process; it is a cache, so losing it only costs time.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

_SCHEMA = """CREATE TABLE IF NOT EXISTS emb (
    model TEXT NOT NULL, h BLOB NOT NULL, dim INTEGER NOT NULL, v BLOB NOT NULL, PRIMARY KEY (model, h)
) WITHOUT ROWID"""


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


class EmbeddingCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.commit()
        self._lock = threading.Lock()

    def get_many(self, model: str, hashes: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        uniq = list(dict.fromkeys(hashes))
        with self._lock:
            for i in range(0, len(uniq), 500):
                part = uniq[i:i + 500]
                q = f"SELECT h, dim, v FROM emb WHERE model=? AND h IN ({','.join('?' * len(part))})"
                for h, dim, v in self._db.execute(q, [model, *part]):
                    found[bytes(h)] = np.frombuffer(v, dtype=np.float32, count=dim)
        return found

    def put_many(self, model: str, hashes: Sequence[bytes], vectors: np.ndarray) -> None:
        rows = [(model, h, int(vec.shape[0]), np.ascontiguousarray(vec, dtype=np.float32).tobytes())
                for h, vec in zip(hashes, vectors)]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?,?,?,?)", rows)
            self._db.commit()

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return self._db.execute("SELECT COUNT(*) FROM emb").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM emb WHERE model=?", (model,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def embed_with_cache(texts: Sequence[str], model_id: str, embed: Callable[[list[str]], np.ndarray],
                     cache: EmbeddingCache | None, dim: int,
                     progress: Callable[[int, int], None] | None = None,
                     group: int = 1024) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` (row-aligned); only texts missing from the cache are embedded.

    Returns (vectors, number embedded). Missing texts are embedded longest-first in large groups so padding
    stays as low as in one big ``encode`` call, and each group is written to the cache as soon as it is done
    (a killed ingest keeps the work it finished).
    """
    out = np.zeros((len(texts), dim), dtype=np.float32)
    hashes = [text_hash(t) for t in texts]
    known = cache.get_many(model_id, hashes) if cache is not None else {}
    todo: dict[bytes, str] = {}
    for h, t in zip(hashes, texts):
        if h not in known:
            todo.setdefault(h, t)
    order = sorted(todo, key=lambda h: -len(todo[h]))
    done = 0
    if progress:
        progress(0, len(order))
    for i in range(0, len(order), group):
        part = order[i:i + group]
        vecs = embed([todo[h] for h in part])
        if cache is not None:
            cache.put_many(model_id, part, vecs)
        known.update(zip(part, vecs))
        done += len(part)
        if progress:
            progress(done, len(order))
    for i, h in enumerate(hashes):
        out[i] = known[h]
    return out, len(order)
