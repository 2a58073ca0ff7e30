"""BEIR corpus files: JSON lines ``{"_id", "title", "text", "metadata"?}``, optionally gzip'd.

Each line is one document whose id is its ``_id``. A malformed line is reported and skipped; the rest load.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

from ragkit.errors import LoadError
from ragkit.plugins import Plugin
from ragkit.types import Document, LoadIssue


class BeirLoader(Plugin):
    stage, name = "loader", "beir"
    extensions = (".jsonl", ".jsonl.gz")

    def load(self, path: Path, doc_id: str) -> Iterator[Document | LoadIssue]:
        opener = gzip.open if path.name.endswith(".gz") else open
        n_docs = 0
        try:
            with opener(path, "rt", encoding="utf-8", errors="strict") as fh:
                for lineno, line in enumerate(fh, 1):
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
        except UnicodeDecodeError as exc:
            raise LoadError(f"not valid UTF-8 near byte {exc.start}") from None
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
