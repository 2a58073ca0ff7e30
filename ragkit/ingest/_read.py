"""Reading source files safely: every failure becomes a LoadError with a one-line reason."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ragkit.errors import LoadError
from ragkit.types import LoadIssue

# UTF-32 before UTF-16: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_CP1252_UNDEFINED = b"\x81\x8d\x8f\x90\x9d"
# C0 controls that text files do not hold (tab, LF, VT, FF, CR, SUB and ESC they may)
_CONTROL = bytes(sorted(set(range(0x20)) - set(b"\t\n\x0b\x0c\r\x1a\x1b") | {0x7f}))
_UTF8_SEQ = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


@dataclass
class Decoded:
    """Text decoded from bytes, the encoding used, and what the ingest report should warn about: a byte offset
    and a one-line reason (bytes replaced by U+FFFD, or a file that mixes UTF-8 with a legacy encoding)."""

    text: str
    encoding: str
    invalid: int = 0
    offset: int = -1
    warning: str = ""

    def metadata(self) -> dict[str, str]:
        """``{"encoding": ...}`` for a file that is not UTF-8 (with or without BOM), else nothing."""
        return {} if self.encoding in ("utf-8", "utf-8-sig") else {"encoding": self.encoding}

    def issue(self, path: Path) -> LoadIssue | None:
        """The warning as an entry for the ingest report, or None."""
        return LoadIssue(f"{path.name}:{self.offset}", self.warning) if self.warning else None


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message as one line of at most ``limit`` characters (for a report's reason)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise LoadError("permission denied") from None
    except IsADirectoryError:
        raise LoadError("is a directory") from None
    except OSError as exc:
        raise LoadError(f"unreadable: {exc.strerror or exc}") from None


def decode(data: bytes) -> Decoded:
    """A byte-order mark decides; else UTF-8; else, when the invalid sequences outnumber the valid multi-byte
    UTF-8 ones, a legacy single-byte file: cp1252 when every byte is defined there, latin-1 otherwise. A UTF-8 file
    with fewer invalid sequences gets U+FFFD in their place, with a warning; so does a legacy file that also holds
    UTF-8 sequences. NUL bytes (without a BOM) or more than 1% control bytes in a file that is not UTF-8 mean
    binary content, which is refused."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            if enc == "utf-8-sig":
                return _utf8(data, len(bom), enc)
            try:
                return Decoded(data[len(bom):].decode(enc), enc)
            except UnicodeDecodeError as exc:
                raise LoadError(f"invalid {enc} text at byte {exc.start + len(bom)}") from None
    if b"\x00" in data[:8192]:
        raise LoadError("binary content (NUL bytes); not a text file")
    dec = _utf8(data, 0, "utf-8")
    if not dec.invalid:
        return dec
    valid = [m.start() for m in islice(_UTF8_SEQ.finditer(data), dec.invalid + 1)]  # counted as far as needed
    if len(valid) > dec.invalid:
        return dec
    controls = len(data) - len(data.translate(None, _CONTROL))
    if controls * 100 > len(data):
        raise LoadError(f"binary content ({controls} control bytes); not a text file")
    enc = "cp1252" if len(data.translate(None, _CP1252_UNDEFINED)) == len(data) else "latin-1"
    if not valid:
        return Decoded(data.decode(enc), enc)
    what = f"{len(valid)} UTF-8 sequences (the first" if len(valid) > 1 else "a UTF-8 sequence (one"
    verb = "show" if len(valid) > 1 else "shows"
    return Decoded(data.decode(enc), enc, 0, valid[0], f"mixed encodings: read as {enc}, so {what} at byte offset "
                                                      f"{valid[0]}) {verb} as two or more characters")


def _utf8(data: bytes, start: int, label: str) -> Decoded:
    """UTF-8 from ``start``, with U+FFFD for each invalid sequence (counted, and the first one's offset kept)."""
    try:
        return Decoded(data[start:].decode("utf-8"), label)
    except UnicodeDecodeError as exc:
        first = start + exc.start
    text = data[start:].decode("utf-8", errors="replace")
    n = text.count("\ufffd") - data.count("\ufffd".encode())
    what = f"{n} invalid UTF-8 sequences" if n > 1 else "an invalid UTF-8 sequence"
    return Decoded(text, label, n, first, f"{what} (the first at byte offset {first}) replaced with U+FFFD")


def read_decoded(path: Path, max_line_chars: int | None = None) -> Decoded:
    """A text file decoded by ``decode``; an empty or blank file is refused, and so is one with a line longer than
    ``max_line_chars`` (ingest.max_line_chars)."""
    dec = decode(read_bytes(path))
    if not dec.text.strip():
        raise LoadError("empty document")
    if max_line_chars is not None and len(dec.text) > max_line_chars:
        start = 0
        for lineno, end in enumerate(_line_ends(dec.text), 1):
            if end - start > max_line_chars:
                raise LoadError(f"line {lineno} is longer than {max_line_chars} characters "
                                "(limit: ingest.max_line_chars)")
            start = end + 1
    return dec


def _line_ends(text: str):
    """Offsets of every line end, and the text's end."""
    pos = text.find("\n")
    while pos >= 0:
        yield pos
        pos = text.find("\n", pos + 1)
    yield len(text)


class LineLimit(BaseModel):
    """Params of the loaders that read text: the longest line they accept."""

    model_config = ConfigDict(extra="forbid")
    max_line_chars: int = Field(5_000_000, ge=1, description="a file with a longer line is refused")


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
