"""Query transforms (stage ``transform``): rewrite or expand the question before retrieval.

A transform returns the queries to retrieve with: plain strings (both branches) or
:class:`ragkit.plugins.QueryVariant` objects restricted to one branch, with an optional extra pre-filter.

- ``prf``: RM3-style pseudo-relevance feedback for the BM25 branch (no LLM)
- ``multi-query``: an LLM writes N reformulations; every ranking is merged by the configured fusion (RRF)
- ``hyde``: an LLM writes a hypothetical answer passage that the dense branch embeds instead of / beside the question
- ``classify``: regex / keyword rules route a question to part of the corpus (a metadata filter, hard or soft)

The LLM-backed ones are off unless listed under ``[[transforms]]`` and never call a model before a query needs it.
"""
