"""Evaluation: dataset readers (BEIR and QA layouts), retrieval metrics computed with ranx, answer metrics,
ablations."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_root() -> Path:
    """Where dataset indexes, the shared embedding cache and judge caches live: ``$RAGKIT_CACHE`` or
    ``~/.cache/ragkit``."""
    return Path(os.environ.get("RAGKIT_CACHE") or Path.home() / ".cache" / "ragkit")
