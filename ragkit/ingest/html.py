"""HTML: visible text of the main content, without scripts, styles, navigation and page chrome."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ragkit.errors import LoadError
from ragkit.ingest._read import decode_text, read_bytes, read_sidecar
from ragkit.plugins import Plugin
from ragkit.types import Document

_DROP = ["script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form",
         "iframe", "button"]
_BOILERPLATE_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary"}
_IGNORED_META = {"viewport", "generator", "robots", "theme-color", "referrer", "format-detection"}
_BLOCKS = {"p", "div", "section", "article", "main", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
           "blockquote", "table", "ul", "ol", "dl", "dt", "dd", "br", "hr", "figcaption"}


class HtmlLoader(Plugin):
    stage, name = "loader", "html"
    extensions = (".html", ".htm", ".xhtml")

    def load(self, path: Path, doc_id: str) -> Iterator[Document]:
        from bs4 import BeautifulSoup

        raw = read_bytes(path)
        soup = BeautifulSoup(decode_text(raw), "html.parser")
        meta = {}
        for tag in soup.find_all("meta"):
            key, content = tag.get("name") or tag.get("property"), tag.get("content")
            if key and content is not None and key.lower() not in _IGNORED_META:
                meta[key] = content
        meta.update(read_sidecar(path))
        title_tag = soup.find("title")
        title = str(meta.pop("title", "")) or (title_tag.get_text(strip=True) if title_tag else "")
        for tag in soup.find_all(_DROP):
            tag.decompose()
        for tag in soup.find_all(attrs={"role": True}):
            if not tag.decomposed and str(tag.get("role")).lower() in _BOILERPLATE_ROLES:
                tag.decompose()
        root = soup.find("main") or soup.find("article") or soup.body or soup
        if not title:
            h1 = root.find("h1")
            title = h1.get_text(" ", strip=True) if h1 else path.stem
        text = html_to_text(root)
        if not text:
            raise LoadError("empty document (no visible text)")
        yield Document(doc_id=doc_id, text=text, title=title, metadata=meta)


def html_to_text(root) -> str:
    """Block elements become line breaks, headings keep their level as Markdown ``#`` marks (so later stages
    can tell a heading from a sentence), table cells are separated by ' | '."""
    for level in range(1, 7):
        for h in root.find_all(f"h{level}"):
            h.insert(0, "#" * level + " ")
    for cell in root.find_all(["td", "th"]):
        cell.insert_after(" | ")
    for tag in root.find_all(_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    text = root.get_text()
    lines = [re.sub(r"[ \t\r\f\v]+", " ", ln).strip(" |") for ln in text.split("\n")]
    out, blank = [], False
    for ln in lines:
        if ln:
            out.append(ln)
            blank = False
        elif not blank and out:
            out.append("")
            blank = True
    return "\n".join(out).strip()
