"""Every file is parsed in a worker process under a deadline and a memory cap: a loader that spins, allocates
without bound or dies takes only its own file down; the worker restarts and the ingest commits the rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragkit import Engine
from ragkit.errors import LoadError
from ragkit.ingest.pdf import PdfLoader
from ragkit.ingest.worker import ParseWorker, isolation_available
from ragkit.plugins import Plugin, registry
from ragkit.types import Document

from .test_ingest import ingest_within

pytestmark = pytest.mark.skipif(not isolation_available(), reason="parse isolation needs fork (POSIX)")


class Misbehaving(Plugin):
    """Reads ``*.bad`` files whose first word says how to fail: spin, hog, die, or (anything else) parse."""

    stage, name = "loader", "test-misbehaving"
    extensions = (".bad",)

    def load(self, path: Path, doc_id: str):
        text = path.read_text()
        how = text.split()[0]
        if how == "spin":
            while True:
                pass
        if how == "hog":
            hoard = []
            while True:
                hoard.append(bytearray(64 * 2**20))
        if how == "die":
            os._exit(7)
        yield Document(doc_id=doc_id, text=text, title=path.stem)


@pytest.fixture
def misbehaving():
    registry.register(Misbehaving)
    yield
    registry.unregister("loader", "test-misbehaving")


def failed_by_name(report) -> dict[str, str]:
    return {os.path.basename(p): reason for p, reason in report.failed}


def test_a_spinning_loader_is_stopped_and_the_rest_committed(tmp_path, misbehaving):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-spin.bad").write_text("spin forever")
    (docs / "b-fine.bad").write_text("fine: the quokka sentence survives")
    (docs / "c-spin.bad").write_text("spin again")
    (docs / "d-note.md").write_text("# Note\n\nA markdown file after two stalled parses.\n")
    cfg = {"ingest": {"max_parse_seconds": 6}}  # room for a busy machine; the spinning files never finish
    with Engine.open(tmp_path / "idx", config=cfg) as eng:
        report = ingest_within(eng, [docs])  # fails instead of stalling the suite if the parse were not stopped
        failed = failed_by_name(report)
        assert set(failed) == {"a-spin.bad", "c-spin.bad"}
        assert failed["a-spin.bad"] == ("parsing took longer than 6 s (limit: ingest.max_parse_seconds); "
                                        "the parser was stopped")
        assert report.committed and report.files_read == 2
        assert eng.retrieve("quokka", k=1, mode="bm25").hits[0].doc_id == "b-fine.bad"


def test_memory_and_crashes_are_reported_per_file(tmp_path, misbehaving):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hog.bad").write_text("hog memory")
    (docs / "die.bad").write_text("die now")
    (docs / "ok.bad").write_text("ok: the wombat line is indexed")
    with Engine.open(tmp_path / "idx", config={"ingest": {"max_parse_memory_mb": 256}}) as eng:
        report = eng.ingest([docs])
        failed = failed_by_name(report)
        assert failed == {"hog.bad": "parsing needed more than 256 MB (limit: ingest.max_parse_memory_mb)",
                          "die.bad": "the parser process died (exit code 7)"}
        assert report.committed and eng.retrieve("wombat", k=1, mode="bm25").hits[0].doc_id == "ok.bad"


def test_the_worker_restarts_after_a_kill_and_runs_in_process_when_off(tmp_path):
    def parse(job):
        if job == "spin":
            while True:
                pass
        return job.upper(), os.getpid()

    with ParseWorker(parse, 1.0, 0) as worker:
        first_pid = worker.run("a")[1]
        assert first_pid != os.getpid() and worker.run("b")[1] == first_pid  # one child serves many files
        with pytest.raises(LoadError, match="longer than 1 s"):
            worker.run("spin")
        assert worker.run("c") == ("C", worker.process.pid) and worker.process.pid != first_pid
        assert worker.restarts == 1
    assert ParseWorker(parse, 0, 0).run("x") == ("X", os.getpid())


def test_pdf_page_limit(tmp_path):
    from reportlab.pdfgen import canvas

    p = tmp_path / "three.pdf"
    c = canvas.Canvas(str(p))
    for i in range(3):
        c.drawString(72, 720, f"page {i + 1} text")
        c.showPage()
    c.save()
    assert len(list(PdfLoader(max_pages=3).load(p, "three.pdf"))) == 1
    with pytest.raises(LoadError, match=r"^3 pages, more than 2 \(limit: ingest.max_pdf_pages\)$"):
        list(PdfLoader(max_pages=2).load(p, "three.pdf"))
    with Engine.open(tmp_path / "idx", config={"ingest": {"max_pdf_pages": 2}}) as eng:
        report = eng.ingest([p])
        assert report.failed == [(str(p), "3 pages, more than 2 (limit: ingest.max_pdf_pages)")]


def test_line_length_limit_for_every_text_format(tmp_path):
    from ragkit.ingest.beir import BeirLoader
    from ragkit.ingest.html import HtmlLoader
    from ragkit.ingest.markdown import MarkdownLoader
    from ragkit.ingest.text import TextLoader

    long_line = "word " * 400  # 2,000 characters
    files = {"a.txt": (TextLoader, f"Title\n\n{long_line}\n"), "a.md": (MarkdownLoader, f"# T\n\n{long_line}\n"),
             "a.html": (HtmlLoader, f"<p>{long_line}</p>"),
             "a.jsonl": (BeirLoader, '{"_id": "1", "text": "short"}\n{"_id": "2", "text": "' + long_line + '"}\n')}
    for name, (cls, text) in files.items():
        p = tmp_path / name
        p.write_text(text)
        assert list(cls(max_line_chars=2100).load(p, name))
        with pytest.raises(LoadError, match=r"^line \d is longer than 1000 (characters|bytes) "
                                            r"\(limit: ingest.max_line_chars\)$"):
            list(cls(max_line_chars=1000).load(p, name))


def test_a_gzip_bomb_is_refused_by_its_expanded_size(tmp_path):
    import gzip

    p = tmp_path / "bomb.jsonl.gz"
    line = b'{"_id": "x", "text": "' + b"a" * 1000 + b'"}\n'
    p.write_bytes(gzip.compress(line * 3000))  # 3 MB of JSON lines in a few KB
    assert p.stat().st_size < 100_000
    with Engine.open(tmp_path / "idx", config={"ingest": {"max_expanded_mb": 1}}) as eng:
        report = eng.ingest([p])
    assert report.failed == [(str(p), "expands past 1 MB uncompressed (limit: ingest.max_expanded_mb; refused as a "
                                      "possible gzip bomb)")]


def test_a_path_swapped_for_a_fifo_after_the_walk_is_refused_not_opened(tmp_path):
    from ragkit.ingest.files import sha256_file

    fifo = tmp_path / "was-a-file.md"
    os.mkfifo(fifo)  # nobody writes to it: a blocking open would never return
    with pytest.raises(LoadError, match=r"^not a regular file \(it changed since the folder was listed\)$"):
        sha256_file(fifo)
