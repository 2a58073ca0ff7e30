"""Per-file decisions of an ingest: the file's content hash (change detection) and which loader reads it."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from ragkit.errors import LoadError
from ragkit.plugins import Plugin, registry


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content, read in 1 MiB blocks (ingest's change detection, dataset and model
    fingerprints); an unreadable file is a LoadError saying why."""
    h = hashlib.sha256()
    try:
        # non-blocking open + fstat: a path swapped for a FIFO after the walk is refused instead of blocking
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LoadError("not a regular file (it changed since the folder was listed)")
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except PermissionError:
        raise LoadError("permission denied") from None
    except OSError as exc:
        raise LoadError(f"unreadable: {exc.strerror or exc}") from None
    return h.hexdigest()


def extension(name: str) -> str:
    """A file name's extension as loaders declare it (lower case; ``.jsonl.gz`` is one extension)."""
    lower = name.lower()
    return ".jsonl.gz" if lower.endswith(".jsonl.gz") else os.path.splitext(lower)[1]


def loaders_by_extension() -> dict[str, Plugin]:
    """One instance of every registered loader, keyed by each extension it declares (first name wins)."""
    table: dict[str, Plugin] = {}
    for name in registry.names("loader"):
        cls = registry.get("loader", name)
        for ext in getattr(cls, "extensions", ()):
            table.setdefault(ext.lower(), cls())
    return table


def pick_loader(filename: str, loaders: dict[str, Plugin]) -> Plugin | None:
    """The loader whose extension is the longest suffix of ``filename`` (``.jsonl.gz`` beats ``.gz``)."""
    lower = filename.lower()
    best = None
    for ext, loader in loaders.items():
        if lower.endswith(ext) and (best is None or len(ext) > len(best[0])):
            best = (ext, loader)
    return best[1] if best else None


def is_under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
