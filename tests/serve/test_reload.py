"""Index updates without downtime: `ragkit ingest` (another process) commits into the served index while
clients keep querying; no request fails, and the new documents become visible without a restart."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx

from ragkit.plugins import QueryBundle

from tests.conftest import MINI_DOCS, ROOT, write_tree
from tests.serve.conftest import running


def test_queries_keep_succeeding_while_another_process_commits(tmp_path, index_location):
    from ragkit import Engine
    from ragkit.config import ServeConfig
    from ragkit.serve import create_app

    corpus = write_tree(tmp_path / "docs", MINI_DOCS)
    index = index_location()  # a directory, then a postgresql:// URL
    with Engine.open(index) as eng:
        first = eng.ingest([corpus]).generation
    app = create_app(index, None, settings=ServeConfig(reload_interval=0.2))
    errors, done, stop = [], [], threading.Event()

    def hammer(mode):
        with httpx.Client(base_url=url, timeout=60) as c:
            while not stop.is_set():
                try:
                    for path in ("/v1/query", "/v1/retrieve"):
                        r = c.post(path, json={"query": "how are API keys rotated?", "k": 5, "mode": mode})
                        if r.status_code != 200:
                            errors.append((r.status_code, r.text[:200]))
                        done.append(time.monotonic())
                    time.sleep(0.02)  # leave the other process some CPU
                except Exception as exc:  # a dropped connection is an error too
                    errors.append(repr(exc))

    with running(app) as url:
        threads = [threading.Thread(target=hammer, args=(m,)) for m in ("hybrid", "bm25")]
        for t in threads:
            t.start()
        try:
            write_tree(corpus, {"ops/staging.md": "# Staging\n\nHeliotrope is the codename of the staging cluster.\n"})
            t0 = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "ragkit", "ingest", str(corpus), "--index", str(index),
                                   "--json"], capture_output=True, text=True, cwd=ROOT, timeout=600)
            assert proc.returncode == 0, proc.stderr
            assert sum(1 for d in done if d > t0) > 0  # queries were served while the other process worked
            word = "heliotrope"
            deadline = time.monotonic() + 60
            while True:
                hits = httpx.post(url + "/v1/retrieve", json={"query": word, "mode": "bm25"}).json()["hits"]
                if hits and hits[0]["doc_id"] == "ops/staging.md":
                    break
                assert time.monotonic() < deadline, f"{word} never became visible"
                time.sleep(0.1)
            second = app.state.ragkit.engine.reader().name
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert errors == []
    assert len(done) > 10
    assert first < second


def test_a_replaced_generation_stays_readable_for_whoever_holds_it(tmp_path):
    """What in-flight requests rely on: the engine moves to a new commit without closing the generation a
    request already took, even after the writer has deleted its directory. Embedded store only: it is about
    generation directories; a postgres reader keeps its version through later commits by row versioning, which
    StoreConformance.test_an_open_reader_keeps_its_version checks on both stores."""
    from ragkit import Engine

    corpus = write_tree(tmp_path / "docs", MINI_DOCS)
    reader, writer = Engine.open(tmp_path / "idx"), Engine.open(tmp_path / "idx")
    writer.ingest([corpus])
    held = reader.reader()
    for i in range(3):  # three commits: the held generation's directory is collected
        write_tree(corpus, {"extra.md": f"# Extra\n\nRevision {i} of the zanzibar runbook.\n"})
        writer.ingest([corpus])
    assert not held.path.exists()
    assert reader.reader() is not held
    assert reader.retrieve("zanzibar runbook", mode="bm25").hits[0].doc_id == "extra.md"
    rows, _ = held.sparse_search(QueryBundle("rotate API keys", reader.embedder.embed_query), 3, None)
    assert [c.doc_id for c in held.chunks(rows)]  # still answers from its own (deleted) files
    reader.close()
    writer.close()
