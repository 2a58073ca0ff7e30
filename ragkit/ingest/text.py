"""Plain text files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ragkit.ingest._read import LineLimit, read_decoded, read_sidecar
from ragkit.plugins import Plugin
from ragkit.types import Document, LoadIssue


class TextLoader(Plugin):
    stage, name = "loader", "text"
    extensions = (".txt", ".text", ".rst")
    Params = LineLimit

    def load(self, path: Path, doc_id: str) -> Iterator[Document | LoadIssue]:
        dec = read_decoded(path, self.params.max_line_chars)
        meta = dec.metadata() | read_sidecar(path)
        title = str(meta.pop("title", "")) or _first_line(dec.text) or path.stem
        yield Document(doc_id=doc_id, text=dec.text.strip(), title=title, metadata=meta)
        if issue := dec.issue(path):
            yield issue


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""
