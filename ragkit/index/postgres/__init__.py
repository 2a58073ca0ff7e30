"""The ``postgres`` store: an index in PostgreSQL with pgvector (``postgresql://`` URLs; see docs/postgres.md)."""

from ragkit.index.postgres.store import PostgresReader, PostgresStore, PostgresWriter

__all__ = ["PostgresStore", "PostgresReader", "PostgresWriter"]
