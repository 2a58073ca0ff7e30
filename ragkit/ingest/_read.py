"""Reading source files safely: every failure becomes a LoadError with a one-line reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ragkit.errors import LoadError

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise LoadError("permission denied") from None
    except IsADirectoryError:
        raise LoadError("is a directory") from None
    except OSError as exc:
        raise LoadError(f"unreadable: {exc.strerror or exc}") from None


def decode_text(data: bytes) -> str:
    """UTF-8 (or UTF-16 with a BOM). Binary content and other encodings are refused, not guessed."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc)
            except UnicodeDecodeError as exc:
                raise LoadError(f"invalid {enc} text at byte {exc.start}") from None
    if b"\x00" in data[:8192]:
        raise LoadError("binary content (NUL bytes); not a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                        "re-encode the file as UTF-8") from None


def read_text(path: Path) -> str:
    text = decode_text(read_bytes(path))
    if not text.strip():
        raise LoadError("empty document")
    return text


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """YAML front matter between leading ``---`` lines -> (metadata, body)."""
    if not text.startswith("---"):
        return {}, text
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            try:
                meta = yaml.safe_load("\n".join(lines[1:i])) or {}
            except yaml.YAMLError as exc:
                raise LoadError(f"malformed front matter: {str(exc).splitlines()[0]}") from None
            if not isinstance(meta, dict):
                raise LoadError("malformed front matter: expected key: value pairs")
            return {str(k): _plain(v) for k, v in meta.items()}, "\n".join(lines[i + 1:])
    return {}, text


def _plain(value: Any) -> Any:
    """YAML dates become ISO strings so metadata stays JSON and compares as text."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read_sidecar(path: Path) -> dict[str, Any]:
    """User metadata from ``<file>.meta.json`` beside the file, if present."""
    side = path.with_name(path.name + ".meta.json")
    if not side.exists():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"sidecar {side.name}: {exc}") from None
    if not isinstance(data, dict):
        raise LoadError(f"sidecar {side.name}: expected a JSON object")
    return data
