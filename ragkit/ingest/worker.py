"""Parsing files in a worker process, under a deadline and a memory cap.

A loader that spins (adversarial structure, a third-party parser's bug) or allocates without bound must not stall
an ingest. Each file is parsed in a forked child process; when a file's parse runs past ``ingest.max_parse_seconds``
the child is killed, the file is reported, and a fresh child takes the next file. The child's address space is
capped at what it had when forked plus ``ingest.max_parse_memory_mb``, so a file that would exhaust memory fails
with a reason instead of taking the machine down.

The child never outlives the ingest: it holds a copy of every descriptor the ingest had open when it forked,
the index's write lock among them, so an orphan would keep the index locked. It closes its copy of the ingest's
end of the pipe (so a dead ingest reads as end-of-file) and, on Linux, asks the kernel to kill it when the ingest
dies, even mid-parse.

Where ``fork`` does not exist (Windows) or ``max_parse_seconds`` is 0, files are parsed in the calling process
without these limits.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from ragkit.errors import LoadError
from ragkit.ingest._read import one_line


def isolation_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class ParseWorker:
    """``run(job)`` returns ``parse(job)`` computed in a child process, or raises LoadError when the child runs
    past ``seconds``, exceeds its memory cap, or dies. ``parse`` is inherited by the fork, so it may close over
    anything (plugins registered at run time included); only ``job`` and the result cross the pipe."""

    def __init__(self, parse: Callable[[Any], Any], seconds: float, memory_mb: int) -> None:
        self.parse, self.seconds, self.memory_mb = parse, seconds, memory_mb
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.restarts = 0

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, job: Any) -> Any:
        if self.seconds <= 0 or not isolation_available():
            try:
                return self.parse(job)
            except MemoryError:
                raise LoadError("out of memory while parsing") from None
        conn = self.start()
        conn.send(job)
        if not conn.poll(self.seconds):
            self.stop()
            raise LoadError(f"parsing took longer than {self.seconds:g} s (limit: ingest.max_parse_seconds); "
                            "the parser was stopped")
        try:
            status, value = conn.recv()
        except (EOFError, OSError):
            code = self.stop()
            raise LoadError(f"the parser process died ({_exit_reason(code)})") from None
        if status == "error":
            raise LoadError(value)
        return value

    def start(self) -> Connection:
        if self.process is None or not self.process.is_alive():
            ctx = multiprocessing.get_context("fork")
            parent, child = ctx.Pipe()
            self.process = ctx.Process(target=_serve, args=(child, parent, os.getpid(), self.parse, self.memory_mb),
                                       daemon=True, name="ragkit-parse")
            self.process.start()
            child.close()
            self.conn = parent
        assert self.conn is not None
        return self.conn

    def stop(self) -> int | None:
        """Kill the child (if any); returns its exit code."""
        proc, self.process = self.process, None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if proc is None:
            return None
        if proc.is_alive():
            proc.kill()
            self.restarts += 1
        proc.join(5)
        return proc.exitcode

    def close(self) -> None:
        if self.process is not None and self.process.is_alive() and self.conn is not None:
            try:
                self.conn.send(None)  # a clean exit
                self.process.join(2)
            except OSError:
                pass
        self.stop()


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _serve(conn: Connection, parents_end: Connection, parent_pid: int, parse: Callable[[Any], Any],
           memory_mb: int) -> None:
    """The child's loop: one job in, one ``(status, value)`` out, until ``None`` or a closed pipe."""
    parents_end.close()  # else this process keeps the pipe open itself and never sees the ingest die
    _die_with_parent(parent_pid)
    # fresh stdout/stderr objects: a lock the parent's threads held at fork time must not block a loader's warning
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _cap_memory(memory_mb)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", parse(job))
        except LoadError as exc:
            reply = ("error", str(exc))
        except MemoryError:
            reply = ("error", f"parsing needed more than {memory_mb} MB (limit: ingest.max_parse_memory_mb)")
        except RecursionError:
            reply = ("error", "structure nested too deeply to parse (recursion limit)")
        except Exception as exc:  # noqa: BLE001 - a loader bug is reported for this file, the ingest goes on
            reply = ("error", f"{type(exc).__name__}: {one_line(exc)}")
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("error", f"the parsed result needed more than {memory_mb} MB "
                                "(limit: ingest.max_parse_memory_mb)"))


def _die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies (PR_SET_PDEATHSIG); elsewhere the closed
    pipe ends it once it is between files."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the request was in place
        os._exit(1)


def _cap_memory(memory_mb: int) -> None:
    """Limit the address space to the current size plus ``memory_mb`` (Linux; elsewhere nothing is capped)."""
    if memory_mb <= 0:
        return
    try:
        with open("/proc/self/statm") as fh:
            current = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return
    limit = current + memory_mb * 2**20
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
