"""Query-time retrieval stages: fusion of the branches (and, later, query transforms)."""
