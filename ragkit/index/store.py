"""What an index backend must do: the ``Store`` interface, its read view and its writer.

A store holds documents, their chunks (each with a row number that the store assigns), the source files they
came from, the sparse and dense retrieval structures, and the index settings it was built with. The engine and
the pipelines reach index state only through these three protocols:

* ``Store``: names the index (a directory path, a URL), says which committed version is current and what
  settings it was built with, opens a read view of it and opens the (single) writer.
* ``StoreReader``: one committed version, read-only and consistent however long it is held (a commit by
  another process never changes what an open reader sees).
* ``StoreWriter``: builds the next version on top of the current one (or from nothing, when rebuilding) and
  makes it current with ``commit()``, atomically: readers see the old version or the new one, never a mix.

A metadata filter is one expression type (:class:`ragkit.filter_expr.Filter`); each store compiles it its own
way into a :class:`Candidates` set (the embedded store: a row mask) that both retrieval branches apply *inside*
their search, so a filtered-out chunk cannot come back through either branch.

``ragkit.testing.store.StoreConformance`` is the executable form of this contract: every store passes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ragkit.filter_expr import Filter
from ragkit.plugins import QueryBundle
from ragkit.types import Chunk

Ranking = tuple[np.ndarray, np.ndarray]  # (rows, scores), best first


@dataclass
class FileRecord:
    """A source file as last ingested: its content hash decides whether a re-ingest reloads it."""

    source: str
    sha256: str
    size: int
    mtime: float
    doc_ids: list[str] = field(default_factory=list)


@dataclass
class DocRecord:
    doc_id: str
    source: str
    title: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Candidates:
    """A compiled metadata filter: the chunks a query may retrieve. ``native`` is the store's own form (a row
    mask, a SQL condition); only the store that made it reads it."""

    filter: Filter
    count: int  # chunks that pass
    total: int  # chunks in the view
    native: Any = None

    def describe(self) -> str:
        return f"{self.count}/{self.total} chunks pass"


@runtime_checkable
class StoreReader(Protocol):
    """A consistent read view of one commit. A store whose two branches can be answered together more cheaply
    than one after the other (one round trip to a server) may also define ``hybrid_search(query, k, candidates)
    -> (sparse ranking, dense ranking)``, returning exactly what the two calls would; ``search_both`` uses it."""

    name: str  # the committed version this view reads
    settings: dict[str, dict[str, Any]]  # index settings stamped at creation (chunker, embedder, sparse, dense)
    model_id: str
    dim: int
    n_documents: int
    n_chunks: int
    created: float

    def documents(self) -> list[DocRecord]: ...

    def files(self) -> dict[str, FileRecord]: ...

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        """The chunks at these rows, in the order given."""

    def iter_chunks(self) -> list[Chunk]:
        """Every chunk, in row order."""

    def neighbours(self, doc_id: str, positions: Sequence[int]) -> dict[int, Chunk]:
        """Chunks of ``doc_id`` at the given positions (those that exist), keyed by position."""

    def candidates(self, flt: Filter) -> Candidates:
        """Compile a (non-empty) filter for this view."""

    def sparse_search(self, query: QueryBundle, k: int, candidates: Candidates | None) -> Ranking:
        """BM25 top-k among the candidates (all chunks when None)."""

    def dense_search(self, query: QueryBundle, k: int, candidates: Candidates | None) -> Ranking:
        """Vector top-k among the candidates (all chunks when None)."""

    def analyze(self, text: str) -> list[str]:
        """The sparse branch's analyzer: tokens exactly as BM25 indexes them."""

    def warm_up(self) -> None:
        """Load what search needs now instead of on the first query."""

    def close(self) -> None: ...


@runtime_checkable
class StoreWriter(Protocol):
    current: StoreReader | None  # the committed version when the writer opened (None: an empty index)
    previous: StoreReader | None  # what this write builds on: ``current``, or None when rebuilding
    settings: dict[str, dict[str, Any]]  # the index settings the new version is stamped with
    n_documents: int  # after commit(): what the new version holds
    n_chunks: int

    def remove(self, sources: Iterable[str]) -> None:
        """Drop the documents (and their chunks) that came from these source files."""

    def add(self, documents: Sequence[DocRecord], chunks: Sequence[Chunk], vectors: np.ndarray,
            files: Sequence[FileRecord]) -> None:
        """Add documents with their chunks (``vectors`` row-aligned with ``chunks``) and their file records."""

    def commit(self) -> str:
        """Make everything written the current version, atomically; return its name."""


@runtime_checkable
class Store(Protocol):
    location: str  # how the user names it: a directory path or a URL

    def version(self) -> str | None:
        """The name of the committed version (None: nothing committed yet). Cheap: called per query."""

    def settings(self) -> dict[str, dict[str, Any]] | None:
        """The committed version's index settings (None: nothing committed yet)."""

    def reader(self) -> StoreReader | None:
        """Open a read view of the committed version (None: nothing committed yet)."""

    def writer(self, settings: dict[str, dict[str, Any]], *, rebuild: bool = False,
               model_id: str = "") -> AbstractContextManager[StoreWriter]:
        """The one writer; ``model_id`` names the embedder whose vectors it receives (stamped with the
        settings). Raises IndexLockedError while another writer holds the index, and IndexConfigMismatch when
        ``settings`` differ from the committed ones and ``rebuild`` is false."""

    def embedding_cache_path(self) -> Path | None:
        """Where this index keeps its embedding cache (None: the caller chooses)."""


def search_both(reader: StoreReader, query: QueryBundle, k: int,
                candidates: Candidates | None) -> tuple[Ranking, Ranking]:
    """The sparse and the dense top-k of one query: through the reader's ``hybrid_search`` when it has one."""
    both = getattr(reader, "hybrid_search", None)
    if both is not None:
        return both(query, k, candidates)
    return reader.sparse_search(query, k, candidates), reader.dense_search(query, k, candidates)
