"""Find source files under the paths given to ``ingest``, with include/exclude globs.

A file's document id is its path relative to the root it was found under (POSIX slashes), or its name
when the file itself was given. Its identity for incremental ingest is its resolved absolute path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class SourceFile:
    path: Path  # resolved, absolute
    rel: str  # relative to its root: the default document id

    @property
    def key(self) -> str:
        return str(self.path)


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """``**`` crosses directories, ``*`` and ``?`` do not."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(rel: str, patterns: list[str]) -> bool:
    return any(glob_regex(p).match(rel) for p in patterns)


def walk(paths: list[str | Path], include: list[str], exclude: list[str]) -> tuple[list[SourceFile], list[str]]:
    """Return (files, missing paths). Directories are walked in sorted order; symlinked dirs are not followed."""
    found: dict[str, SourceFile] = {}
    missing: list[str] = []
    for given in paths:
        root = Path(given)
        if root.is_file():
            sf = SourceFile(root.resolve(), root.name)
            found.setdefault(sf.key, sf)
            continue
        if not root.is_dir():
            missing.append(str(given))
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fname in sorted(filenames):
                full = Path(dirpath) / fname
                rel = full.relative_to(root).as_posix()
                if not matches(rel, include) or matches(rel, exclude):
                    continue
                sf = SourceFile(full.resolve(), rel)
                found.setdefault(sf.key, sf)
    return list(found.values()), missing
