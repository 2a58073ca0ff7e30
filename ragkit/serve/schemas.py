"""Typed request and response bodies of the HTTP API (they are also what /docs shows)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragkit.types import Citation, Hit

FilterSpec = str | list[str] | dict[str, Any]
Mode = Literal["bm25", "dense", "hybrid"]


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"query": "how do I rotate an API key?", "k": 5, "mode": "hybrid",
                      "filter": ["product=cloud"]}]})
    query: str = Field(..., min_length=1, description="the question or search text")
    k: int | None = Field(None, ge=1, description="hits to return (default: retrieval.k; capped by serve.max_k)")
    mode: Mode | None = Field(None, description="bm25, dense or hybrid (default: retrieval.mode)")
    filter: FilterSpec | None = Field(None, description="metadata filter: 'product=cloud', a list of such "
                                      "expressions (ANDed) or a table; ANDed with the key's tenant filter")


class QueryRequest(RetrieveRequest):
    max_tokens: int | None = Field(None, ge=1, description="answer length cap (default and limit: "
                                   "serve.max_tokens)")


class HitOut(BaseModel):
    rank: int
    chunk_id: str
    doc_id: str
    title: str = ""
    score: float
    scores: dict[str, float] = {}
    ranks: dict[str, int] = {}
    text: str
    position: int
    metadata: dict[str, Any] = {}

    @classmethod
    def of(cls, rank: int, hit: Hit) -> "HitOut":
        return cls(rank=rank, chunk_id=hit.chunk_id, doc_id=hit.doc_id, title=str(hit.chunk.metadata.get("title", "")),
                   score=hit.score, scores=hit.scores, ranks=hit.ranks, text=hit.chunk.text,
                   position=hit.chunk.position, metadata=hit.chunk.metadata)


class CitationOut(BaseModel):
    n: int = Field(..., description="[n] in the answer refers to sources[n-1]")
    chunk_id: str
    doc_id: str
    title: str = ""
    source: str = ""
    page: int | None = None

    @classmethod
    def of(cls, c: Citation) -> "CitationOut":
        return cls(n=c.n, chunk_id=c.chunk_id, doc_id=c.doc_id, title=c.title, source=c.source, page=c.page)


class RetrieveResponse(BaseModel):
    query: str
    mode: str
    k: int
    hits: list[HitOut]
    timings: dict[str, float] = {}


class QueryResponse(BaseModel):
    query: str
    answer: str
    citations: list[CitationOut]
    sources: list[HitOut]
    finish_reason: str = "stop"
    usage: dict[str, int] = {}
    warnings: list[str] = []
    timings: dict[str, float] = {}
    extras: dict[str, Any] = Field({}, description="e.g. the SQL tool's route, query, columns and rows")


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# --- OpenAI-compatible chat -----------------------------------------------------------------------------------

class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text or "" for p in self.content if p.type == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat-completions request. Sampling fields OpenAI clients send are accepted and ignored unless
    listed here; ragkit's own options (``k``, ``mode``, ``filter``) go in the same body (``extra_body`` in
    the openai client)."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    user: str | None = None
    k: int | None = Field(None, ge=1, description="ragkit: sources to retrieve")
    mode: Mode | None = Field(None, description="ragkit: bm25, dense or hybrid")
    filter: FilterSpec | None = Field(None, description="ragkit: metadata filter, ANDed with the tenant's")


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatChoiceMessage
    finish_reason: str


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    sources: list[HitOut] = Field(default_factory=list, description="ragkit extra: the retrieved chunks; "
                                  "[n] in the answer refers to sources[n-1]")
    citations: list[CitationOut] = Field(default_factory=list, description="ragkit extra: the cited sources")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragkit"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
