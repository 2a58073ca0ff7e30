"""Write a folder of hostile entries beside good Markdown files (nothing binary is committed to the repository)."""

from __future__ import annotations

import os
import socket
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
    h = Hostile(root, good)
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
    return h
