"""Rerankers: re-score the fused candidates (``process(query, hits) -> hits``)."""
