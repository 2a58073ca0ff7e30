"""Resumable progress of a long job (an ablation variant's queries, synthetic questions per chunk) as JSON lines.

The first line is a header saying what the job is (its settings or fingerprint); each further line records one
finished unit of work. A job killed mid-write leaves a torn last line: it is dropped on reading, and the next
record starts on a line of its own. A header that does not match the job means the records belong to another
job; the caller decides whether that is an error (a file the user would lose) or a log to start afresh.
This is a record of finished work, not a display: the ``ragkit`` command renders progress in ``ragkit.cli.progress``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ProgressLog:
    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path, self.header = Path(path), header
        self.found: dict[str, Any] | None = None  # the header on disk, after read() (None: no readable log)
        self._fh: Any = None
        self._keep = False  # the log on disk is this job's: append to it (else it is started afresh)
        self._torn = False  # ... and its last line was cut off

    def read(self) -> list[dict[str, Any]]:
        """This job's finished records, in order; none when the log is missing, unreadable or another job's
        (then :attr:`found` holds that job's header, and the next :meth:`add` replaces the log)."""
        try:
            data = self.path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            data = ""
        lines = data.splitlines()
        try:
            self.found = json.loads(lines[0]) if lines else None
        except ValueError:
            self.found = None
        if not isinstance(self.found, dict):
            self.found = None
        self._keep = self.found == self.header
        if not self._keep:
            return []
        records = []
        for line in lines[1:]:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                records.append(rec)
        self._torn = not data.endswith("\n")
        return records

    def open(self) -> None:
        """Start appending (after :meth:`read`): a log that is not this job's is replaced by this job's header.
        :meth:`add` opens it when needed; call this to claim the file before the first record."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a" if self._keep else "w", encoding="utf-8")
            if not self._keep:
                self._fh.write(json.dumps(self.header) + "\n")
            elif self._torn:
                self._fh.write("\n")  # end the torn line so the next record starts on a line of its own
            self._fh.flush()
            self._keep, self._torn = True, False

    def add(self, record: dict[str, Any]) -> None:
        """Append one finished unit (flushed at once, so a kill loses at most the line being written)."""
        self.open()
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
