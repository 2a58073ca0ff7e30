"""Heading-aware chunks: split at Markdown headings (llama-index's MarkdownNodeParser), then by sentences.

Each chunk records its heading path, e.g. ``"Admin > API keys > Rotation"``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ragkit.chunking._base import assemble, capped, fit_budget
from ragkit.plugins import Plugin, TokenBudget
from ragkit.text import token_sentence_splitter
from ragkit.types import Chunk, Document


class MarkdownChunker(Plugin):
    stage, name = "chunker", "markdown"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        chunk_size: int = Field(200, ge=8, description="target tokens per chunk inside a section")
        chunk_overlap: int = Field(20, ge=0)
        prefix_headings: bool = Field(False, description="prepend the heading path to each chunk's text")

    def split(self, doc: Document, budget: TokenBudget) -> list[Chunk]:
        from llama_index.core import Document as LIDocument
        from llama_index.core.node_parser import MarkdownNodeParser

        parser = MarkdownNodeParser(include_metadata=True, include_prev_next_rel=False)
        splitter = token_sentence_splitter(capped(self.params.chunk_size, budget), self.params.chunk_overlap,
                                           budget.encode)
        pieces = []
        for seg in doc.iter_segments():
            for node in parser.get_nodes_from_documents([LIDocument(text=seg.text)]):
                path = [p for p in str(node.metadata.get("header_path", "")).split("/") if p]
                heading = _first_heading(node.text)
                if heading and (not path or path[-1] != heading):
                    path.append(heading)
                meta = {**seg.metadata, "heading_path": " > ".join(path)}
                for text in splitter.split_text(node.text):
                    if self.params.prefix_headings and path:
                        text = f"{' > '.join(path)}\n{text}"
                    pieces.extend((t, meta) for t in fit_budget(text, budget))
        return assemble(doc, pieces)


def _first_heading(text: str) -> str:
    first = text.lstrip().split("\n", 1)[0]
    return first.lstrip("#").strip() if first.startswith("#") else ""
