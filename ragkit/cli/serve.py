"""``ragkit serve``: the HTTP API over an index, and API keys for it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ragkit.cli.common import ConfigOpt, IndexOpt, SetOpt, config_path


def serve(
    index: Optional[str] = IndexOpt,
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    host: Optional[str] = typer.Option(None, "--host", help="address to listen on (default: serve.host, "
                                       "127.0.0.1); other than loopback only with --api-keys"),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="port (default: serve.port, 8000)"),
    api_keys: Optional[Path] = typer.Option(None, "--api-keys", help="keys.toml: hashed API keys, each with a "
                                            "tenant and its metadata filter"),
    new_key: Optional[str] = typer.Option(None, "--new-key", metavar="TENANT", help="print a fresh API key for "
                                          "TENANT and the keys.toml entry holding its hash, then exit"),
) -> None:
    """HTTP API over the index: /v1/retrieve, /v1/query, OpenAI-compatible /v1/chat/completions; docs at /docs."""
    from ragkit.serve.server import new_key_entry, run

    if new_key is not None:
        key, entry = new_key_entry(new_key)  # stdout: the key; stderr: its keys.toml entry (valid TOML)
        sys.stdout.write(key + "\n")
        sys.stderr.write(f"# key for tenant {new_key!r}: printed on stdout once, only its hash is kept here\n"
                         + entry)
        return
    run(index, config_path(config), overrides or [], host, port, api_keys)
