"""Property-based fuzzing of every built-in loader with Hypothesis: random bytes, truncations and byte flips of a
valid file of each format. A loader returns documents or raises LoadError with a one-line reason; it never raises
anything else and never runs into the parse limits. Each input is parsed in the ingest's own worker process, so a
hang or a crash is caught the way an ingest catches it."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ragkit.errors import LoadError
from ragkit.ingest.files import loaders_by_extension
from ragkit.ingest.worker import ParseWorker, isolation_available
from ragkit.types import Document, LoadIssue

from .fuzzing import FUZZ, record

LIMIT_SECONDS = 30  # far above any sample's parse time: reaching it means the loader hangs


def sample_pdf() -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setTitle("Keys")
    for page in ("Rotate API keys from the settings page.", "Old keys keep working for one day."):
        c.drawString(72, 720, page)
        c.showPage()
    c.save()
    return buf.getvalue()


def sample_docx() -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("Retention", 1)
    d.add_paragraph("Logs are kept for 30 days.")
    d.add_paragraph("Export them first", style="List Bullet")
    table = d.add_table(rows=2, cols=2)
    for i, row in enumerate((("plan", "days"), ("starter", "30"))):
        for j, cell in enumerate(row):
            table.cell(i, j).text = cell
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def sample_jsonl() -> bytes:
    rows = [{"_id": f"d{i}", "title": f"Doc {i}", "text": f"Body number {i} about backups."} for i in range(3)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def sample_xlsx() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "plans"
    for row in (("plan", "retention days", "price"), ("starter", 30, "$9"), ("pro", 90, "1,200 USD")):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


SAMPLES = {
    ".txt": lambda: "Rotating keys\n\nOpen Settings and press Rotate. Café crème.\n".encode(),
    ".md": lambda: b"---\ntitle: Keys\ntags: [a, b]\n---\n# Keys\n\nRotate them.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
    ".html": lambda: (b"<html><head><title>Keys</title><meta name='author' content='x'></head><body><nav>menu</nav>"
                      b"<main><h1>Keys</h1><p>Rotate <b>them</b>.</p><table><tr><td>1</td></tr></table></main>"
                      b"<script>var a = '<p>';</script></body></html>"),
    ".pdf": sample_pdf,
    ".docx": sample_docx,
    ".jsonl": sample_jsonl,
    ".jsonl.gz": lambda: gzip.compress(sample_jsonl()),
    ".csv": lambda: b'plan,retention days,price\nstarter,30,"1,200 requests"\npro,90,$49\n',
    ".tsv": lambda: b"plan\tdays\tdate\nstarter\t30\t2024-01-05\npro\t90\t2024-02-11\n",
    ".xlsx": sample_xlsx,
}


def mutations(sample: bytes) -> st.SearchStrategy[tuple[str, bytes]]:
    flips = st.lists(st.tuples(st.integers(0, len(sample) - 1), st.integers(0, 255)), min_size=1, max_size=16)

    def flipped(changes: list[tuple[int, int]]) -> bytes:
        data = bytearray(sample)
        for pos, value in changes:
            data[pos] = value
        return bytes(data)

    return st.one_of(
        st.binary(max_size=2048).map(lambda b: ("random", b)),
        st.integers(0, len(sample)).map(lambda n: ("truncated", sample[:n])),
        flips.map(lambda c: ("flipped", flipped(c))),
        st.tuples(st.integers(0, len(sample)), st.binary(min_size=1, max_size=64)).map(
            lambda t: ("inserted", sample[:t[0]] + t[1] + sample[t[0]:])),
    )


def parse(job: tuple[str, bytes]) -> tuple[str, str]:
    """In the worker: write the bytes under the loader's extension and load them. Returns (outcome, detail)."""
    ext, data = job
    loader = loaders_by_extension()[ext]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{ext}"
        path.write_bytes(data)
        try:
            items = list(loader.load(path, path.name))
        except LoadError as exc:
            return "load_error", str(exc)
        except Exception as exc:  # noqa: BLE001 - what the property forbids; reported by the test
            return "crash", f"{type(exc).__name__}: {exc}"
    for item in items:
        if not isinstance(item, (Document, LoadIssue)) or (isinstance(item, Document) and not isinstance(item.text, str)):
            return "crash", f"loader yielded {type(item).__name__}"
    return "documents", str(sum(isinstance(i, Document) for i in items))


@pytest.fixture(scope="module")
def worker():
    if not isolation_available():
        pytest.skip("the parse worker needs fork (POSIX)")
    with ParseWorker(parse, LIMIT_SECONDS, 2048) as w:
        yield w


@pytest.mark.slow
@pytest.mark.parametrize("ext", list(SAMPLES))
def test_loader_returns_documents_or_a_one_line_error(ext, worker):
    sample = SAMPLES[ext]()
    assert worker.run((ext, sample))[0] == "documents"  # the valid sample loads

    @given(mutations(sample))
    @settings(max_examples=FUZZ.loader_examples, deadline=None, derandomize=FUZZ.derandomize, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    def check(case: tuple[str, bytes]) -> None:
        how, data = case
        try:
            outcome, detail = worker.run((ext, data))
        except LoadError as exc:  # the worker's own limits: time, memory, a dead process
            record("loader", f"{ext} {how}", "limit")
            raise AssertionError(f"{ext} {how} input of {len(data)} bytes: {exc}") from None
        record("loader", f"{ext} {how}", outcome)
        assert outcome != "crash", f"{ext} {how} input of {len(data)} bytes raised {detail}"
        if outcome == "load_error":
            assert detail.strip() and "\n" not in detail, repr(detail)

    check()
