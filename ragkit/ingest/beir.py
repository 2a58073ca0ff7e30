"""BEIR corpus files: JSON lines ``{"_id", "title", "text", "metadata"?}``, optionally gzip'd.

Each line is one document whose id is its ``_id``. A malformed line is reported and skipped; the rest load.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from typing import BinaryIO
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ragkit.errors import LoadError
from ragkit.plugins import Plugin
from ragkit.types import Document, LoadIssue


class BeirLoader(Plugin):
    stage, name = "loader", "beir"
    extensions = (".jsonl", ".jsonl.gz")

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        max_line_chars: int = Field(5_000_000, ge=1, description="a longer line refuses the file")
        max_expanded_mb: float = Field(256, gt=0, description="a .gz that expands past this is refused")

    def load(self, path: Path, doc_id: str) -> Iterator[Document | LoadIssue]:
        gz = path.name.endswith(".gz")
        n_docs = 0
        try:
            with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
                for lineno, raw in self.lines(fh, gz):
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise LoadError(f"not valid UTF-8 at line {lineno} (byte {exc.start} of the line)") from None
                    if not line.strip():
                        continue
                    item = _parse_line(line)
                    if isinstance(item, str):
                        yield LoadIssue(f"{path.name}:{lineno}", item)
                        continue
                    n_docs += 1
                    yield item
        except PermissionError:
            raise LoadError("permission denied") from None
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise LoadError(f"truncated or corrupt gzip: {exc}") from None
        if n_docs == 0:
            raise LoadError("no documents (empty JSONL)")

    def lines(self, fh: BinaryIO, gz: bool) -> Iterator[tuple[int, bytes]]:
        """(line number, bytes) of every non-empty line, read in 1 MiB blocks: runs of empty lines are skipped in C,
        a line longer than ``max_line_chars`` and a gzip stream past ``max_expanded_mb`` are refused."""
        limit, max_bytes = self.params.max_line_chars, self.params.max_expanded_mb * 2**20
        newlines = read = 0  # newlines before ``data``; bytes decompressed so far
        tail = b""
        while True:
            block = fh.read(1 << 20)
            read += len(block)
            if gz and read > max_bytes:
                raise LoadError(f"expands past {self.params.max_expanded_mb:g} MB uncompressed "
                                "(limit: ingest.max_expanded_mb; refused as a possible gzip bomb)")
            data = tail + block
            end = data.rfind(b"\n") + 1 if block else len(data)  # complete lines end here
            pos = 0
            for m in _LINE.finditer(data, 0, end):
                newlines += data.count(b"\n", pos, m.start())
                pos = m.start()
                if m.end() - m.start() > limit:
                    raise LoadError(f"line {newlines + 1} is longer than {limit} bytes (limit: ingest.max_line_chars)")
                yield newlines + 1, m.group()
            newlines += data.count(b"\n", pos, end)
            tail = data[end:]
            if len(tail) > limit:
                raise LoadError(f"line {newlines + 1} is longer than {limit} bytes (limit: ingest.max_line_chars)")
            if not block:
                return


_LINE = re.compile(rb"[^\n]+")


def _parse_line(line: str) -> Document | str:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"invalid JSON ({exc.msg})"
    if not isinstance(obj, dict):
        return "expected a JSON object"
    doc_id = obj.get("_id", obj.get("id"))
    if doc_id is None or str(doc_id) == "":
        return "missing '_id'"
    title = str(obj.get("title") or "").strip()
    body = str(obj.get("text") or "").strip()
    if not (title or body):
        return f"document {doc_id}: empty title and text"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    text = f"{title}\n\n{body}" if title and body else (title or body)
    return Document(doc_id=str(doc_id), text=text, title=title, metadata=dict(meta))
