"""The ``embedded`` store: one directory on the local disk, for one machine (the default).

Each commit writes a complete, immutable generation (SQLite docstore + the sparse part + the dense part +
manifest) and swaps one pointer (see ``generations.py``). A reader opens one generation; its sparse and dense
parts load on first use, so a BM25-only query never loads the vector index. Filters compile to a row mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.errors import IndexCorruptError, RagkitError
from ragkit.filter_expr import Filter
from ragkit.index.embedded.docstore import DocStore, write_docstore
from ragkit.index.embedded.generations import IndexDir, Manifest, crash_point, now
from ragkit.index.settings import Settings, first_difference
from ragkit.index.store import Candidates, DocRecord, FileRecord, Ranking
from ragkit.index.tables import TableDB, write_tables
from ragkit.plugins import QueryBundle, registry
from ragkit.types import Chunk, Table

READER_ATTEMPTS = 5  # tries to open the current generation while commits keep replacing it


class EmbeddedReader:
    """One committed generation, opened read-only. Its files stay readable by this reader after a later
    commit collects the generation's directory (the server finishes in-flight requests on the generation
    they started with), so every part is opened here, not on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name  # a generation is named by its directory (it is staged before it has a name)
        try:
            self.manifest = Manifest.read(path / "manifest.json")
            self.docstore = DocStore(path / "docstore.sqlite")
            m = self.manifest
            self.sparse = registry.create("sparse", m.config["sparse"])
            self.sparse.load(path / "sparse")
            self.dense = registry.create("dense", m.config["dense"])
            self.dense.load(path / "dense")
            self.table_db = TableDB(path / "tables.sqlite")
        except RagkitError:
            raise
        except Exception as exc:
            raise IndexCorruptError(f"{path}: cannot open index generation: {exc}") from None
        self.settings, self.model_id, self.dim = m.config, m.model_id, m.dim
        self.n_documents, self.n_chunks, self.created = m.n_documents, m.n_chunks, m.created
        sizes = {"manifest": m.n_chunks, "docstore": self.docstore.n_chunks, "sparse": len(self.sparse),
                 "dense": len(self.dense)}
        if len(set(sizes.values())) != 1:
            raise IndexCorruptError(f"{path}: index parts disagree on the number of chunks: {sizes}")

    def warm_up(self) -> None:
        """Every part is loaded when the reader opens."""

    # --- contents ---

    def documents(self) -> list[DocRecord]:
        return self.docstore.documents()

    def files(self) -> dict[str, FileRecord]:
        return self.docstore.files()

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        return self.docstore.chunks(rows)

    def iter_chunks(self) -> list[Chunk]:
        return self.docstore.iter_chunks()

    def neighbours(self, doc_id: str, positions: Sequence[int]) -> dict[int, Chunk]:
        return self.docstore.neighbours(doc_id, positions)

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        return self.dense.vectors(np.asarray(rows, dtype=np.int64))

    def tables(self) -> TableDB:
        """The SQL tables of this generation (``tables.sqlite``; none in a generation written without it)."""
        return self.table_db

    # --- search ---

    def candidates(self, flt: Filter) -> Candidates:
        mask = self.docstore.mask(flt)
        return Candidates(flt, int(mask.sum()), len(mask), mask)

    def sparse_search(self, query: QueryBundle, k: int, candidates: Candidates | None) -> Ranking:
        return self.sparse.search(query, k, None if candidates is None else candidates.native)

    def dense_search(self, query: QueryBundle, k: int, candidates: Candidates | None) -> Ranking:
        return self.dense.search(query, k, None if candidates is None else candidates.native)

    def analyze(self, text: str) -> list[str]:
        analyzer = getattr(self.sparse, "analyzer", None)
        if analyzer is None:
            import re

            return re.findall(r"\w+", text.lower())
        return list(analyzer(text))

    def close(self) -> None:
        self.docstore.close()


