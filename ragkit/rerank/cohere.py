"""Cohere's rerank API (v2) through the ``cohere`` SDK (extra ``ragkit[cohere]``).

    [[rerankers]]
    name = "cohere"
    model = "rerank-v3.5"
    depth = 50
    # api_key: default COHERE_API_KEY; base_url: another endpoint (a proxy, a private deployment, a test server)

Off until configured: the key is checked, and the client built, at the first query, never at start-up. 429 and
5xx answers and timeouts are retried ``max_retries`` times with exponential backoff (``backoff`` seconds, doubled
each time); 401/403 (bad key), 402 (quota) and other errors fail at once with a one-line message. Scores are
Cohere's ``relevance_score`` (0..1), recorded as ``scores["cohere"]`` and ``ranks["cohere"]``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ragkit.errors import ConfigError, PluginError
from ragkit.plugins import Plugin
from ragkit.rerank._common import apply_scores
from ragkit.types import Hit


class CohereReranker(Plugin):
    stage, name = "reranker", "cohere"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str = Field("rerank-v3.5", description="Cohere rerank model")
        depth: int = Field(50, ge=1, le=1000, description="fused candidates sent for reranking")
        top_n: int | None = Field(None, ge=1, description="keep only this many after reranking (default: all)")
        api_key: str = Field("", description="default: the COHERE_API_KEY environment variable")
        base_url: str = Field("", description="default: Cohere's API (or CO_API_URL)")
        timeout: float = Field(30.0, gt=0, description="seconds per request")
        max_retries: int = Field(3, ge=0, le=10, description="retries on 429 / 5xx / timeouts")
        backoff: float = Field(1.0, ge=0, description="first retry delay in seconds, doubled on each retry")
        max_tokens_per_doc: int | None = Field(None, ge=1, description="Cohere truncates each document to this")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._client: Any = None
        self._lock = threading.Lock()
        self.retries = 0  # retries made so far (observable in tests and benchmarks)

    @property
    def where(self) -> str:
        return self.params.base_url or os.environ.get("CO_API_URL", "") or "api.cohere.com"

    def warm_up(self) -> None:
        with self._lock:
            if self._client is not None:
                return
            key = self.params.api_key or os.environ.get("COHERE_API_KEY", "")
            if not key:
                raise ConfigError("reranker 'cohere': no API key (set COHERE_API_KEY or the 'api_key' parameter)")
            try:
                import cohere
            except ImportError:
                raise PluginError("reranker 'cohere' needs the cohere SDK: pip install 'ragkit[cohere]'") from None
            kw: dict[str, Any] = {"api_key": key, "timeout": self.params.timeout, "max_retries": 0}
            base = self.params.base_url or os.environ.get("CO_API_URL", "")
            if base:
                kw["base_url"] = base
            self._client = cohere.ClientV2(**kw)

    def rerank(self, query: str, documents: list[str]) -> list[tuple[int, float]]:
        """(index, relevance_score) pairs, best first, as Cohere returns them."""
        from ragkit.llm.cohere_errors import classify

        self.warm_up()
        kw: dict[str, Any] = {"model": self.params.model, "query": query, "documents": documents,
                              "top_n": len(documents)}
        if self.params.max_tokens_per_doc:
            kw["max_tokens_per_doc"] = self.params.max_tokens_per_doc
        delay = self.params.backoff
        for attempt in range(self.params.max_retries + 1):
            try:
                resp = self._client.rerank(**kw)
                return [(int(r.index), float(r.relevance_score)) for r in resp.results]
            except Exception as exc:  # the SDK raises one typed error per status; classify maps them
                kind, message = classify(exc, self.where)
                if kind == "retry" and attempt < self.params.max_retries:
                    self.retries += 1
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise PluginError(f"reranker {message}") from None
        raise AssertionError("unreachable")

    def process(self, query: str, hits: list[Hit]) -> list[Hit]:
        head = hits[:self.params.depth]
        if not head:
            return hits
        results = self.rerank(query, [h.chunk.text for h in head])
        scores = [0.0] * len(head)
        seen = set()
        for index, score in results:
            if not 0 <= index < len(head) or index in seen:
                raise PluginError(f"reranker cohere at {self.where}: response names document {index}, "
                                  f"but {len(head)} were sent")
            seen.add(index)
            scores[index] = score
        return apply_scores(self.name, hits, scores, self.params.top_n)
