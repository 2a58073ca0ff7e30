"""The tables of a postgres index and their versioned, idempotent migrations.

Every row carries the generation that added it (``added_in``) and the one that removed it (``removed_in``,
NULL while current): generation ``g`` sees the rows with ``added_in <= g AND (removed_in IS NULL OR
removed_in > g)``, so a reader keeps its version however many commits follow. A commit inserts its row in
``generations``; the newest row is the current version. Removed rows are deleted for good once the
generation that removed them is older than ``RETAIN_SECONDS`` (readers held longer than that must reopen).

Migrations run in the writer's transaction under its advisory lock; each is recorded in ``meta`` and skipped
when already applied, so running them again changes nothing.
"""

from __future__ import annotations

SCHEMA_VERSION = 3
RETAIN_SECONDS = 600

_NUMBER = r"^\s*([-+]?((\d+\.?\d*|\.\d+)(e[-+]?\d+)?|inf|infinity)|nan)\s*$"

MIGRATIONS: dict[int, str] = {
    1: f"""
CREATE TABLE IF NOT EXISTS {{s}}.generations (
    gen integer PRIMARY KEY, committed_at timestamptz NOT NULL DEFAULT now(), created double precision NOT NULL,
    settings jsonb NOT NULL, model_id text NOT NULL, dim integer NOT NULL, n_documents integer NOT NULL,
    n_chunks integer NOT NULL, n_tokens bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {{s}}.documents (
    doc_id text NOT NULL, added_in integer NOT NULL, removed_in integer, source text NOT NULL, title text,
    metadata jsonb NOT NULL, PRIMARY KEY (doc_id, added_in));
CREATE TABLE IF NOT EXISTS {{s}}.files (
    source text NOT NULL, added_in integer NOT NULL, removed_in integer, sha256 text NOT NULL, size bigint,
    mtime double precision, doc_ids jsonb NOT NULL, PRIMARY KEY (source, added_in));
CREATE TABLE IF NOT EXISTS {{s}}.chunks (
    id bigint PRIMARY KEY, added_in integer NOT NULL, removed_in integer, chunk_id text NOT NULL,
    doc_id text NOT NULL, position integer NOT NULL, text text NOT NULL, metadata jsonb NOT NULL,
    n_tokens integer NOT NULL, terms text[] NOT NULL, tfs integer[] NOT NULL, embedding vector);
CREATE INDEX IF NOT EXISTS chunks_live ON {{s}}.chunks (removed_in, added_in);
CREATE INDEX IF NOT EXISTS chunks_doc ON {{s}}.chunks (doc_id, position);
CREATE INDEX IF NOT EXISTS chunks_metadata ON {{s}}.chunks USING gin (metadata jsonb_path_ops);
CREATE INDEX IF NOT EXISTS chunks_terms ON {{s}}.chunks USING gin (terms);
CREATE INDEX IF NOT EXISTS documents_live ON {{s}}.documents (removed_in);
CREATE INDEX IF NOT EXISTS files_live ON {{s}}.files (removed_in);
CREATE OR REPLACE FUNCTION {{s}}.ragkit_num(v jsonb) RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE jsonb_typeof(v) WHEN 'number' THEN (v #>> '{{{{}}}}')::double precision
    WHEN 'string' THEN CASE WHEN (v #>> '{{{{}}}}') ~* '{_NUMBER}' THEN (v #>> '{{{{}}}}')::double precision END END
$$;
CREATE OR REPLACE FUNCTION {{s}}.ragkit_str(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE jsonb_typeof(v) WHEN 'boolean' THEN initcap(v #>> '{{{{}}}}') ELSE v #>> '{{{{}}}}' END
$$;
""",
    # 2: BM25 postings in their own narrow table, read by index-only scans of (term) INCLUDE (...), instead of
    # a GIN lookup of the chunks' term arrays followed by a heap fetch of every matching chunk; the chunks'
    # own term arrays are emptied, and vectors stay in the row (no TOAST lookup per vector in exact search)
    2: """
CREATE TABLE IF NOT EXISTS {s}.postings (
    term text NOT NULL, id bigint NOT NULL, tf integer NOT NULL, n_tokens integer NOT NULL,
    added_in integer NOT NULL, removed_in integer);
INSERT INTO {s}.postings (term, id, tf, n_tokens, added_in, removed_in)
    SELECT t.term, c.id, t.tf, c.n_tokens, c.added_in, c.removed_in
    FROM {s}.chunks c CROSS JOIN LATERAL unnest(c.terms, c.tfs) AS t(term, tf)
    WHERE NOT EXISTS (SELECT 1 FROM {s}.postings);
CREATE INDEX IF NOT EXISTS postings_term ON {s}.postings (term) INCLUDE (id, tf, n_tokens, added_in, removed_in);
CREATE INDEX IF NOT EXISTS postings_id ON {s}.postings (id);
DROP INDEX IF EXISTS {s}.chunks_terms;
UPDATE {s}.chunks SET terms = '{{}}', tfs = '{{}}' WHERE terms <> '{{}}';
ALTER TABLE {s}.chunks ALTER COLUMN embedding SET STORAGE MAIN;
""",
    # 3: postings packed per term and generation (chunk ids as int8send bytes, term frequencies as int4send
    # bytes, uncompressed) and scored by the reader in numpy, instead of one row per posting aggregated in SQL;
    # a chunk's length comes from the chunks table
    3: """
CREATE TABLE IF NOT EXISTS {s}.term_blocks (
    term text NOT NULL, added_in integer NOT NULL, removed_in integer, ids bytea NOT NULL, tfs bytea NOT NULL);
ALTER TABLE {s}.term_blocks ALTER COLUMN ids SET STORAGE EXTERNAL, ALTER COLUMN tfs SET STORAGE EXTERNAL;
INSERT INTO {s}.term_blocks (term, added_in, removed_in, ids, tfs)
    SELECT term, added_in, CASE WHEN bool_and(removed_in IS NOT NULL) THEN max(removed_in) END, string_agg(int8send(id), ''::bytea ORDER BY id),
           string_agg(int4send(tf), ''::bytea ORDER BY id)
    FROM {s}.postings GROUP BY term, added_in;
CREATE INDEX IF NOT EXISTS term_blocks_term ON {s}.term_blocks (term, added_in);
CREATE INDEX IF NOT EXISTS term_blocks_live ON {s}.term_blocks (removed_in);
DROP TABLE IF EXISTS {s}.postings;
""",
}


def visible(alias: str, gen: str = "%(gen)s") -> str:
    """The rows of ``alias`` that generation ``gen`` sees."""
    return f"({alias}.added_in <= {gen} AND ({alias}.removed_in IS NULL OR {alias}.removed_in > {gen}))"


def migrate(cur, schema: str) -> int:
    """Bring ``schema`` to SCHEMA_VERSION (creating it); return the version it had before (0: new)."""
    s = f'"{schema}"'
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    cur.execute(f"CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value jsonb NOT NULL)")
    cur.execute(f"SELECT value FROM {s}.meta WHERE key = 'schema_version'")
    row = cur.fetchone()
    have = int(row[0]) if row else 0
    if have > SCHEMA_VERSION:
        from ragkit.errors import IndexCorruptError

        raise IndexCorruptError(f"schema {schema}: index schema version {have} is newer than this ragkit "
                                f"understands ({SCHEMA_VERSION}); upgrade ragkit")
    for version in sorted(v for v in MIGRATIONS if v > have):
        cur.execute(MIGRATIONS[version].format(s=s))
        cur.execute(f"INSERT INTO {s}.meta VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (str(version),))
    return have
