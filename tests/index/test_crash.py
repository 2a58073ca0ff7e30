"""Crash safety with a real SIGKILL: the previous commit stays readable and complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragkit import Engine

BULK = 400  # ~8 s of embedding on 2 cores: long enough to be killed in the middle of it
WORDS = ("agent collector pipeline retention dashboard alert quota region backup upgrade token scope "
         "ingest query latency shard replica snapshot tenant audit").split()


def _bulk(root: Path, n: int) -> None:
    for i in range(n):
        body = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(120))
        (root / "bulk" / f"doc{i:04d}.txt").write_text(f"Bulk document {i}. {body}.\n", encoding="utf-8")


def _ingest_proc(corpus: Path, index: Path, env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "ragkit", "ingest", str(corpus), "--index", str(index)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _assert_previous_commit_intact(index: Path, expected_docs: int) -> None:
    eng = Engine.open(index)
    st = eng.stats()
    assert st["generation"] == "g000001" and st["documents"] == expected_docs
    hits = eng.retrieve("rotate api key grace period", k=3).hits
    assert hits and hits[0].doc_id.endswith("api-keys.md")
    assert len(eng.reader().iter_chunks()) == st["chunks"]
    eng.close()


@pytest.fixture
def committed(tmp_path, mini_corpus):
    index = tmp_path / "idx"
    eng = Engine.open(index)
    eng.ingest([mini_corpus])
    eng.close()
    (mini_corpus / "bulk").mkdir()
    _bulk(mini_corpus, BULK)
    return mini_corpus, index


def test_sigkill_while_embedding(committed):
    corpus, index = committed
    proc = _ingest_proc(corpus, index)
    # wait until the writer holds the lock (it writes its pid there), give it time to reach the
    # embedding of the new files (model load ~2-3 s, then ~8 s of embedding), then kill it hard
    deadline = time.time() + 60
    while time.time() < deadline and (index / "write.lock").read_text().strip() != str(proc.pid):
        time.sleep(0.05)
    time.sleep(4.0)
    assert proc.poll() is None, "ingest finished before it could be killed; make the bulk corpus larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _assert_previous_commit_intact(index, 4)
    # the next writer is not blocked, cleans up, reuses the vectors embedded before the kill, and commits
    eng = Engine.open(index)
    rep = eng.ingest([corpus])
    assert rep.committed and rep.documents_total == BULK + 4
    assert rep.chunks_embedded < rep.chunks_total  # the committed documents came from the cache


@pytest.mark.parametrize("point", ["before-commit"])
def test_sigkill_with_the_next_generation_fully_staged(committed, point):
    corpus, index = committed
    proc = _ingest_proc(corpus, index, {"RAGKIT_CRASH_AT": point})
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    staged = [p.name for p in (index / "gens").iterdir() if p.name.startswith(".tmp-")]
    assert staged, "the kill should have left a staged generation behind"
    _assert_previous_commit_intact(index, 4)
    rep = Engine.open(index).ingest([corpus])
    assert rep.committed and rep.chunks_embedded == 0  # everything was cached before the kill
    assert not [p for p in (index / "gens").iterdir() if p.name.startswith(".tmp-")]


def test_sigkill_at_random_moments(committed):
    corpus, index = committed
    for delay in (0.3, 2.5, 5.0):
        proc = _ingest_proc(corpus, index)
        time.sleep(delay)
        if proc.poll() is not None:  # it finished: the new commit must be complete instead
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _assert_previous_commit_intact(index, 4)


_STUCK_WRITER = '''
import os, sys, time
from pathlib import Path
from ragkit import Engine
from ragkit.plugins import Plugin, registry
from ragkit.types import Document

class Stuck(Plugin):
    stage, name = "loader", "test-stuck"
    extensions = (".stuck",)

    def load(self, path, doc_id):
        Path(sys.argv[3]).write_text(str(os.getpid()))  # the parse worker's pid: it is parsing now
        time.sleep(120)
        yield Document(doc_id=doc_id, text="never", title="never")

registry.register(Stuck)
Engine.open(Path(sys.argv[2])).ingest([Path(sys.argv[1])])
'''


def test_sigkill_while_a_file_is_parsed_frees_the_lock(committed, tmp_path):
    """The parse worker is a fork of the writer and so holds the write lock's descriptor too: killing the writer
    mid-parse must take the worker down with it, or the orphan keeps the index locked."""
    corpus, index = committed
    (corpus / "bulk" / "zz.stuck").write_text("stuck")
    script, parsing = tmp_path / "stuck_writer.py", tmp_path / "parsing.pid"
    script.write_text(_STUCK_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(corpus), str(index), str(parsing)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not parsing.exists() and proc.poll() is None:
        time.sleep(0.05)
    assert parsing.exists(), f"the writer never reached the stuck file: {proc.communicate()[1][-2000:]}"
    worker_pid = int(parsing.read_text())
    assert worker_pid != proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (corpus / "bulk" / "zz.stuck").unlink()
    deadline, err = time.time() + 15, None
    while time.time() < deadline:
        try:
            rep = Engine.open(index).ingest([corpus])
            break
        except Exception as exc:  # noqa: BLE001 - IndexLockedError while the orphan lives
            err = exc
            time.sleep(0.5)
    else:
        pytest.fail(f"the index stayed locked after the writer was killed: {err}")
    assert rep.committed and rep.documents_total == BULK + 4
