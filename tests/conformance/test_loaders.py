"""Every loader: the formats it claims load to non-empty documents; bad bytes give a LoadError with a reason."""

from __future__ import annotations

import gzip
import json

import pytest

from ragkit.errors import LoadError
from ragkit.plugins import registry
from ragkit.types import Document

LOADERS = registry.names("loader")


def _sample(name: str, tmp_path):
    if name == "pdf":
        from reportlab.pdfgen import canvas

        path = tmp_path / "s.pdf"
        c = canvas.Canvas(str(path), invariant=1)
        c.drawString(72, 720, "Page one says the collector listens on port 4317.")
        c.showPage()
        c.drawString(72, 720, "Page two says backups run nightly.")
        c.showPage()
        c.save()
        return path
    if name == "docx":
        import docx

        path = tmp_path / "s.docx"
        document = docx.Document()
        document.add_paragraph("Some real content about retention.")
        document.save(str(path))
        return path
    if name == "beir":
        path = tmp_path / "c.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(json.dumps({"_id": "d1", "title": "T", "text": "Body text here."}) + "\n")
        return path
    ext = {"text": ".txt", "markdown": ".md", "html": ".html"}[name]
    path = tmp_path / f"s{ext}"
    path.write_text("<p>Some real content about retention.</p>" if name == "html" else
                    "Some real content about retention.", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", LOADERS)
def test_loads_its_format(name, tmp_path):
    loader = registry.create("loader", name)
    path = _sample(name, tmp_path)
    assert any(path.name.endswith(e) for e in loader.extensions)
    docs = [d for d in loader.load(path, path.name) if isinstance(d, Document)]
    assert docs and all(d.text.strip() and d.doc_id for d in docs)


@pytest.mark.parametrize("name", LOADERS)
@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\x03binary\xff\xfe" * 10, b"   \n  "],
                         ids=["empty", "binary", "blank"])
def test_bad_bytes_raise_load_error(name, content, tmp_path):
    loader = registry.create("loader", name)
    path = tmp_path / f"bad{loader.extensions[0]}"
    path.write_bytes(content)
    with pytest.raises(LoadError) as exc:
        list(loader.load(path, path.name))
    assert str(exc.value) and "\n" not in str(exc.value)
