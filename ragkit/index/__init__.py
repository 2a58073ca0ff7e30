"""The index: where chunks, their vectors and their BM25 terms live, behind the ``Store`` interface (store.py).

One way names an index: a directory path opens the ``embedded`` store; ``SCHEME://...`` opens the store
registered for that URL scheme (``postgresql://`` and ``postgres://``: the built-in ``postgres`` store). A store is registered in the ``ragkit.stores`` entry-point group
(``"SCHEME" = "package.module:Class"``, the class taking the location as its one argument) or at run time with
``register_store``.
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ragkit.errors import ConfigError

STORE_ENTRY_POINTS = "ragkit.stores"
DEFAULT_STORE = "ragkit.index.embedded:EmbeddedStore"
BUILTIN_STORES = {"postgresql": "ragkit.index.postgres:PostgresStore",
                  "postgres": "ragkit.index.postgres:PostgresStore"}
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_registered: dict[str, Any] = {}


def register_store(scheme: str, cls: Any) -> None:
    """Open ``scheme://...`` locations with ``cls`` (tests, notebooks; packages use the entry-point group)."""
    _registered[scheme.lower()] = cls


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def store_class(location: str | Path) -> Any:
    m = _URL.match(str(location)) if not isinstance(location, Path) else None
    if m is None:
        return _load(DEFAULT_STORE)
    scheme = m.group("scheme").lower()
    if scheme in _registered:
        return _registered[scheme]
    for ep in entry_points(group=STORE_ENTRY_POINTS):
        if ep.name.lower() == scheme:
            return _load(ep.value)
    if scheme in BUILTIN_STORES:
        return _load(BUILTIN_STORES[scheme])
    known = sorted({*_registered, *BUILTIN_STORES, *(ep.name for ep in entry_points(group=STORE_ENTRY_POINTS))})
    raise ConfigError(f"{location}: no store for URL scheme {scheme!r} "
                      f"(known: {', '.join(known) or 'none'}; a directory path opens the embedded store)")


def open_store(location: str | Path) -> Any:
    """The store at ``location`` (a directory path, or a URL whose scheme a registered store handles)."""
    return store_class(location)(location)
