"""ragkit as a LlamaIndex retriever.

    from ragkit.integrations.llamaindex import RagkitRetriever
    retriever = RagkitRetriever(".ragkit", k=5, mode="hybrid", filter="product=cloud")
    engine = RetrieverQueryEngine.from_args(retriever, llm=...)          # or a chat engine
    # or, against a running `ragkit serve`:
    retriever = RagkitHTTPRetriever("http://127.0.0.1:8000", api_key=KEY, k=5)

Each hit becomes ``NodeWithScore(TextNode, score)``: the node's id is the chunk id, its text the chunk text,
its metadata the chunk metadata plus ``doc_id``, ``chunk_id``, ``position`` and the per-stage ``scores``
(bm25, dense, fused...); its SOURCE relationship points at the document id. File-system details
(``source``, ``sha256``, ``mtime``...) are kept in the metadata but hidden from the LLM and the embedder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode

HIDDEN_KEYS = ["source", "sha256", "mtime", "format", "position", "chunk_id", "scores"]


def to_node(chunk_id: str, doc_id: str, text: str, score: float, position: int, metadata: dict[str, Any],
            scores: dict[str, float] | None = None) -> NodeWithScore:
    meta = {**metadata, "doc_id": doc_id, "chunk_id": chunk_id, "position": position}
    if scores:
        meta["scores"] = dict(scores)
    hidden = [k for k in HIDDEN_KEYS if k in meta]
    node = TextNode(id_=chunk_id, text=text, metadata=meta, excluded_llm_metadata_keys=hidden,
                    excluded_embed_metadata_keys=hidden,
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)})
    return NodeWithScore(node=node, score=float(score))


class RagkitRetriever(BaseRetriever):
    """Retrieve from a ragkit index in this process (an Engine, or an index path opened with ``config``)."""

    def __init__(self, engine: Any, *, k: int | None = None, mode: str | None = None, filter: Any = None,
                 config: Any = None, **kwargs: Any) -> None:
        from ragkit.engine import Engine

        self.engine = engine if isinstance(engine, Engine) else Engine.open(Path(engine), config)
        self.k, self.mode, self.filter = k, mode, filter
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        r = self.engine.retrieve(query_bundle.query_str, k=self.k, filter=self.filter, mode=self.mode)
        return [to_node(h.chunk_id, h.doc_id, h.chunk.text, h.score, h.chunk.position, h.chunk.metadata, h.scores)
                for h in r.hits]


class RagkitHTTPRetriever(BaseRetriever):
    """Retrieve from a running ``ragkit serve`` through ``POST /v1/retrieve`` (the key's tenant applies)."""

    def __init__(self, base_url: str, *, api_key: str | None = None, k: int | None = None, mode: str | None = None,
                 filter: Any = None, timeout: float = 30.0, **kwargs: Any) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/").removesuffix("/v1"), headers=headers, timeout=timeout)
        self.k, self.mode, self.filter = k, mode, filter
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        from ragkit.errors import RagkitError

        body = {"query": query_bundle.query_str, "k": self.k, "mode": self.mode, "filter": self.filter}
        resp = self._http.post("/v1/retrieve", json={k: v for k, v in body.items() if v is not None})
        if resp.status_code != 200:
            try:
                message = resp.json()["error"]["message"]
            except Exception:
                message = resp.text[:200]
            raise RagkitError(f"ragkit server {self._http.base_url}: HTTP {resp.status_code}: {message}")
        return [to_node(h["chunk_id"], h["doc_id"], h["text"], h["score"], h["position"], h["metadata"],
                        h.get("scores")) for h in resp.json()["hits"]]

    def close(self) -> None:
        self._http.close()
