"""The postgres store beyond the shared contract: BM25 and dense scores equal to the embedded store's on real
text, selective filters through the HNSW index, crash safety, and one-line errors for what goes wrong with the
server. Runs on the session's PostgreSQL (tests/conftest.py: pg_server)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import zlib

from pathlib import Path

import numpy as np
import psycopg
import pytest

from ragkit import Engine
from ragkit.errors import ConfigError, IndexConfigMismatch, IndexCorruptError, IndexLockedError, RagkitError
from ragkit.filter_expr import to_filter
from ragkit.index import open_store
from ragkit.index.embedded import EmbeddedStore
from ragkit.index.postgres import PostgresStore, search
from ragkit.index.store import DocRecord, FileRecord
from ragkit.plugins import QueryBundle
from ragkit.types import Chunk

ROOT = Path(__file__).resolve().parents[2]
DIM = 16
DOCS = 1200  # SciFact documents written to both stores
QUERIES = 40


def unit(seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def settings():
    from ragkit.config import Config
    from ragkit.index.settings import wanted

    return wanted(Config())


@pytest.fixture(scope="module")
def scifact(shared_datasets):
    with gzip.open(shared_datasets / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        docs = [json.loads(line) for _, line in zip(range(DOCS), fh)]
    queries = [json.loads(line)["text"] for line in
               (shared_datasets / "scifact" / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:QUERIES]]
    return docs, queries


def write(store, docs, remove=(), model_id="random"):
    chunks = [Chunk(d["_id"], d["_id"], f"{d['title']} {d['text']}", 0, {"year": i % 100, "title": d["title"]})
              for i, d in enumerate(docs)]
    vectors = np.stack([unit(zlib.crc32(c.text.encode())) for c in chunks]) if chunks else \
        np.zeros((0, DIM), np.float32)
    with store.writer(settings(), model_id=model_id) as w:
        w.remove(list(remove))
        w.add([DocRecord(d["_id"], f"{d['_id']}.txt", d["title"], {}) for d in docs], chunks, vectors,
              [FileRecord(f"{d['_id']}.txt", "0" * 64, 1, 0.0, [d["_id"]]) for d in docs])
        return w.commit()


def ranking(reader, hits):
    rows, scores = hits
    return [c.chunk_id for c in reader.chunks(rows.tolist())], np.asarray(scores, dtype=np.float64)


def assert_same_rankings(emb, pg, queries, k=50, candidates=None):
    for text in queries:
        q = QueryBundle(text, lambda _, t=text: unit(zlib.crc32(t.encode())))
        for branch in ("sparse_search", "dense_search"):
            e_ids, e_scores = ranking(emb, getattr(emb, branch)(q, k, candidates and emb.candidates(candidates)))
            p_ids, p_scores = ranking(pg, getattr(pg, branch)(q, k, candidates and pg.candidates(candidates)))
            assert p_ids == e_ids, f"{branch} ranking differs for {text!r}"
            assert np.allclose(p_scores, e_scores, atol=1e-4, rtol=0), f"{branch} scores differ for {text!r}"


def test_bm25_and_dense_agree_with_the_embedded_store_as_the_corpus_changes(scifact, tmp_path, pg_index):
    """Same analyzer, k1, b and IDF: equal scores (1e-4) and identical rankings, also after deletes and adds
    (the corpus statistics follow every commit), with and without a filter."""
    docs, queries = scifact
    emb, pg = EmbeddedStore(tmp_path / "idx"), open_store(pg_index())
    first, later = docs[: DOCS * 2 // 3], docs[DOCS * 2 // 3:]
    steps = [(first, ()), (later, [f"{d['_id']}.txt" for d in first[::3]])]
    for added, removed in steps:
        write(emb, added, removed)
        write(pg, added, removed)
        e, p = emb.reader(), pg.reader()
        assert (p.n_chunks, p.n_tokens) == (e.n_chunks, sum(len(e.analyze(c.text)) for c in e.iter_chunks()))
        assert_same_rankings(e, p, queries)
        assert_same_rankings(e, p, queries[:15], candidates=to_filter("year<30"))
        e.close()


def tiered_index(url: str, n: int, gold) -> tuple:
    """A postgres index of ``n`` one-chunk documents with random unit vectors, tier "gold" where ``gold(i)``,
    else "plain": (the store, the vectors)."""
    store = open_store(url)
    chunks = [Chunk(f"d{i}#0", f"d{i}", f"text {i}", 0, {"tier": "gold" if gold(i) else "plain"})
              for i in range(n)]
    vectors = np.stack([unit(i) for i in range(n)])
    with store.writer(settings(), model_id="random") as w:
        w.add([DocRecord(f"d{i}", f"d{i}.txt", "", {}) for i in range(n)], chunks, vectors,
              [FileRecord(f"d{i}.txt", "0" * 64, 1, 0.0, [f"d{i}"]) for i in range(n)])
        w.commit()
    return store, vectors


def test_a_selective_filter_still_returns_k_through_the_hnsw_index(pg_index, monkeypatch):
    """3000 chunks with an HNSW index; a filter keeping 1% of them: k passing chunks, the exact top k."""
    monkeypatch.setattr(search, "HNSW_FROM", 1000)
    monkeypatch.setattr(search, "EXACT_BELOW", 10)
    monkeypatch.setattr(search, "FILTERED_EXACT_BELOW", 10)
    n, k = 3000, 10
    store, vectors = tiered_index(pg_index(), n, lambda i: i % 100 == 7)
    assert store.has_hnsw()
    reader = store.reader()
    gold = reader.candidates(to_filter("tier=gold"))
    assert gold.count == n // 100
    for seed in range(5):
        qv = unit(10_000 + seed)
        rows, scores = reader.dense_search(QueryBundle("q", lambda _: qv), k, gold)
        ids = [c.chunk_id for c in reader.chunks(rows.tolist())]
        passing = [i for i in range(n) if i % 100 == 7]
        exact = sorted(passing, key=lambda i: -float(vectors[i] @ qv))[:k]
        assert len(ids) == k and ids == [f"d{i}#0" for i in exact]


def test_a_filter_keeping_fewer_than_filtered_exact_below_chunks_is_answered_exactly(pg_index, monkeypatch):
    """Under a filter that keeps few chunks the dense branch scores the kept chunks directly instead of walking
    the graph over the many it must drop; unfiltered, and under a filter keeping many, the graph answers."""
    monkeypatch.setattr(search, "HNSW_FROM", 1000)
    monkeypatch.setattr(search, "EXACT_BELOW", 10)
    monkeypatch.setattr(search, "FILTERED_EXACT_BELOW", 500)
    n, k = 3000, 10
    store, vectors = tiered_index(pg_index(), n, lambda i: i % 10 == 3)
    reader = store.reader()
    gold, plain = reader.candidates(to_filter("tier=gold")), reader.candidates(to_filter("tier=plain"))
    assert (gold.count, plain.count) == (300, 2700)
    qv = unit(20_000)
    through_graph = {name: bool(reader._dense_plan(QueryBundle("q", lambda _: qv), k, c)[2])
                     for name, c in (("none", None), ("gold", gold), ("plain", plain))}
    assert through_graph == {"none": True, "gold": False, "plain": True}
    rows, _ = reader.dense_search(QueryBundle("q", lambda _: qv), k, gold)
    exact = sorted(range(3, n, 10), key=lambda i: -float(vectors[i] @ qv))[:k]
    assert [c.chunk_id for c in reader.chunks(rows.tolist())] == [f"d{i}#0" for i in exact]


def test_the_graph_is_the_dense_specs_when_it_asks_for_hnsw_else_the_measured_defaults():
    from ragkit.index.postgres.store import HNSW_DEFAULTS, hnsw_params
    from ragkit.plugins import registry

    flat = registry.create("dense", {"name": "faiss"}).spec()
    assert hnsw_params(flat) == HNSW_DEFAULTS and hnsw_params(flat) is not HNSW_DEFAULTS
    spec = registry.create("dense", {"name": "faiss", "index": "hnsw", "hnsw_m": 8, "ef_construction": 40,
                                     "ef_search": 60}).spec()
    assert hnsw_params(spec) == {"m": 8, "ef_construction": 40, "ef_search": 60}


def test_the_hnsw_build_gets_memory_for_its_graph_and_never_less_than_the_server_gives():
    from ragkit.index.postgres.store import HNSW_BUILD_MEMORY_CAP_MB, hnsw_build_memory_mb, parse_memory_mb

    assert hnsw_build_memory_mb(10_000, 384, 16) == 512  # small graphs: the floor
    one_million = hnsw_build_memory_mb(1_000_000, 384, 16)
    assert 1536 * 1_000_000 / 2 ** 20 < one_million < HNSW_BUILD_MEMORY_CAP_MB  # the vectors alone are 1.4 GB
    assert hnsw_build_memory_mb(50_000_000, 384, 16) == HNSW_BUILD_MEMORY_CAP_MB
    assert [parse_memory_mb(s) for s in ("64MB", "1GB", "512kB", "2TB")] == [64, 1024, 0.5, 2 * 1024 ** 2]


def test_a_sigkill_before_commit_leaves_the_last_commit_and_the_next_writer_proceeds(pg_index):
    url = pg_index()
    store = open_store(url)
    write(store, [{"_id": "a", "title": "alpha", "text": "first document"}])
    script = ("import sys; sys.path.insert(0, 'tests/index'); from test_postgres import write; "
              f"from ragkit.index import open_store; write(open_store({url!r}), "
              "[{'_id': 'b', 'title': 'beta', 'text': 'second document'}], remove=['a.txt'])")
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, "RAGKIT_CRASH_AT": "before-commit"},
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reader = store.reader()
    assert reader.name == "g000001" and [c.chunk_id for c in reader.iter_chunks()] == ["a"]
    write(store, [{"_id": "b", "title": "beta", "text": "second document"}], remove=["a.txt"])  # not locked
    assert [c.chunk_id for c in store.reader().iter_chunks()] == ["b"]


def test_the_writer_lock_names_the_process_holding_it(pg_index):
    url = pg_index()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from ragkit.index import open_store\n"
        "from ragkit.config import Config\nfrom ragkit.index.settings import wanted\n"
        f"with open_store({url!r}).writer(wanted(Config())):\n"
        "    print('locked', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=rf"locked by another writer \(ragkit ingest pid {holder.pid} on "):
            write(open_store(url), [{"_id": "a", "title": "alpha", "text": "first document"}])
    finally:
        holder.kill()
        holder.wait()
    write(open_store(url), [{"_id": "a", "title": "alpha", "text": "first document"}])  # free again


def test_a_dimension_change_without_rebuild_is_refused(pg_index):
    store = open_store(pg_index())
    write(store, [{"_id": "a", "title": "t", "text": "alpha"}])
    chunk = Chunk("b", "b", "beta", 0, {})
    with pytest.raises(IndexConfigMismatch, match=r"holds 16-d vectors, these are 8-d; .*--rebuild"):
        with store.writer(settings(), model_id="random") as w:
            w.add([DocRecord("b", "b.txt", "", {})], [chunk], np.ones((1, 8), np.float32) / 8 ** 0.5,
                  [FileRecord("b.txt", "0" * 64, 1, 0.0, ["b"])])
    with store.writer(settings(), rebuild=True, model_id="other") as w:  # a rebuild may change it
        w.add([DocRecord("b", "b.txt", "", {})], [chunk], np.ones((1, 8), np.float32) / 8 ** 0.5,
              [FileRecord("b.txt", "0" * 64, 1, 0.0, ["b"])])
        w.commit()
    assert store.reader().dim == 8 and [c.chunk_id for c in store.reader().iter_chunks()] == ["b"]


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


def test_an_unreachable_server_is_one_clear_error():
    from ragkit.testing.postgres import free_port

    with pytest.raises(RagkitError) as exc:
        Engine.open(f"postgresql://nobody@127.0.0.1:{free_port()}/db?connect_timeout=3")
    assert "cannot reach the PostgreSQL server" in one_line(exc)


def test_a_missing_database_and_an_unknown_role_are_one_clear_error(pg_server):
    base = pg_server[0].rsplit("/", 1)[0]
    with pytest.raises(RagkitError) as exc:
        Engine.open(f"{base}/no_such_db")
    assert "no_such_db" in one_line(exc) and "create it first" in one_line(exc)
    host = base.split("@", 1)[1]
    with pytest.raises(RagkitError) as exc:
        Engine.open(f"postgresql://no_such_role:secret@{host}/postgres")
    assert "no_such_role" in one_line(exc) and "secret" not in one_line(exc)


def test_a_missing_vector_extension_names_the_command(pg_server, mini_corpus):
    """A database without pgvector, and a user who may not enable it: the error says what to run."""
    url = pg_server[0]
    base = url.rsplit("/", 1)[0]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS plain_db")
        admin.execute("DROP ROLE IF EXISTS plain_user")
        admin.execute("CREATE ROLE plain_user LOGIN")
        admin.execute("CREATE DATABASE plain_db OWNER plain_user")
    user_url = base.replace("postgres@", "plain_user@") + "/plain_db"
    with pytest.raises(RagkitError) as exc:
        Engine.open(user_url).ingest([mini_corpus])
    assert "CREATE EXTENSION vector;" in one_line(exc)


def test_a_bad_schema_name_and_an_unscorable_sparse_plugin_are_config_errors(pg_index):
    with pytest.raises(ConfigError, match="schema"):
        PostgresStore(pg_index() + "x; drop table y")
    store = open_store(pg_index())
    other = settings()
    other["sparse"] = {"name": "rank-bm25"}
    with pytest.raises(ConfigError, match="bm25s"):
        with store.writer(other):
            pass


def test_a_collected_chunks_id_is_never_reused_so_its_old_postings_stay_dead(pg_index, monkeypatch):
    """Removed chunks keep their postings inside their commit's block; once their rows are collected, a new chunk
    must not take their id, or it would inherit their terms."""
    import ragkit.index.postgres.store as pg_store

    monkeypatch.setattr(pg_store, "RETAIN_SECONDS", 0)
    store = open_store(pg_index())
    docs = [{"_id": f"d{i}", "title": "", "text": f"common words {i}"} for i in range(4)]
    write(store, docs + [{"_id": "d9", "title": "", "text": "zebra stripes"}])
    write(store, [], remove=["d9.txt"])
    write(store, [])  # collects the rows d9 left
    s = f'"{store.schema}"'
    with psycopg.connect(store.conninfo) as conn:
        assert conn.execute(f"SELECT count(*) FROM {s}.chunks WHERE doc_id = 'd9'").fetchone()[0] == 0
    write(store, [{"_id": "d10", "title": "", "text": "apple orchard"}])
    reader = store.reader()
    assert ranking(reader, reader.sparse_search(QueryBundle("zebra"), 10, None))[0] == []
    assert ranking(reader, reader.sparse_search(QueryBundle("apple"), 10, None))[0] == ["d10"]


@pytest.mark.parametrize("version", [1, 2])
def test_migrations_bring_an_older_schema_up_to_date_once(pg_index, version):
    """An index written by schema version 1 (BM25 terms on the chunks) or 2 (one row per posting) is migrated by
    the next writer: posting blocks backfilled, the same BM25 ranking; running the migrations again changes
    nothing."""
    from ragkit.index.postgres.schema import SCHEMA_VERSION, migrate

    store = open_store(pg_index())
    write(store, [{"_id": f"d{i}", "title": f"title {i}", "text": f"alpha beta {'gamma ' * i}"} for i in range(6)])
    reader = store.reader()
    q = QueryBundle("gamma alpha")
    before = ranking(reader, reader.sparse_search(q, 10, None))
    s = f'"{store.schema}"'
    with psycopg.connect(store.conninfo, autocommit=True) as conn:  # back to what that version left behind
        rows = conn.execute(f"SELECT id, text, n_tokens, added_in, removed_in FROM {s}.chunks").fetchall()
        postings = [(i, *search.term_counts(reader.analyze(text)), n, a, r) for i, text, n, a, r in rows]
        if version == 1:
            for i, terms, tfs, *_ in postings:
                conn.execute(f"UPDATE {s}.chunks SET terms = %s, tfs = %s WHERE id = %s", (terms, tfs, i))
            conn.execute(f"CREATE INDEX chunks_terms ON {s}.chunks USING gin (terms)")
        else:
            conn.execute(f"CREATE TABLE {s}.postings (term text NOT NULL, id bigint NOT NULL, tf integer NOT NULL, "
                         "n_tokens integer NOT NULL, added_in integer NOT NULL, removed_in integer)")
            for i, terms, tfs, n, a, r in postings:
                for term, tf in zip(terms, tfs):
                    conn.execute(f"INSERT INTO {s}.postings VALUES (%s, %s, %s, %s, %s, %s)", (term, i, tf, n, a, r))
        conn.execute(f"DROP TABLE {s}.term_blocks")
        conn.execute(f"UPDATE {s}.meta SET value = %s WHERE key = 'schema_version'", (str(version),))
    assert store.describe()["schema_version"] == version
    with pytest.raises(IndexCorruptError, match=rf"schema version {version} is older .* run any `ragkit ingest`"):
        store.reader()  # readers never write: they say what to do
    write(store, [], remove=[])  # the next writer migrates
    assert store.describe()["schema_version"] == SCHEMA_VERSION
    after = ranking(store.reader(), store.reader().sparse_search(q, 10, None))
    assert after[0] == before[0] and np.allclose(after[1], before[1])
    with psycopg.connect(store.conninfo) as conn:
        count = conn.execute(f"SELECT count(*) FROM {s}.term_blocks").fetchone()[0]
        assert migrate(conn.cursor(), store.schema) == SCHEMA_VERSION  # already current: nothing to do
        assert conn.execute(f"SELECT count(*) FROM {s}.term_blocks").fetchone()[0] == count > 0
        assert conn.execute(f"SELECT count(*) FROM {s}.chunks WHERE terms <> '{{}}'").fetchone()[0] == 0
        assert conn.execute("SELECT to_regclass(%s)", (f"{s}.postings",)).fetchone()[0] is None


def test_a_streaming_standby_sees_the_primarys_commits_and_refuses_writes():
    """A replica made with pg_basebackup on loopback: readers on it see each commit made on the primary; a
    writer on it gets one line saying the server is read-only."""
    import time

    from ragkit.testing.postgres import TestServer

    with TestServer() as primary:
        standby = primary.standby()
        try:
            on_primary, on_standby = (open_store(f"{s.url}?schema=replicated") for s in (primary, standby))
            for i, docs in enumerate(([{"_id": "a", "title": "alpha", "text": "first zebra"}],
                                      [{"_id": "b", "title": "beta", "text": "second zebra"}])):
                name = write(on_primary, docs)
                deadline = time.monotonic() + 30
                while on_standby.version() != name:
                    assert time.monotonic() < deadline, "the standby never replayed the commit"
                    time.sleep(0.05)
                reader = on_standby.reader()
                ids = ranking(reader, reader.sparse_search(QueryBundle("zebra"), 10, None))[0]
                assert sorted(ids) == ["a", "b"][: i + 1]
            with pytest.raises(RagkitError) as exc:
                write(on_standby, [{"_id": "c", "title": "gamma", "text": "third"}])
            assert "read-only" in one_line(exc)
        finally:
            standby.stop()


class ExchangeCounter:
    """A TCP proxy on 127.0.0.1 in front of the server that counts round trips: how often the server starts
    answering after the client has sent something."""

    def __init__(self, host: str, port: int) -> None:
        import socket
        import threading

        self.target, self.exchanges, self._stop = (host, port), 0, False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client, server) -> None:
        import selectors

        sel, last = selectors.DefaultSelector(), None
        sel.register(client, selectors.EVENT_READ, server)
        sel.register(server, selectors.EVENT_READ, client)
        while not self._stop:
            for key, _ in sel.select(timeout=0.5):
                data = key.fileobj.recv(1 << 16)
                if not data:
                    client.close(), server.close()
                    return
                direction = "server" if key.fileobj is server else "client"
                if direction == "server" and last == "client":
                    self.exchanges += 1
                last = direction
                key.data.sendall(data)

    def close(self) -> None:
        self._stop = True
        self.listener.close()


@pytest.mark.parametrize("through_hnsw", [True, False])
def test_hybrid_search_is_one_round_trip_and_equals_the_two_branches(pg_index, monkeypatch, through_hnsw):
    """Both branches of a hybrid query travel together (pipeline mode): one round trip to the server whether
    the dense half walks the HNSW index (with its SET LOCALs) or scans exactly, and the same rankings as the two
    separate calls, which take a round trip each or more."""
    from urllib.parse import urlsplit, urlunsplit

    monkeypatch.setattr(search, "HNSW_FROM", 1000)
    monkeypatch.setattr(search, "EXACT_BELOW", 100 if through_hnsw else 10**9)
    monkeypatch.setattr(search, "FILTERED_EXACT_BELOW", 100 if through_hnsw else 10**9)
    url = pg_index()
    n = 2000
    chunks = [Chunk(f"d{i}#0", f"d{i}", f"text {i} word{i % 7} other{i % 11}", 0, {"tier": str(i % 4)})
              for i in range(n)]
    vectors = np.stack([unit(i) for i in range(n)])
    with open_store(url).writer(settings(), model_id="random") as w:
        w.add([DocRecord(f"d{i}", f"d{i}.txt", "", {}) for i in range(n)], chunks, vectors,
              [FileRecord(f"d{i}.txt", "0" * 64, 1, 0.0, [f"d{i}"]) for i in range(n)])
        w.commit()
    parts = urlsplit(url)
    proxy = ExchangeCounter(parts.hostname, parts.port)
    try:
        proxied = urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{proxy.port}")))
        store = open_store(proxied)
        assert store.has_hnsw()
        reader = store.reader()
        reader.warm_up()
        for flt in (None, reader.candidates(to_filter("tier=1"))):
            for seed in range(3):
                q = QueryBundle(f"word{seed} other{seed}", lambda _, s=seed: unit(50_000 + s))
                before = proxy.exchanges
                sparse, dense = reader.hybrid_search(q, 10, flt)
                assert proxy.exchanges - before == 1
                before = proxy.exchanges
                alone = reader.sparse_search(q, 10, flt), reader.dense_search(q, 10, flt)
                assert proxy.exchanges - before >= 2
                for got, want in zip((sparse, dense), alone):
                    assert len(got[0]) == 10
                    assert got[0].tolist() == want[0].tolist() and np.allclose(got[1], want[1])
    finally:
        proxy.close()
