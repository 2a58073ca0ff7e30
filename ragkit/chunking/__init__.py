"""Chunkers: one per strategy. Every chunk fits the embedder's token budget (``_base.fit_budget``)."""
