"""What ``ragkit serve`` runs: settings from the config's [serve] section and the flags, the loopback rule,
a start-up line that says who can see what, then uvicorn."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Any

from ragkit.errors import ConfigError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def prepare(index: Path, config: Any, overrides: list[str], host: str | None, port: int | None,
            api_keys: Path | None):
    """(app, settings, banner lines); raises ConfigError for a non-loopback host without keys."""
    from ragkit.config import load_config
    from ragkit.engine import Engine
    from ragkit.serve import create_app
    from ragkit.serve.auth import KeyRing

    cfg = load_config(config, overrides)
    settings = cfg.serve.model_copy(update={k: v for k, v in
                                            {"host": host, "port": port,
                                             "api_keys": str(api_keys) if api_keys else None}.items()
                                            if v is not None})
    keys = KeyRing.load(settings.api_keys) if settings.api_keys else None
    if keys is None and not is_loopback(settings.host):
        raise ConfigError(f"serve: refusing to listen on {settings.host} without API keys "
                          "(anyone who can reach it would read every document); pass --api-keys keys.toml, "
                          "or use 127.0.0.1")
    engine = Engine.open(index, cfg)
    app = create_app(engine, keys, settings=settings)
    gen = engine.reader()
    where = f"http://{settings.host}:{settings.port}"
    named = getattr(engine.store, "where", engine.store.location)  # a URL without its password
    banner = [f"ragkit serve: {where}  (index {named}, "
              + (f"generation {gen.name}, {gen.n_chunks} chunks)" if gen else
                 "empty: `ragkit ingest` into it and the server picks the commit up)"),
              f"  docs: {where}/docs   OpenAI base_url: {where}/v1   model: ragkit"]
    if keys is None:
        banner.append("  no API keys configured: listening on loopback only; every request sees every document")
    else:
        tenants = sorted({k.tenant for k in keys.keys if k.tenant})
        banner.append(f"  {len(keys)} API keys from {settings.api_keys}, tenants: {', '.join(tenants)}")
    return app, settings, banner


def run(index: Path, config: Any, overrides: list[str], host: str | None, port: int | None,
        api_keys: Path | None, log_level: str = "info") -> None:
    import uvicorn

    app, settings, banner = prepare(index, config, overrides, host, port, api_keys)
    for line in banner:
        print(line, file=sys.stderr, flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level, timeout_graceful_shutdown=10)


def new_key_entry(tenant: str, name: str | None = None, method: str = "sha256") -> tuple[str, str]:
    """(fresh key, its keys.toml entry)."""
    from ragkit.serve.auth import hash_key, keys_toml_entry, new_key

    if not tenant.strip():
        raise ConfigError("--new-key: tenant name is empty")
    key = new_key()
    return key, keys_toml_entry(name or f"{tenant}-key", tenant, hash_key(key, method))
