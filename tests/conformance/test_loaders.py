"""Every registered loader passes ragkit.testing.LoaderConformance on a sample of its format."""

from __future__ import annotations

import gzip
import json

import pytest

from ragkit.plugins import registry
from ragkit.testing import LoaderConformance

LOADERS = registry.names("loader")


def sample(name: str, tmp_path):
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
    if name == "table":
        path = tmp_path / "s.csv"
        path.write_text("Plan,Seats\nTeam,25\nBusiness,100\n", encoding="utf-8")
        return path
    ext = {"text": ".txt", "markdown": ".md", "html": ".html"}[name]
    path = tmp_path / f"s{ext}"
    path.write_text("<p>Some real content about retention.</p>" if name == "html" else
                    "Some real content about retention.", encoding="utf-8")
    return path


class TestLoaders(LoaderConformance):
    @pytest.fixture(params=LOADERS)
    def name(self, request):
        return request.param

    @pytest.fixture
    def loader(self, name):
        return registry.create("loader", name)

    @pytest.fixture
    def sample_file(self, name, tmp_path):
        return sample(name, tmp_path)
