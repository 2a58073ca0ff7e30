"""Embedders and the on-disk embedding cache."""
