"""The registry: entry points (as a third-party package would use them), errors, run-time registration."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from pydantic import BaseModel, ConfigDict

from ragkit.errors import PluginError
from ragkit.plugins import Plugin, Registry, registry


def test_builtins_come_from_entry_points():
    assert {"sentence", "token", "markdown", "document"} <= set(registry.names("chunker"))
    assert registry.names("sparse") == ["bm25s", "rank-bm25"]
    assert registry.names("fusion") == ["minmax", "rrf", "zscore"]


def test_unknown_plugin_lists_available():
    with pytest.raises(PluginError, match=r"unknown fusion plugin 'borda' \(available: minmax, rrf, zscore\)"):
        registry.get("fusion", "borda")
    with pytest.raises(PluginError, match="unknown stage"):
        registry.get("rerank", "x")


def test_runtime_registration():
    reg = Registry()

    class Upper(Plugin):
        stage, name = "filter", "upper"

        class Params(BaseModel):
            model_config = ConfigDict(extra="forbid")
            factor: float = 2.0

        def process(self, query, hits):
            return hits

    reg.register(Upper)
    assert "upper" in reg.names("filter")
    assert reg.create("filter", {"name": "upper", "factor": 3}).params.factor == 3


def test_third_party_package_registers_through_entry_points(tmp_path):
    """A separate installed distribution adds a chunker without touching ragkit."""
    site = tmp_path / "site"
    pkg = site / "thirdparty_chunker"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from ragkit.plugins import Plugin
        from ragkit.chunking._base import assemble

        class LineChunker(Plugin):
            stage, name = "chunker", "lines"

            def split(self, doc, budget):
                return assemble(doc, [(line, {}) for line in doc.text.splitlines()])
    """))
    dist = site / "thirdparty_chunker-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-chunker\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text('[ragkit.plugins]\nchunker.lines = thirdparty_chunker:LineChunker\n')
    code = ("from ragkit.plugins import registry; from ragkit.types import Document;"
            "c = registry.create('chunker', 'lines');"
            "print(len(c.split(Document('d', 'a\\nb\\nc'), None)), registry.names('chunker'))")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(site), "PATH": ""},
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("3 ") and "'lines'" in out
