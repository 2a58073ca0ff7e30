"""Helpers shared by chunkers: chunk assembly and the hard token cap."""

from __future__ import annotations

from typing import Any

from ragkit.plugins import TokenBudget
from ragkit.types import Chunk, Document


def fit_budget(text: str, budget: TokenBudget) -> list[str]:
    """Return ``text`` as is when it fits, else consecutive token windows that each fit.

    The safety net behind every splitter: a splitter's own token arithmetic may differ from tokenizing the
    final string (joins, whitespace), so the cap is re-checked on the actual chunk text.
    """
    if budget.count(text) <= budget.max_tokens:
        return [text]
    ids = budget.encode(text)
    out: list[str] = []
    start = 0
    while start < len(ids):
        window = budget.max_tokens
        piece = budget.decode(ids[start:start + window]).strip()
        # decode + re-encode can grow around word pieces: shrink the window until the string fits
        while piece and window > 1 and budget.count(piece) > budget.max_tokens:
            window = max(1, int(window * 0.9))
            piece = budget.decode(ids[start:start + window]).strip()
        if piece:
            out.append(piece)
        start += window
    return out


def assemble(doc: Document, pieces: list[tuple[str, dict[str, Any]]]) -> list[Chunk]:
    chunks = []
    for text, extra in pieces:
        text = text.strip()
        if not text:
            continue
        pos = len(chunks)
        meta = {**doc.metadata, "title": doc.title, **extra, "position": pos}
        chunks.append(Chunk(chunk_id=f"{doc.doc_id}#{pos}", doc_id=doc.doc_id, text=text, position=pos,
                            metadata=meta))
    return chunks


def capped(size: int, budget: TokenBudget) -> int:
    return max(8, min(size, budget.max_tokens))


def split_segments(doc: Document, split_text, budget: TokenBudget,
                   extra: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Run ``split_text`` over each segment (chunks never cross a segment), capping every piece."""
    pieces = []
    for seg in doc.iter_segments():
        meta = {**seg.metadata, **(extra or {})}
        for text in split_text(seg.text):
            pieces.extend((t, meta) for t in fit_budget(text, budget))
    return pieces
