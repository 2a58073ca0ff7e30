"""The embedded store: generations + lock + SQLite docstore + bm25s + faiss in one directory (the default)."""

from ragkit.index.embedded.store import EmbeddedReader, EmbeddedStore, EmbeddedWriter

__all__ = ["EmbeddedStore", "EmbeddedReader", "EmbeddedWriter"]
