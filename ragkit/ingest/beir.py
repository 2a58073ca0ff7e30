"""BEIR corpus files: JSON lines ``{"_id", "title", "text", "metadata"?}``, optionally gzip'd.

Each line is one document whose id is its ``_id``. A malformed line is reported and skipped; the rest load.
"""

from __future__ import annotations

import gzip
import itertools
import json
import zlib
from collections.abc import Iterator
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
        limit = self.params.max_line_chars
        max_bytes = self.params.max_expanded_mb * 2**20
        n_docs = read = 0
        try:
            with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
                for lineno in itertools.count(1):
                    raw = fh.readline(limit + 1)
                    if not raw:
                        break
                    read += len(raw)
                    if gz and read > max_bytes:
                        raise LoadError(f"expands past {self.params.max_expanded_mb:g} MB uncompressed "
                                        "(limit: ingest.max_expanded_mb; refused as a possible gzip bomb)")
                    if len(raw) > limit and not raw.endswith(b"\n"):
                        raise LoadError(f"line {lineno} is longer than {limit} bytes "
                                        "(limit: ingest.max_line_chars)")
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
