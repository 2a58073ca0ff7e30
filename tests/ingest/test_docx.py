"""The .docx loader on documents written by python-docx itself: body order, headings, lists, tables, title and
metadata, damaged packages, and a whole ingest + query through the engine."""

from __future__ import annotations

import json
import re
import sys
import zipfile

import pytest

docx = pytest.importorskip("docx", reason="the ragkit[docx] extra")

from ragkit.errors import LoadError  # noqa: E402
from ragkit.ingest.docx import DocxLoader  # noqa: E402


def runbook(path, *, title="", author="Ops team"):
    d = docx.Document()
    d.core_properties.title, d.core_properties.author = title, author
    d.add_heading("Collector runbook", level=0)
    d.add_paragraph("The collector listens on port 4317 and retries a failed batch three times.")
    d.add_heading("Escalation", level=2)
    d.add_paragraph("Page the on-call engineer first.", style="List Bullet")
    d.add_paragraph("Then open an incident on the status page.", style="List Bullet")
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate([("Plan", "Logs", "Metrics"), ("Free", "7 days", "30 days"),
                             ("Team", "15 days", "13 months")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    d.add_paragraph("Backups of the collector's spool run nightly at 02:00 UTC.")
    d.save(str(path))
    return path


def load(path):
    (doc,) = DocxLoader().load(path, path.name)
    return doc


def test_body_in_order_with_headings_lists_and_table_rows(tmp_path):
    doc = load(runbook(tmp_path / "r.docx"))
    assert doc.text.split("\n") == [
        "# Collector runbook", "",
        "The collector listens on port 4317 and retries a failed batch three times.", "",
        "## Escalation", "",
        "- Page the on-call engineer first.", "- Then open an incident on the status page.", "",
        "Plan | Logs | Metrics", "Free | 7 days | 30 days", "Team | 15 days | 13 months", "",
        "Backups of the collector's spool run nightly at 02:00 UTC."]
    assert doc.title == "Collector runbook" and doc.metadata["author"] == "Ops team"


def test_merged_cell_is_kept_once(tmp_path):
    d = docx.Document()
    table = d.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 2)).text = "Retention by plan"
    for c, value in enumerate(("Free", "7 days", "30 days")):
        table.cell(1, c).text = value
    d.save(str(tmp_path / "m.docx"))
    assert load(tmp_path / "m.docx").text.split("\n") == ["Retention by plan", "Free | 7 days | 30 days"]


def test_title_precedence_sidecar_then_property_then_heading(tmp_path):
    assert load(runbook(tmp_path / "a.docx", title="Runbook v2")).title == "Runbook v2"
    path = runbook(tmp_path / "b.docx", title="Runbook v2")
    (tmp_path / "b.docx.meta.json").write_text(json.dumps({"title": "From sidecar", "team": "sre"}))
    doc = load(path)
    assert doc.title == "From sidecar" and doc.metadata["team"] == "sre" and "title" not in doc.metadata
    d = docx.Document()
    d.add_paragraph("No heading here, only a sentence of text.")
    d.save(str(tmp_path / "plain-notes.docx"))
    assert load(tmp_path / "plain-notes.docx").title == "plain-notes"


def test_damaged_packages_name_the_cause(tmp_path):
    good = runbook(tmp_path / "good.docx").read_bytes()
    (tmp_path / "trunc.docx").write_bytes(good[: len(good) // 2])
    with zipfile.ZipFile(tmp_path / "other.docx", "w") as z:
        z.writestr("notes.txt", "a ZIP, but not a Word document")
    with zipfile.ZipFile(tmp_path / "good.docx") as src, zipfile.ZipFile(tmp_path / "xml.docx", "w") as z:
        for item in src.infolist():
            z.writestr(item, b"<w:document><broken" if item.filename == "word/document.xml" else src.read(item))
    docx.Document().save(str(tmp_path / "empty.docx"))
    (tmp_path / "renamed.docx").write_text("plain text saved as .docx", encoding="utf-8")
    for name, needle in [("trunc.docx", "not a readable ZIP"), ("other.docx", "not a Word document"),
                         ("xml.docx", "damaged part (XMLSyntaxError)"), ("empty.docx", "empty document"),
                         ("renamed.docx", "not a .docx file")]:
        with pytest.raises(LoadError, match=re.escape(needle)) as exc:
            load(tmp_path / name)
        assert "\n" not in str(exc.value)


def test_a_package_that_expands_too_far_is_refused_before_parsing(tmp_path):
    good = runbook(tmp_path / "good.docx")
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            z.writestr(item.filename, src.read(item) + (b" " * 3 * 2**20 if item.filename == "word/document.xml"
                                                         else b""), zipfile.ZIP_DEFLATED)
    assert (tmp_path / "bomb.docx").stat().st_size < 2**20 // 4  # over 3 MB of XML in a small file
    assert load(tmp_path / "bomb.docx").title == "Collector runbook"  # under the default limit it loads
    with pytest.raises(LoadError, match=r"expands to [34] MB uncompressed \(more than 2 MB, limit: "
                                        r"ingest.max_expanded_mb"):
        list(DocxLoader(max_expanded_mb=2).load(tmp_path / "bomb.docx", "bomb.docx"))


def test_without_python_docx_the_error_names_the_extra(tmp_path, monkeypatch):
    path = runbook(tmp_path / "r.docx")
    monkeypatch.setitem(sys.modules, "docx", None)  # what `import docx` meets when the extra is not installed
    with pytest.raises(LoadError, match=r"pip install 'ragkit\[docx\]'"):
        load(path)


def test_ingest_and_answer_from_a_docx(tmp_path):
    from ragkit import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    runbook(docs / "runbook.docx")
    (docs / "broken.docx").write_bytes(b"PK\x03\x04 not really a package")
    with Engine.open(tmp_path / "idx") as eng:
        rep = eng.ingest([docs])
        assert rep.documents_added == 1 and [p for p, _ in rep.failed] == [str(docs / "broken.docx")]
        answer = eng.query("How many days of logs does the Team plan keep?", k=3)
    assert answer.citations and answer.citations[0].doc_id == "runbook.docx"
    assert "Logs: 15 days" in answer.text
