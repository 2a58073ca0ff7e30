"""HTML: visible text of the main content, without scripts, styles, navigation and page chrome.

Before parsing, a linear scan over the tags measures nesting depth and element count; a page over either limit
(``ingest.max_html_depth`` / ``ingest.max_html_elements``) is refused, because the parser's tree work grows
much faster than linearly on deeply nested input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ragkit.errors import LoadError
from ragkit.ingest._read import read_decoded, read_sidecar
from ragkit.ingest.tables import html_tables
from ragkit.plugins import Plugin
from ragkit.types import Document, LoadIssue

_DROP = ["script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form",
         "iframe", "button"]
_BOILERPLATE_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary"}
_IGNORED_META = {"viewport", "generator", "robots", "theme-color", "referrer", "format-detection"}
_BLOCKS = {"p", "div", "section", "article", "main", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
           "blockquote", "table", "ul", "ol", "dl", "dt", "dd", "br", "hr", "figcaption"}
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
         "wbr", "keygen", "basefont", "bgsound", "frame", "spacer"}
_RAW_TEXT = {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"}
_TAG_START = re.compile(r"<(/?)([a-z][^\s/>]*)|<!--")


class HtmlLoader(Plugin):
    stage, name = "loader", "html"
    extensions = (".html", ".htm", ".xhtml")

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        max_depth: int = Field(512, ge=1, description="nesting depth above which a page is refused")
        max_elements: int = Field(200_000, ge=1, description="element count above which a page is refused")
        max_line_chars: int = Field(5_000_000, ge=1, description="a page with a longer line is refused")

    def load(self, path: Path, doc_id: str) -> Iterator[Document | LoadIssue]:
        from bs4 import BeautifulSoup

        dec = read_decoded(path, self.params.max_line_chars)
        check_shape(dec.text, self.params.max_depth, self.params.max_elements)
        soup = BeautifulSoup(dec.text, "html.parser")
        meta = dec.metadata()
        for tag in soup.find_all("meta"):
            key, content = tag.get("name") or tag.get("property"), tag.get("content")
            if key and content is not None and key.lower() not in _IGNORED_META:
                meta[key] = content
        meta.update(read_sidecar(path))
        title_tag = soup.find("title")
        title = str(meta.pop("title", "")) or (title_tag.get_text(strip=True) if title_tag else "")
        dropped = dropped_tags(soup)
        root = (first_kept(soup, "main", dropped) or first_kept(soup, "article", dropped)
                or first_kept(soup, "body", dropped) or soup)
        if not title:
            h1 = first_kept(root, "h1", dropped)
            title = " ".join(s.strip() for s in h1.strings if s.strip() and id(s.parent) not in dropped) \
                if h1 else path.stem
        text = html_to_text(root, dropped)
        if not text:
            raise LoadError("empty document (no visible text)")
        yield Document(doc_id=doc_id, text=text, title=title, metadata=meta,
                       tables=html_tables(root, title, dropped))
        if issue := dec.issue(path):
            yield issue


def dropped_tags(soup) -> set[int]:
    """Ids of the tags left out of the text: scripts, styles, page chrome, ARIA navigation, and all they contain.
    Found in one pass; the tree is not modified (removing many siblings one by one is quadratic in bs4)."""
    dropped: set[int] = set()
    for el in soup.descendants:
        if getattr(el, "name", None) is None:
            continue
        if (id(el.parent) in dropped or el.name in _DROP
                or (el.get("role") is not None and str(el.get("role")).lower() in _BOILERPLATE_ROLES)):
            dropped.add(id(el))
    return dropped


def first_kept(root, name: str, dropped: set[int]):
    """The first tag called ``name`` under ``root`` that is not dropped, or None."""
    return next((t for t in root.find_all(name) if id(t) not in dropped), None)


def check_shape(text: str, max_depth: int, max_elements: int) -> None:
    """Refuse a page nested deeper than ``max_depth`` or with more than ``max_elements`` tags, in one linear pass.

    Depth follows the parser's rule: an end tag closes the most recent open element of its name (and everything
    opened after it); an end tag with no open element of its name is ignored. Comments and the content of
    script/style-like elements are not tags."""
    low = text.lower()
    stack: list[str] = []
    open_count: dict[str, int] = {}
    elements, pos = 0, 0
    while (m := _TAG_START.search(low, pos)) is not None:
        if m.group(0) == "<!--":
            end = low.find("-->", m.end())
            if end < 0:
                return
            pos = end + 3
            continue
        end = low.find(">", m.end())
        if end < 0:
            return
        pos = end + 1
        closing, name = m.group(1), m.group(2)
        if closing:
            if open_count.get(name):
                while (top := stack.pop()) != name:
                    open_count[top] -= 1
                open_count[name] -= 1
            continue
        elements += 1
        if elements > max_elements:
            raise LoadError(f"more than {max_elements} HTML elements (limit: ingest.max_html_elements)")
        if name in _RAW_TEXT:
            close = low.find("</" + name, pos)
            if close < 0:
                return
            pos = close
        if name in _VOID or low[end - 1] == "/":
            continue
        stack.append(name)
        open_count[name] = open_count.get(name, 0) + 1
        if len(stack) > max_depth:
            raise LoadError(f"HTML nested deeper than {max_depth} elements (limit: ingest.max_html_depth)")


def html_to_text(root, dropped: set[int] = frozenset()) -> str:
    """Block elements become line breaks, headings keep their level as Markdown ``#`` marks (so later stages
    can tell a heading from a sentence), table cells are separated by ' | '. One pass over the tree; tags in
    ``dropped`` (and their text) are left out."""
    wanted = {id(s) for s in root.strings}  # the strings get_text() would join (no comments, doctypes, ...)
    parts: list[str] = []
    open_tags: list[tuple[object, str]] = [(root, "")]  # (tag, text emitted when it closes)
    for el in root.descendants:
        if id(el) in dropped or id(el.parent) in dropped:
            continue
        while open_tags[-1][0] is not el.parent:
            parts.append(open_tags.pop()[1])
        if getattr(el, "name", None) is None:
            if id(el) in wanted:
                parts.append(el)
            continue
        after = ""
        if el.name in _BLOCKS:
            parts.append("\n")
            after = "\n"
        if el.name in _HEADINGS:
            parts.append("#" * _HEADINGS[el.name] + " ")
        elif el.name in ("td", "th"):
            after = " | "
        open_tags.append((el, after))
    parts.extend(after for _, after in reversed(open_tags[1:]))
    text = "".join(parts)
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
