"""Text helpers several stages share: sentence splitting, citation markers, similarity of sentences to a question.

Three sentence splitters exist on purpose, each for one kind of text; each has one regex, defined here:

- :func:`split_sentences`: a source chunk into candidate answer units (prose sentences, table rows as
  ``header: value`` lines; headings left out). Used by the extractive answerer and the grounded checks.
- :func:`sentence_pieces`: a source into pieces that join back to it exactly, so packing can trim at a sentence end.
- :func:`answer_sentences`: a generated answer into sentences, keeping each ``[n]`` with the sentence before it.

Chunkers split with llama-index's sentence splitter (:func:`token_sentence_splitter`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

# a sentence end followed by the start of a new sentence (capital, digit, quote, bracket, code)
_UNIT_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9`])")
# a sentence end with its closing quotes or brackets, or a line break: the cut points of a packed source
_PIECE_END = re.compile(r"(?<=[.!?])[\"')\]]*[ \t]+|\n+")
# a sentence end in a generated answer; a following citation marker stays with the sentence it cites
_ANSWER_END = re.compile(r"(?<=[.!?])\s+(?=[^\s\[])")
_BLOCK_START = re.compile(r"([-*+>#\u2022]|\d+[.)])(\s|$)")  # a list item, quote or heading begins
_NUMBERED = re.compile(r"^\d+[.)]\s+")  # "1. " of a numbered list item
_TABLE_RULE = re.compile(r":?-{2,}:?")  # a cell of a Markdown table's header rule
_WRAPPED = 60  # characters: a line at least this long that stops mid-sentence was wrapped

CITATION_MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
"""One citation marker: ``[1]``, ``[1, 2]`` or ``[1;2]``; group 1 holds the numbers."""


def split_sentences(text: str) -> list[str]:
    """Candidate answer units of a chunk: sentences of its prose, and one unit per table row rendered as
    ``header: value; ...``. Headings are labels, not answers, and are left out."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if _is_table_row(lines[i]):
            block = []
            while i < len(lines) and _is_table_row(lines[i]):
                block.append(lines[i])
                i += 1
            out.extend(_table_units(block))
            continue
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        # a hard-wrapped sentence (plain text, PDF pages) goes on: join the lines it runs over
        last = line
        while i < len(lines) and _continues(last, lines[i].strip()) and not _is_table_row(lines[i]):
            last = lines[i].strip()
            line = f"{line} {last}"
            i += 1
        line = _NUMBERED.sub("", line.lstrip(">*- ").strip())
        out.extend(s.strip() for s in _UNIT_END.split(line) if s.strip())
    return out


def _continues(line: str, following: str) -> bool:
    """Whether the physical line ``following`` carries on the sentence ``line`` left open. Not when ``line`` ends a
    sentence (or a label, ``Note:``) or ``following`` starts a list item, quote or heading; yes when ``following``
    starts in lower case or with a digit, when ``line`` ends at a comma, or when ``line`` is as long as a wrapped
    line (a short line without a full stop is a heading or a label)."""
    if not following or line.endswith((".", "!", "?", ":")) or _BLOCK_START.match(following):
        return False
    return following[0].islower() or following[0].isdigit() or line.endswith(",") or len(line) >= _WRAPPED


def _is_table_row(line: str) -> bool:
    line = line.strip()
    return line.startswith("|") or " | " in line


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _table_units(block: list[str]) -> list[str]:
    rows = [_cells(r) for r in block if not all(_TABLE_RULE.fullmatch(c) or not c for c in _cells(r))]
    if len(rows) < 2:
        return [", ".join(c for c in r if c) for r in rows]
    header, body = rows[0], rows[1:]
    return ["; ".join(f"{h}: {v}" if h else v for h, v in zip(header, r) if v) for r in body]


def sentence_pieces(text: str) -> list[str]:
    """``text`` cut after each sentence end or line break; ``"".join(pieces) == text``. A trimmed source is a
    prefix of these pieces, so packing never ends a source mid-sentence."""
    pieces, start = [], 0
    for m in _PIECE_END.finditer(text):
        if m.end() > start:
            pieces.append(text[start:m.end()])
            start = m.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def answer_sentences(text: str) -> list[str]:
    """The sentences of a generated answer, each with the citation markers that follow it."""
    return _ANSWER_END.split(text)


def question_similarity(embed: Callable[[list[str]], np.ndarray], query: str,
                        groups: list[list[str]]) -> list[np.ndarray]:
    """Cosine of each sentence of each group (e.g. one source's candidate sentences) to ``query``, per group, from
    one call of ``embed`` (normalised vectors) over the query and every sentence."""
    flat = [u for g in groups for u in g]
    if not flat:
        return [np.zeros(0) for _ in groups]
    vecs = embed([query] + flat)
    sims, out, at = vecs[1:] @ vecs[0], [], 0
    for g in groups:
        out.append(sims[at: at + len(g)])
        at += len(g)
    return out


def token_sentence_splitter(size: int, overlap: int, encode: Callable[[str], list[int]]) -> Any:
    """llama-index's ``SentenceSplitter`` for chunks of ``size`` tokens (counted with ``encode``), neighbours sharing
    ``overlap`` tokens (at most half a chunk)."""
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(chunk_size=size, chunk_overlap=min(overlap, size // 2), tokenizer=encode)
