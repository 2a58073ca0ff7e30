"""API keys for ``ragkit serve``: a keys.toml of hashed keys, each mapped to a tenant and its metadata filter.

keys.toml::

    [[keys]]
    name = "acme-web"                   # a label for logs and errors (never the key itself)
    hash = "sha256:5e884898da28..."     # or "scrypt:<n>:<r>:<p>:<salt hex>:<hash hex>"
    tenant = "acme"
    filter = "tenant=acme"              # optional; default: tenant=<tenant>. A string, a list (ANDed) or a table
    allow = ["retrieve", "query", "chat"]   # optional; default: all endpoints
    rpm = 600                           # optional; requests per minute for this key (429 above it)

Keys are stored only as hashes. A presented key is hashed and compared with every stored hash using
``hmac.compare_digest`` (no early exit, so the time taken does not depend on which entry matched or how much
of a hash agreed). API keys are long random tokens (``ragkit serve --new-key`` makes 32 random bytes), so an
unsalted SHA-256 is enough; scrypt entries are accepted for keys chosen by people, and verified ones are
remembered by their SHA-256 so scrypt runs once per key and process.

A key's filter is ANDed with whatever filter a request brings, inside both retrieval branches, so a request
can narrow its tenant's view but never widen it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragkit.config import read_toml
from ragkit.errors import ConfigError
from ragkit.filter_expr import Filter, to_filter

ENDPOINTS = ("retrieve", "query", "chat")
_KNOWN_FIELDS = {"name", "hash", "tenant", "filter", "allow", "rpm", "all_tenants"}


def hash_key(key: str, method: str = "sha256") -> str:
    """The keys.toml ``hash`` entry for ``key``."""
    if method == "sha256":
        return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
    if method == "scrypt":
        salt = secrets.token_bytes(16)
        n, r, p = 2 ** 14, 8, 1
        digest = hashlib.scrypt(key.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
        return f"scrypt:{n}:{r}:{p}:{salt.hex()}:{digest.hex()}"
    raise ConfigError(f"unknown key hash method {method!r} (sha256, scrypt)")


def new_key() -> str:
    """A fresh API key: 32 random bytes, URL-safe."""
    return "rk-" + secrets.token_urlsafe(32)


def keys_toml_entry(name: str, tenant: str, hashed: str, filter_expr: str | None = None) -> str:
    q = json.dumps  # a JSON string is a valid TOML basic string
    lines = ["[[keys]]", f"name = {q(name)}", f"hash = {q(hashed)}", f"tenant = {q(tenant)}",
             f"filter = {q(filter_expr or 'tenant=' + tenant)}"]
    return "\n".join(lines) + "\n"


@dataclass
class ApiKey:
    """Who a request is: a key's tenant, the filter that fences it in, and what it may call."""

    name: str
    tenant: str | None
    filter: Filter
    allow: frozenset[str] = frozenset(ENDPOINTS)
    rpm: int | None = None
    _method: str = ""
    _params: tuple = ()
    _digest: bytes = b""
    _bucket: list[float] = field(default_factory=list)  # [tokens, last refill time]
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> float:
        """Spend one request of this key's rate; returns 0 when allowed, else seconds until the next one is."""
        if not self.rpm:
            return 0.0
        with self._lock:
            now = time.monotonic()
            if not self._bucket:
                self._bucket = [float(self.rpm), now]
            tokens, last = self._bucket
            tokens = min(float(self.rpm), tokens + (now - last) * self.rpm / 60.0)
            if tokens >= 1.0:
                self._bucket = [tokens - 1.0, now]
                return 0.0
            self._bucket = [tokens, now]
            return (1.0 - tokens) * 60.0 / self.rpm


ANONYMOUS = ApiKey(name="anonymous", tenant=None, filter=Filter())


