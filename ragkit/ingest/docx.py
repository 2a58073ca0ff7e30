"""Word documents (.docx) through python-docx (the ``ragkit[docx]`` extra).

The body is read in document order and rendered in the shape the HTML loader gives a page, so later stages
(chunkers, the extractive answerer's table rows) read both alike: headings (``Title``, ``Heading N``) as Markdown
``#`` lines that keep their level, list paragraphs as ``- item``, each table row as one line of cells separated by
`` | `` (the first row is the header). The title is the document's core property, else its first Title/Heading 1
paragraph, else the file name; author and modified date become metadata, which a ``.meta.json`` sidecar overrides.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ragkit.errors import LoadError
from ragkit.ingest._read import one_line, read_bytes, read_sidecar
from ragkit.ingest.tables import docx_tables
from ragkit.plugins import Plugin
from ragkit.types import Document

_HEADING = re.compile(r"^heading (\d)$")


class DocxLoader(Plugin):
    stage, name = "loader", "docx"
    extensions = (".docx",)

    class Params(BaseModel):
        # A .docx is a ZIP of XML: a small file can expand to gigabytes (a "ZIP bomb"). Word documents whose parts
        # add up to more than this, uncompressed, are refused before any XML is parsed (images count too).
        model_config = ConfigDict(extra="forbid")
        max_expanded_mb: float = Field(256, gt=0, description="parts adding up to more than this are refused")

    def load(self, path: Path, doc_id: str) -> Iterator[Document]:
        try:
            import docx
            from docx.opc.exceptions import PackageNotFoundError
            from lxml.etree import XMLSyntaxError
        except ImportError:
            raise LoadError("reading .docx needs python-docx: pip install 'ragkit[docx]'") from None
        data = read_bytes(path)
        if not data.startswith(b"PK\x03\x04"):
            raise LoadError("not a .docx file (not a ZIP package)")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as package:
                expanded = sum(item.file_size for item in package.infolist())
            limit = self.params.max_expanded_mb
            if expanded > limit * 2**20:
                raise LoadError(f"expands to {expanded / 2**20:.0f} MB uncompressed (more than {limit:g} MB, "
                                "limit: ingest.max_expanded_mb; refused as a possible ZIP bomb)")
            document = docx.Document(io.BytesIO(data))
            lines, first_heading = _render(document)
            props = document.core_properties
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
            raise LoadError("truncated or corrupt .docx (not a readable ZIP package)") from None
        except (PackageNotFoundError, KeyError):
            raise LoadError("not a Word document (the ZIP package has no Word body)") from None
        except (XMLSyntaxError, ValueError) as exc:
            raise LoadError(f"corrupt .docx: a damaged part ({type(exc).__name__})") from None
        except (LoadError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - python-docx raises many kinds on damaged parts; all mean a bad file
            raise LoadError(f"damaged .docx ({type(exc).__name__}: {one_line(exc)})") from None
        text = "\n".join(lines).strip()
        if not text:
            raise LoadError("empty document (no text in the body)")
        meta: dict[str, Any] = {}
        if props.author:
            meta["author"] = props.author
        if props.modified:
            meta["modified"] = props.modified.isoformat()
        meta.update(read_sidecar(path))
        title = str(meta.pop("title", "")) or (props.title or "").strip() or first_heading or path.stem
        yield Document(doc_id=doc_id, text=text, title=title, metadata=meta,
                       tables=docx_tables(document, title))


def _render(document) -> tuple[list[str], str]:
    """The body as lines, blocks separated by a blank line (a list's items and a table's rows stay together), and
    the text of the first Title / Heading 1 paragraph."""
    from docx.table import Table

    blocks: list[list[str]] = []
    first_heading, in_list = "", False
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = [r for r in (_row_text(row) for row in block.rows) if r]
            if rows:
                blocks.append(rows)
            in_list = False
            continue
        text = re.sub(r"\s+", " ", block.text).strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "").lower()
        level = 1 if style == "title" else int(m.group(1)) if (m := _HEADING.match(style)) else 0
        if level:
            first_heading = first_heading or (text if level == 1 else "")
            blocks.append(["#" * level + " " + text])
        elif style.startswith("list"):
            if not in_list:
                blocks.append([])
            blocks[-1].append("- " + text)
        else:
            blocks.append([text])
        in_list = style.startswith("list") and not level
    return [line for i, b in enumerate(blocks) for line in ([""] if i else []) + b], first_heading


def _row_text(row) -> str:
    cells, seen = [], set()
    for cell in row.cells:  # a merged cell is returned once per grid column it spans: keep it once
        if id(cell._tc) in seen:
            continue
        seen.add(id(cell._tc))
        cells.append(re.sub(r"\s+", " ", cell.text).strip())
    return " | ".join(cells).strip(" |") if any(cells) else ""
