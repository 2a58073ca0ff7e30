"""Loaders (one per format) and the directory walk. Shared checks for text files live in ``_read``."""
