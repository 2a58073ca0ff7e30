"""Adapters that let other frameworks use ragkit's retrieval."""
