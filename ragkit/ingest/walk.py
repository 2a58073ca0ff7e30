"""Find source files under the paths given to ``ingest``, with include/exclude globs.

A file's document id is its path relative to the root it was found under (POSIX slashes), or its name
when the file itself was given. Its identity for incremental ingest is its resolved absolute path.

Only regular files (or symlinks to them) are returned. Every other entry is classified from ``lstat``/``stat``
without being opened and comes back as skipped with a one-line reason: special files (a FIFO would block a
reader forever), dangling symlinks, symlink loops, entries that cannot be stat'ed or read, unlistable folders,
and file names that are not UTF-8 (the index stores names as UTF-8 text).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


_SPECIAL = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
            (stat.S_ISBLK, "block device"))


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


@dataclass
class WalkResult:
    files: list[SourceFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path as found, one-line reason)
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # absolute paths that exist but cannot be read or listed


def walk(paths: list[str | Path], include: list[str], exclude: list[str]) -> WalkResult:
    """Directories are walked in sorted order; symlinked dirs are not followed. Never raises for an entry."""
    found: dict[str, SourceFile] = {}
    out = WalkResult()

    def add(full: Path, rel: str) -> None:
        path, reason = classify(full)
        if path is not None and not utf8(str(path)):
            path, reason = None, "file name is not valid UTF-8"
        if path is None:
            out.skipped.append((printable(str(full)), printable(reason)))
            if reason.startswith(("permission denied", "unreadable")):
                out.unreadable.append(os.path.abspath(full))
        else:
            found.setdefault(str(path), SourceFile(path, rel))

    def unlistable(exc: OSError) -> None:
        out.skipped.append((printable(str(exc.filename)), f"unreadable folder: {exc.strerror or exc}"))
        out.unreadable.append(os.path.abspath(exc.filename))

    for given in paths:
        root = Path(given)
        try:
            os.lstat(root)
            is_dir = root.is_dir()
        except FileNotFoundError:
            out.missing.append(printable(str(given)))
            continue
        except (OSError, ValueError) as exc:  # permission denied on a parent, a name too long, an embedded NUL
            out.skipped.append((printable(str(given)), f"unreadable: {getattr(exc, 'strerror', None) or exc}"))
            out.unreadable.append(os.path.abspath(given))
            continue
        if not is_dir:
            add(root, root.name)
            continue
        for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable):
            dirnames.sort()
            for fname in sorted(filenames):
                full = Path(dirpath) / fname
                rel = full.relative_to(root).as_posix()
                if matches(rel, include) and not matches(rel, exclude):
                    add(full, rel)
    out.files = list(found.values())
    return out


def utf8(name: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` with undecodable file-name bytes shown as ``\\xNN``, so reports can be printed and stored."""
    return text if utf8(text) else os.fsencode(text).decode("utf-8", "backslashreplace")


def classify(full: Path) -> tuple[Path | None, str]:
    """(resolved path, "") for a readable regular file, or (None, why it is skipped); never opens the entry."""
    try:
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(full)
            try:
                st = os.stat(full)
            except FileNotFoundError:
                return None, f"dangling symlink -> {target}"
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    return None, "symlink loop"
                raise
        if stat.S_ISDIR(st.st_mode):
            return None, "is a directory"
        for test, kind in _SPECIAL:
            if test(st.st_mode):
                return None, f"special file ({kind})"
        if not stat.S_ISREG(st.st_mode):
            return None, "not a regular file"
        if not os.access(full, os.R_OK):
            return None, "permission denied"
        return full.resolve(), ""
    except PermissionError:
        return None, "permission denied"
    except RuntimeError:  # Path.resolve on a loop further up the chain (Python < 3.13)
        return None, "symlink loop"
    except (OSError, ValueError) as exc:
        if getattr(exc, "errno", None) == errno.ELOOP:
            return None, "symlink loop"
        return None, f"unreadable: {getattr(exc, 'strerror', None) or exc}"
