"""Markdown with optional YAML front matter (user metadata) and a ``.meta.json`` sidecar."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ragkit.ingest._read import LineLimit, read_decoded, read_sidecar, split_front_matter
from ragkit.ingest.tables import markdown_tables
from ragkit.errors import LoadError
from ragkit.plugins import Plugin
from ragkit.types import Document, LoadIssue

_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)


class MarkdownLoader(Plugin):
    stage, name = "loader", "markdown"
    extensions = (".md", ".markdown")
    Params = LineLimit

    def load(self, path: Path, doc_id: str) -> Iterator[Document | LoadIssue]:
        dec = read_decoded(path, self.params.max_line_chars)
        front, body = split_front_matter(dec.text)
        meta = dec.metadata() | front | read_sidecar(path)
        if not body.strip():
            raise LoadError("empty document (front matter only)")
        h1 = _H1.search(body)
        title = str(meta.pop("title", "")) or (h1.group(1) if h1 else path.stem)
        yield Document(doc_id=doc_id, text=body.strip(), title=title, metadata=meta,
                       tables=markdown_tables(body, title))
        if issue := dec.issue(path):
            yield issue
