"""What the plugin conformance classes give the plugins they test: ragkit's default embedder (loaded once per
process), its token budget, and a ``Resources`` built on it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ragkit.plugins import Resources, registry


@lru_cache(maxsize=1)
def default_embedder() -> Any:
    """ragkit's default embedder (the offline all-MiniLM-L6-v2), warmed up."""
    from ragkit.config import Config

    emb = registry.create("embedder", Config().embedder.as_dict())
    emb.warm_up()
    return emb


def default_resources(embedder: Any = None) -> Resources:
    """Resources with an embedder and no index: ``neighbours`` finds nothing, ``llm`` is not configured."""
    emb = embedder if embedder is not None else default_embedder()
    return Resources(embedder=emb, embed_cached=emb.embed, neighbours=lambda doc_id, positions: {})