class EmbeddedWriter:
    """Builds the next generation: what the previous one keeps, minus removed sources, plus what is added."""

    def __init__(self, idir: IndexDir, settings: Settings, current: EmbeddedReader | None, rebuild: bool,
                 model_id: str) -> None:
        self._dir, self.settings, self.current = idir, settings, current
        self.previous = None if rebuild else current
        self._model_id, self._dim = model_id, 0
        self._removed: set[str] = set()
        self._docs: list[DocRecord] = []
        self._chunks: list[Chunk] = []
        self._vectors: list[np.ndarray] = []
        self._files: list[FileRecord] = []
        self._tables: list[Table] = []
        self.n_documents = self.n_chunks = self.n_tables = 0

    def remove(self, sources: Iterable[str]) -> None:
        self._removed.update(sources)

    def add(self, documents: Sequence[DocRecord], chunks: Sequence[Chunk], vectors: np.ndarray,
            files: Sequence[FileRecord]) -> None:
        if len(vectors) != len(chunks):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        self._docs.extend(documents)
        self._chunks.extend(chunks)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be a 2-d array, not {vectors.ndim}-d")
        self._dim = int(vectors.shape[1]) or self._dim
        self._vectors.append(vectors)
        self._files.extend(files)

    def add_tables(self, tables: Sequence[Table]) -> None:
        """Tables (named, with rows and their document's id) to store with the documents added."""
        self._tables.extend(tables)

    def _kept_tables(self, kept_ids: set[str]) -> list[Table]:
        prev = self.previous
        if prev is None:
            return []
        db = prev.tables()
        out = []
        for t in db.tables():
            if t.doc_id in kept_ids:
                t.rows = db.rows(t.name)
                out.append(t)
        return out

    def _kept(self) -> tuple[list[DocRecord], list[Chunk], np.ndarray, list[FileRecord]]:
        prev = self.previous
        if prev is None:
            return [], [], np.zeros((0, self._dim), np.float32), []
        self._dim = self._dim or prev.dim
        prev_files = prev.files()
        kept_ids = {d for src, rec in prev_files.items() if src not in self._removed for d in rec.doc_ids}
        docs = [d for d in prev.documents() if d.doc_id in kept_ids]
        every = prev.iter_chunks()
        rows = [i for i, c in enumerate(every) if c.doc_id in kept_ids]
        files = [rec for src, rec in prev_files.items() if src not in self._removed]
        return docs, [every[i] for i in rows], prev.vectors(rows), files

    def commit(self) -> str:
        docs, chunks, vectors, files = self._kept()
        tables = self._kept_tables({d.doc_id for d in docs}) + self._tables
        docs, chunks, files = docs + self._docs, chunks + self._chunks, files + self._files
        vectors = np.concatenate([vectors.reshape(-1, self._dim), *self._vectors]) if self._vectors else vectors
        texts = [c.text for c in chunks]
        staging = self._dir.new_staging()
        sparse = registry.create("sparse", self.settings["sparse"])
        sparse.build(texts, None)
        sparse.save(staging / "sparse")
        dense = registry.create("dense", self.settings["dense"])
        dense.build(texts, vectors)
        dense.save(staging / "dense")
        write_docstore(staging / "docstore.sqlite", docs, chunks, files)
        if tables:
            write_tables(staging / "tables.sqlite", tables)
        Manifest(created=now(), config=self.settings, model_id=self._model_id, dim=int(self._dim),
                 n_documents=len(docs), n_chunks=len(chunks)).write(staging / "manifest.json")
        crash_point("before-commit")
        name = self._dir.commit(staging)
        self.n_documents, self.n_chunks, self.n_tables = len(docs), len(chunks), len(tables)
        return name


class EmbeddedStore:
    """An index directory: ``Engine.open("path/to/index")``."""

    def __init__(self, location: str | Path) -> None:
        self.path = Path(location)
        self.location = str(self.path)
        self.dir = IndexDir(self.path)
        self.dir.validate()

    def version(self) -> str | None:
        return self.dir.current() if self.dir.is_index() else None

    def settings(self) -> Settings | None:
        name = self.version()
        return None if name is None else Manifest.read(self.dir.generation_path(name) / "manifest.json").config

    def reader(self) -> EmbeddedReader | None:
        # A reader that looks up CURRENT just before two commits land in a row can find its generation already
        # collected (two are kept): it then opens the newer current one. A generation that is missing or broken
        # while still current is an error.
        for _ in range(READER_ATTEMPTS):
            name = None
            try:
                name = self.version()
                return None if name is None else EmbeddedReader(self.dir.generation_path(name))
            except IndexCorruptError:
                if name is None or self.version() == name:
                    raise
        raise IndexCorruptError(f"{self.location}: the current generation changed {READER_ATTEMPTS} times while "
                                "opening it; try again")

    @contextmanager
    def writer(self, settings: Settings, *, rebuild: bool = False, model_id: str = "") -> Iterator[EmbeddedWriter]:
        with self.dir.write_lock():
            current = self.reader()
            try:
                if current is not None and not rebuild:
                    diff = first_difference(current.settings, settings)
                    if diff is not None:
                        raise diff.error(self.location)
                yield EmbeddedWriter(self.dir, settings, current, rebuild, model_id)
            finally:
                if current is not None:
                    current.close()

    def embedding_cache_path(self) -> Path | None:
        return self.dir.cache_path if self.path.is_dir() else None

    def describe(self) -> dict[str, Any]:
        return {"store": "embedded", "path": str(self.path)}