class KeyRing:
    """The loaded keys.toml. ``authenticate(presented)`` -> the matching ApiKey or None."""

    def __init__(self, keys: list[ApiKey], source: str = "keys") -> None:
        self.keys = keys
        self.source = source
        self._sha = [k for k in keys if k._method == "sha256"]
        self._scrypt = [k for k in keys if k._method == "scrypt"]
        self._verified: dict[bytes, ApiKey] = {}
        self._verified_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def load(cls, path: str | Path) -> "KeyRing":
        return cls.from_dict(read_toml(path, "API keys file"), str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "keys") -> "KeyRing":
        unknown = set(data) - {"keys"}
        if unknown:
            raise ConfigError(f"{source}: unknown table {sorted(unknown)[0]!r} (expected [[keys]] entries)")
        entries = data.get("keys")
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{source}: no [[keys]] entries")
        keys, seen_digests, seen_names = [], set(), set()
        for i, entry in enumerate(entries):
            key = _parse_entry(entry, f"{source}: keys[{i}]")
            if key.name in seen_names:
                raise ConfigError(f"{source}: keys[{i}]: duplicate name {key.name!r}")
            if key._digest in seen_digests:
                raise ConfigError(f"{source}: keys[{i}] ({key.name}): the same hash appears twice")
            seen_names.add(key.name)
            seen_digests.add(key._digest)
            keys.append(key)
        return cls(keys, source)

    def authenticate(self, presented: str | None) -> ApiKey | None:
        decided, key = self.authenticate_fast(presented)
        return key if decided else self._authenticate_scrypt(presented)

    def authenticate_fast(self, presented: str | None) -> tuple[bool, ApiKey | None]:
        """``(True, key or None)`` when a cheap check decides (a sha256 entry, or a scrypt key verified before);
        ``(False, None)`` when only the scrypt check can tell, which costs tens of milliseconds of CPU and so
        belongs off an event loop."""
        if not presented:
            return True, None
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        match = None
        for k in self._sha:  # every entry is compared: no early exit
            if hmac.compare_digest(k._digest, digest) and match is None:
                match = k
        if match is not None or not self._scrypt:
            return True, match
        with self._verified_lock:
            if digest in self._verified:
                return True, self._verified[digest]
        return False, None

    def _authenticate_scrypt(self, presented: str) -> ApiKey | None:
        raw = presented.encode("utf-8")
        match = None
        for k in self._scrypt:
            n, r, p, salt = k._params
            got = hashlib.scrypt(raw, salt=salt, n=n, r=r, p=p, dklen=len(k._digest))
            if hmac.compare_digest(k._digest, got) and match is None:
                match = k
        if match is not None:
            with self._verified_lock:
                if len(self._verified) < 10_000:
                    self._verified[hashlib.sha256(raw).digest()] = match
        return match


def _parse_entry(entry: Any, where: str) -> ApiKey:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table")
    if "key" in entry:
        raise ConfigError(f"{where}: store the key's hash, not the key (hash = \"sha256:...\"; "
                          "`ragkit serve --new-key TENANT` prints a key and its entry)")
    unknown = set(entry) - _KNOWN_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown field {sorted(unknown)[0]!r} (known: {', '.join(sorted(_KNOWN_FIELDS))})")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: 'name' (a label) is required")
    where = f"{where} ({name})"
    tenant = entry.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise ConfigError(f"{where}: 'tenant' is required")
    method, params, digest = _parse_hash(entry.get("hash"), where)
    all_tenants = entry.get("all_tenants", False)
    if all_tenants is not False and all_tenants is not True:
        raise ConfigError(f"{where}: all_tenants must be true or false")
    if "filter" in entry:
        try:
            flt = to_filter(entry["filter"])
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    else:
        flt = Filter.parse(f"tenant={tenant}")
    if not flt and not all_tenants:
        raise ConfigError(f"{where}: an empty filter would see every tenant's documents; "
                          "set all_tenants = true if that is intended")
    allow = entry.get("allow", list(ENDPOINTS))
    if not isinstance(allow, list) or any(a not in ENDPOINTS for a in allow):
        raise ConfigError(f"{where}: allow must be a list of {', '.join(ENDPOINTS)}")
    rpm = entry.get("rpm")
    if rpm is not None and (not isinstance(rpm, int) or isinstance(rpm, bool) or rpm < 1):
        raise ConfigError(f"{where}: rpm must be a positive integer")
    return ApiKey(name=name, tenant=tenant, filter=flt, allow=frozenset(allow), rpm=rpm,
                  _method=method, _params=params, _digest=digest)


def _parse_hash(value: Any, where: str) -> tuple[str, tuple, bytes]:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: 'hash' is required (\"sha256:<64 hex>\" or \"scrypt:n:r:p:salt:hash\")")
    method, _, rest = value.partition(":")
    try:
        if method == "sha256":
            digest = bytes.fromhex(rest)
            if len(digest) != 32:
                raise ValueError
            return method, (), digest
        if method == "scrypt":
            n, r, p, salt, digest = rest.split(":")
            n, r, p = int(n), int(r), int(p)
            if n < 2 or n & (n - 1) or r < 1 or p < 1:
                raise ValueError
            return method, (n, r, p, bytes.fromhex(salt)), bytes.fromhex(digest)
    except ValueError:
        pass
    raise ConfigError(f"{where}: malformed hash {value[:16]!r}... (expected \"sha256:<64 hex>\" or "
                      "\"scrypt:<n>:<r>:<p>:<salt hex>:<hash hex>\")")
