"""Naming and reaching the database: the URL (``postgresql://user:pass@host:port/db?schema=NAME``), one
connection pool per URL and process, and PostgreSQL's failures turned into one-line ragkit errors."""

from __future__ import annotations

import os
import re
import socket
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ragkit.errors import ConfigError, RagkitError, first_line

DEFAULT_SCHEMA = "ragkit"
CONNECT_TIMEOUT = 10  # seconds to reach the server
STATEMENT_TIMEOUT_MS = 60_000  # a query running longer than this fails (not ingest)
POOL_MAX = 16
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class StoreUnavailable(RagkitError):
    """The PostgreSQL server cannot be reached, refuses the credentials, or lacks what the store needs."""


def split_url(url: str) -> tuple[str, str]:
    """``(libpq URL, schema)``: the ``schema`` query parameter (default ``ragkit``) is ragkit's, not libpq's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA)
    if not _SCHEMA_NAME.match(schema):
        raise ConfigError(f"{redact(url)}: schema {schema!r} must be letters, digits and _ (at most 63)")
    rest = [(k, v) for k, v in query if k != "schema"]
    if not any(k == "connect_timeout" for k, _ in rest):
        rest.append(("connect_timeout", str(CONNECT_TIMEOUT)))
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql", "pgvector") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment)), schema


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def application_name(role: str) -> str:
    return f"ragkit {role} pid {os.getpid()} on {socket.gethostname()}"[:63]


def explain(exc: BaseException, where: str) -> RagkitError:
    """A psycopg / pool failure as one line naming the database and the cause."""
    import psycopg
    from psycopg import errors as pgerr

    text = first_line(exc)
    if "FATAL:" in text:  # a refused connection: the server's own reason is what matters
        text = " ".join(text.split("FATAL:", 1)[1].split())
    if isinstance(exc, pgerr.InvalidPassword) or "password authentication failed" in text:
        return StoreUnavailable(f"{where}: the server refused the credentials ({text})")
    if isinstance(exc, pgerr.InvalidCatalogName) or re.search(r'database ".*" does not exist', text):
        return StoreUnavailable(f"{where}: {text}; create it first (createdb, or CREATE DATABASE)")
    if re.search(r'role ".*" does not exist', text) or "no pg_hba.conf entry" in text:
        return StoreUnavailable(f"{where}: the server refused the connection ({text})")
    if isinstance(exc, pgerr.ReadOnlySqlTransaction):
        return StoreUnavailable(f"{where}: the server is read-only (a standby?); write to the primary ({text})")
    if isinstance(exc, pgerr.QueryCanceled):
        return StoreUnavailable(f"{where}: query timed out ({text})")
    if isinstance(exc, psycopg.OperationalError):
        return StoreUnavailable(f"{where}: cannot reach the PostgreSQL server ({text})")
    return StoreUnavailable(f"{where}: {type(exc).__name__}: {text}")


_pools: dict[str, object] = {}
_pools_lock = threading.Lock()


def pool(conninfo: str, where: str):
    """The process's connection pool for ``conninfo``, created (and the server reached once) on first use."""
    import psycopg
    from psycopg_pool import ConnectionPool

    with _pools_lock:
        found = _pools.get(conninfo)
        if found is not None:
            return found
        try:  # fail here, with the server's own reason, rather than as a pool timeout later
            psycopg.connect(conninfo, autocommit=True).close()
        except psycopg.Error as exc:
            raise explain(exc, where) from None
        made = ConnectionPool(conninfo, min_size=1, max_size=POOL_MAX, timeout=CONNECT_TIMEOUT * 3,
                              kwargs={"autocommit": True, "application_name": application_name("reader"),
                                      "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
                              name=f"ragkit-{len(_pools)}", open=True)
        _pools[conninfo] = made
        return made


def connect(conninfo: str, where: str, role: str):
    """One dedicated connection (the writer's), without a statement timeout."""
    import psycopg

    try:
        return psycopg.connect(conninfo, application_name=application_name(role))
    except psycopg.Error as exc:
        raise explain(exc, where) from None
