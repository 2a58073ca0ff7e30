"""Fixed token windows with overlap (llama-index's TokenTextSplitter, embedder's tokenizer)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ragkit.chunking._base import assemble, capped, split_segments
from ragkit.plugins import Plugin, TokenBudget
from ragkit.types import Chunk, Document


class TokenChunker(Plugin):
    stage, name = "chunker", "token"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        chunk_size: int = Field(128, ge=8, description="tokens per window (capped at the embedder's max)")
        chunk_overlap: int = Field(16, ge=0, description="tokens shared by neighbouring windows")

    def split(self, doc: Document, budget: TokenBudget) -> list[Chunk]:
        from llama_index.core.node_parser import TokenTextSplitter

        size = capped(self.params.chunk_size, budget)
        splitter = TokenTextSplitter(chunk_size=size, chunk_overlap=min(self.params.chunk_overlap, size // 2),
                                     tokenizer=budget.encode)
        return assemble(doc, split_segments(doc, splitter.split_text, budget))
