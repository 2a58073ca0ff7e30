"""Format-specific behaviour of the loaders: metadata, boilerplate removal, pages, malformed records."""

from __future__ import annotations

import gzip
import json

import pytest

from ragkit.errors import LoadError
from ragkit.ingest.beir import BeirLoader
from ragkit.ingest.html import HtmlLoader
from ragkit.ingest.markdown import MarkdownLoader
from ragkit.ingest.pdf import PdfLoader
from ragkit.ingest.text import TextLoader
from ragkit.types import Document, LoadIssue

from ..conftest import MINI_DOCS


def test_markdown_front_matter_and_sidecar(tmp_path):
    p = tmp_path / "a.md"
    p.write_text(MINI_DOCS["cloud/api-keys.md"], encoding="utf-8")
    (tmp_path / "a.md.meta.json").write_text(json.dumps({"team": "platform"}))
    (doc,) = MarkdownLoader().load(p, "a.md")
    assert doc.title == "Rotating API keys"
    assert doc.metadata == {"product": "cloud", "date": "2024-05-01", "status": "current", "team": "platform"}
    assert not doc.text.startswith("---") and "press Rotate" in doc.text


def test_malformed_front_matter(tmp_path):
    p = tmp_path / "a.md"
    p.write_text("---\ntitle: [unclosed\n---\nbody\n", encoding="utf-8")
    with pytest.raises(LoadError, match="front matter"):
        list(MarkdownLoader().load(p, "a.md"))


def test_html_drops_scripts_styles_navigation(tmp_path):
    p = tmp_path / "b.html"
    p.write_text(MINI_DOCS["selfhosted/backup.html"], encoding="utf-8")
    (doc,) = HtmlLoader().load(p, "b.html")
    assert doc.title == "Backups" and doc.metadata["product"] == "selfhosted"
    assert "beacon backup create" in doc.text and "daily | 7 snapshots" in doc.text
    assert doc.text.startswith("# Backups\n")
    for junk in ("zzz-script-text", "color:red", "Pricing", "Cookie"):
        assert junk not in doc.text


def test_pdf_pages_become_segments(tmp_path):
    from reportlab.pdfgen import canvas

    p = tmp_path / "m.pdf"
    c = canvas.Canvas(str(p), invariant=1)
    for i in range(1, 4):
        c.drawString(72, 720, f"This is page {i} of the manual.")
        c.showPage()
    c.save()
    (doc,) = PdfLoader().load(p, "m.pdf")
    assert [s.metadata["page"] for s in doc.segments] == [1, 2, 3]
    assert "page 2" in doc.segments[1].text and doc.metadata["pages"] == 3


def test_truncated_pdf(tmp_path):
    from reportlab.pdfgen import canvas

    p = tmp_path / "m.pdf"
    c = canvas.Canvas(str(p), invariant=1)
    c.drawString(72, 720, "Hello")
    c.save()
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(LoadError):
        list(PdfLoader().load(p, "m.pdf"))


def test_utf16_with_bom_is_read(tmp_path):
    p = tmp_path / "u16.txt"
    p.write_bytes("hello from utf-16".encode("utf-16"))
    (doc,) = TextLoader().load(p, "u16.txt")
    assert doc.text == "hello from utf-16"


def test_beir_malformed_lines_are_reported_and_skipped(tmp_path):
    p = tmp_path / "corpus.jsonl"
    p.write_text("\n".join([
        json.dumps({"_id": "1", "title": "A", "text": "alpha"}),
        "{not json",
        json.dumps({"title": "no id", "text": "x"}),
        json.dumps({"_id": "2", "title": "", "text": "beta"}),
        json.dumps(["a list"]),
    ]) + "\n", encoding="utf-8")
    items = list(BeirLoader().load(p, "corpus.jsonl"))
    docs = [i for i in items if isinstance(i, Document)]
    issues = [i for i in items if isinstance(i, LoadIssue)]
    assert [d.doc_id for d in docs] == ["1", "2"]
    assert docs[0].text == "A\n\nalpha" and docs[1].text == "beta"
    assert [i.location for i in issues] == ["corpus.jsonl:2", "corpus.jsonl:3", "corpus.jsonl:5"]
    assert "invalid JSON" in issues[0].reason and "missing '_id'" in issues[1].reason


def test_truncated_gzip(tmp_path):
    p = tmp_path / "corpus.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as fh:
        for i in range(2000):
            fh.write(json.dumps({"_id": str(i), "title": "t", "text": f"document number {i} " * 5}) + "\n")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match="truncated or corrupt gzip"):
        list(BeirLoader().load(p, "corpus.jsonl.gz"))
