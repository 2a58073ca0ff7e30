"""Write a folder of hostile entries beside good Markdown files (nothing binary is committed to the repository)."""

from __future__ import annotations

import gzip
import io
import os
import random
import socket
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

GOOD = {
    "guide.md": "# Rotating keys\n\nOpen Settings and press Rotate. The old key keeps working for a day.\n",
    "notes/retention.md": "# Retention\n\nLogs are kept for 30 days on the Starter plan.\n",
    "x.md/inside.md": "# Inside\n\nA file inside a directory whose name ends in .md is still read.\n",
}
LINKED = "# Linked\n\nThis file lives outside the folder and is reached through a symlink.\n"


@dataclass
class Hostile:
    root: Path
    good: list[str]  # document ids that must be indexed
    skipped: dict[str, str] = field(default_factory=dict)  # file name -> expected reason (prefix)
    failed: dict[str, str] = field(default_factory=dict)


def nested_divs(depth: int = 100_000) -> str:
    """About 1.1 MB: ``depth`` nested ``<div>``s around one word."""
    return "<html><body>" + "<div>" * depth + "deep" + "</div>" * depth + "</body></html>"


def write_good(root: Path) -> list[str]:
    for rel, text in GOOD.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    outside = root.parent / "outside.md"
    outside.write_text(LINKED, encoding="utf-8")
    (root / "linked.md").symlink_to(outside)
    return sorted([*GOOD, "linked.md"])


def write_hostile(root: Path) -> Hostile:
    """Good files plus every hostile kind; returns what an ingest must report for each."""
    return add_hostile(root, write_good(root))


def add_hostile(root: Path, good: list[str]) -> Hostile:
    """Every hostile kind beside the good files already in ``root``."""
    h = Hostile(root, list(good))
    (root / "dangling.md").symlink_to(root / "deleted.md")
    h.skipped["dangling.md"] = f"dangling symlink -> {root / 'deleted.md'}"
    (root / "markup.md").symlink_to("[/]gone")  # a reason that is also console markup
    h.skipped["markup.md"] = "dangling symlink -> [/]gone"
    (root / os.fsdecode(b"caf\xe9.md")).write_text("# Latin-1 name\n\nThe name is not UTF-8.\n")
    h.skipped["caf\\xe9.md"] = "file name is not valid UTF-8"
    (root / "loop.md").symlink_to("loop.md")
    h.skipped["loop.md"] = "symlink loop"
    os.mkfifo(root / "pipe.md")
    h.skipped["pipe.md"] = "special file (FIFO)"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(root / "s.md"))
    finally:
        sock.close()  # the socket file stays
    h.skipped["s.md"] = "special file (socket)"
    (root / "deep.html").write_text(nested_divs(), encoding="utf-8")
    h.failed["deep.html"] = "HTML nested deeper than 512 elements (limit: ingest.max_html_depth)"
    (root / "empty.txt").write_bytes(b"")
    h.failed["empty.txt"] = "empty document"
    (root / "nul.txt").write_bytes(b"hello\x00\x00world" * 10)
    h.failed["nul.txt"] = "binary content (NUL bytes); not a text file"
    (root / "fake.pdf").write_bytes(b"this is not a PDF at all\n" * 4)
    h.failed["fake.pdf"] = ""  # any reason
    add_broken_files(root, h)
    return h


def add_broken_files(root: Path, h: Hostile) -> None:
    """Files whose content is broken: noise, truncated or fake containers, bombs, bad JSONL, an over-long line."""
    rng = random.Random(29)
    (root / "noise.txt").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    h.failed["noise.txt"] = "binary content"
    pdf = small_pdf()
    (root / "truncated.pdf").write_bytes(pdf[: len(pdf) // 2])
    h.failed["truncated.pdf"] = ""
    (root / "fake.docx").write_text("a text file with a Word name\n")
    h.failed["fake.docx"] = "not a .docx file (not a ZIP package)"
    docx = small_docx()
    (root / "truncated.docx").write_bytes(docx[: len(docx) // 2])
    h.failed["truncated.docx"] = "truncated or corrupt .docx"
    (root / "bomb.docx").write_bytes(zip_bomb(docx))
    h.failed["bomb.docx"] = "expands to"
    (root / "bad.jsonl").write_text('{"_id": 1, "text": \n[1, 2]\nnot json\n')
    h.failed["bad.jsonl"] = "no documents (empty JSONL)"
    (root / "corrupt.jsonl.gz").write_bytes(gzip.compress(b'{"_id": "1", "text": "x"}\n' * 100)[:60])
    h.failed["corrupt.jsonl.gz"] = "truncated or corrupt gzip"
    (root / "gzip-bomb.jsonl.gz").write_bytes(gzip.compress(b"\n" * (300 * 2**20), compresslevel=1))
    h.failed["gzip-bomb.jsonl.gz"] = "expands past 256 MB uncompressed"
    (root / "long-line.txt").write_text("word " * 1_200_000)  # 6 MB on one line
    h.failed["long-line.txt"] = "line 1 is longer than 5000000 characters"
    (root / "one-line.md").write_text("# One line\n\n" + "word " * 200_000)  # 1 MB line: read
    h.good.append("one-line.md")


def small_pdf() -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.drawString(72, 720, "A page of text that the truncated copy loses.")
    c.save()
    return buf.getvalue()


def small_docx() -> bytes:
    import docx

    d = docx.Document()
    d.add_paragraph("A Word document whose copy is cut in half.")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def zip_bomb(docx_bytes: bytes) -> bytes:
    """The Word document with 300 MB of spaces appended to its body part (a few hundred KB compressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx_bytes)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "word/document.xml":
                data += b" " * (300 * 2**20)
            z.writestr(item.filename, data, zipfile.ZIP_DEFLATED)
    return out.getvalue()
