"""Plain text files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ragkit.ingest._read import read_sidecar, read_text
from ragkit.plugins import Plugin
from ragkit.types import Document


class TextLoader(Plugin):
    stage, name = "loader", "text"
    extensions = (".txt", ".text", ".rst")

    def load(self, path: Path, doc_id: str) -> Iterator[Document]:
        text = read_text(path)
        meta = read_sidecar(path)
        title = str(meta.pop("title", "")) or _first_line(text) or path.stem
        yield Document(doc_id=doc_id, text=text.strip(), title=title, metadata=meta)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""
