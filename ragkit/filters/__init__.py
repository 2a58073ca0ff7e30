"""Post-retrieval filters (``process(query, hits) -> hits``), run in the order the config lists them.

Metadata filters are not here: they are pre-filters applied inside both retrieval branches
(``ragkit/filter_expr.py``), so a filtered chunk is never even a candidate."""
