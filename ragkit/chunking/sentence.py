"""Sentence-aware chunks (default): llama-index's SentenceSplitter, counting tokens with the embedder's tokenizer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ragkit.chunking._base import assemble, capped, split_segments
from ragkit.plugins import Plugin, TokenBudget
from ragkit.text import token_sentence_splitter
from ragkit.types import Chunk, Document


class SentenceChunker(Plugin):
    stage, name = "chunker", "sentence"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        chunk_size: int = Field(200, ge=8, description="target tokens per chunk (capped at the embedder's max)")
        chunk_overlap: int = Field(20, ge=0, description="tokens shared by neighbouring chunks")

    def split(self, doc: Document, budget: TokenBudget) -> list[Chunk]:
        splitter = token_sentence_splitter(capped(self.params.chunk_size, budget), self.params.chunk_overlap,
                                           budget.encode)
        return assemble(doc, split_segments(doc, splitter.split_text, budget))
