"""An index directory as a sequence of immutable generations with one atomically swapped pointer.

Layout::

    <index>/ragkit-index.json     marker + format version (a directory without it is not ours)
    <index>/CURRENT               name of the committed generation (replaced with os.replace)
    <index>/write.lock            flock'd by the one writer; the kernel releases it if the writer dies
    <index>/cache/embeddings.sqlite
    <index>/gens/g000007/         manifest.json, docstore.sqlite, sparse/, dense/

A commit writes a complete generation under ``gens/.tmp-*``, fsyncs it, renames it into place, then swaps
CURRENT. A crash at any point leaves CURRENT naming the previous, complete generation; leftovers are
removed by the next writer. Readers read CURRENT once and open only that generation.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ragkit.errors import IndexCorruptError, IndexLockedError

FORMAT = 1
MARKER = "ragkit-index.json"
KEEP_GENERATIONS = 2  # the current one and its predecessor (readers may still hold it open)


@dataclass
class Manifest:
    created: float
    config: dict[str, Any]
    model_id: str
    dim: int
    n_documents: int
    n_chunks: int

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise IndexCorruptError(f"{path}: unsupported index format {data.get('format')!r} "
                                        f"(expected {FORMAT})")
            data.pop("format")
            data.pop("generation", None)  # early format-1 manifests stored it; the directory name is the truth
            return cls(**data)
        except IndexCorruptError:
            raise
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise IndexCorruptError(f"{path}: unreadable manifest: {exc}") from None

    def write(self, path: Path) -> None:
        _write_durable(path, json.dumps({"format": FORMAT, **self.__dict__}, indent=2, sort_keys=True))


def _fsync_dir(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durable(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


class IndexDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def gens(self) -> Path:
        return self.path / "gens"

    @property
    def cache_path(self) -> Path:
        return self.path / "cache" / "embeddings.sqlite"

    def is_index(self) -> bool:
        return (self.path / MARKER).is_file()

    def validate(self) -> None:
        """Raise if the path exists but is not a ragkit index (or is one of an unknown format)."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise IndexCorruptError(f"{self.path}: not a directory, cannot be an index")
        marker = self.path / MARKER
        if not marker.is_file():
            if any(self.path.iterdir()):
                raise IndexCorruptError(f"{self.path}: not a ragkit index (directory has other files and no {MARKER})")
            return
        try:
            fmt = json.loads(marker.read_text()).get("format")
        except (OSError, ValueError, AttributeError) as exc:
            raise IndexCorruptError(f"{self.path}: unreadable {MARKER}: {exc}") from None
        if fmt != FORMAT:
            raise IndexCorruptError(f"{self.path}: index format {fmt!r} is not supported (expected {FORMAT})")

    def current(self) -> str | None:
        self.validate()
        try:
            name = (self.path / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        if not name or not (self.gens / name / "manifest.json").is_file():
            raise IndexCorruptError(f"{self.path}: CURRENT names generation {name!r}, which is missing or incomplete")
        return name

    def generation_path(self, name: str) -> Path:
        return self.gens / name

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        self.validate()
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.is_index():
            _write_durable(self.path / MARKER, json.dumps({"format": FORMAT, "tool": "ragkit"}))
        fh = open(self.path / "write.lock", "a+")
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "unknown"
                raise IndexLockedError(f"{self.path}: index is locked by another writer (pid {holder}); "
                                       "wait for it to finish") from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            self._remove_leftovers()
            yield
        finally:
            fh.close()  # closing releases the flock

    def _remove_leftovers(self) -> None:
        if self.gens.is_dir():
            for p in self.gens.iterdir():
                if p.name.startswith(".tmp-"):
                    shutil.rmtree(p, ignore_errors=True)

    def new_staging(self) -> Path:
        self.gens.mkdir(parents=True, exist_ok=True)
        path = self.gens / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return path

    def commit(self, staging: Path) -> str:
        """Make ``staging`` the current generation. Caller holds the write lock."""
        existing = sorted(p.name for p in self.gens.iterdir() if p.name.startswith("g"))
        nxt = int(existing[-1][1:]) + 1 if existing else 1
        name = f"g{nxt:06d}"
        _fsync_tree(staging)
        os.rename(staging, self.gens / name)
        _fsync_dir(self.gens)
        tmp = self.path / "CURRENT.tmp"
        _write_durable(tmp, name + "\n")
        os.replace(tmp, self.path / "CURRENT")
        _fsync_dir(self.path)
        self._collect(keep=name)
        return name

    def _collect(self, keep: str) -> None:
        gens = sorted(p.name for p in self.gens.iterdir() if p.name.startswith("g"))
        for old in gens[:-KEEP_GENERATIONS]:
            if old != keep:
                shutil.rmtree(self.gens / old, ignore_errors=True)


def now() -> float:
    return time.time()


def crash_point(name: str) -> None:
    """Test hook: RAGKIT_CRASH_AT=<name> kills this process with SIGKILL here (crash-safety tests)."""
    if os.environ.get("RAGKIT_CRASH_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
