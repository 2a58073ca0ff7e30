"""What every command shares: the consoles, the common options, the config path, opening an Engine, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

IndexOpt = typer.Option(None, "--index", "-i", "--store",
                        help="the index: a directory (the embedded store) or a URL such as postgresql://user@host/db "
                             "(default: [store] url of the config, else .ragkit)")
ConfigOpt = typer.Option(None, "--config", "-c",
                         help="pipeline config (TOML); default: ./ragkit.toml when it exists")
SetOpt = typer.Option(None, "--set", help="override a config value, e.g. --set chunker.chunk_size=128 (repeatable)")
JsonOpt = typer.Option(False, "--json", help="print machine-readable JSON instead of tables")


def config_path(config: Optional[Path]) -> Optional[Path]:
    """The config file to use: the one given, else ./ragkit.toml when it exists, else none (the defaults)."""
    if config is not None:
        return config
    default = Path("ragkit.toml")
    return default if default.is_file() else None


def open_engine(index: Optional[str], config: Optional[Path], overrides: Optional[list[str]]):
    from ragkit.engine import Engine

    return Engine.open(index, config_path(config), overrides or [])


def dump(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def json_line(data: Any) -> None:
    """Print ``data`` as one JSON line on stdout, flushed (streamed output)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def csv_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")`` (comma-separated option values)."""
    return tuple(m.strip() for m in text.split(",") if m.strip())
