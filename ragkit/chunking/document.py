"""One chunk per document, as BEIR evaluations do. Not token-capped: the embedder truncates long texts."""

from __future__ import annotations

from ragkit.chunking._base import assemble
from ragkit.plugins import Plugin, TokenBudget
from ragkit.types import Chunk, Document


class DocumentChunker(Plugin):
    stage, name = "chunker", "document"
    capped = False  # conformance tests skip the token-cap check for this chunker only

    def split(self, doc: Document, budget: TokenBudget) -> list[Chunk]:
        return assemble(doc, [(doc.text, {})])
