"""Index settings: the index-shaping plugin specs (chunker, embedder, sparse, dense) an index is built with.

They are stamped into the index at its first commit and checked afterwards: a config that explicitly asks for
different settings than the committed ones is refused until the user rebuilds. Specs are compared in their
canonical form (every parameter, defaults filled in), so ``{"name": "faiss"}`` equals its spelled-out twin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragkit.config import INDEX_SECTIONS, Config
from ragkit.errors import IndexConfigMismatch
from ragkit.plugins import registry

Settings = dict[str, dict[str, Any]]


def canonical(stage: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Every parameter, defaults filled in, except those the plugin declares as not shaping what it stores
    (``runtime_params``, e.g. the embedder's numeric precision)."""
    plugin = registry.create(stage, spec)
    skip = set(plugin.runtime_params)
    return {k: v for k, v in plugin.spec().items() if k not in skip}


def with_runtime(stage: str, stored: dict[str, Any], config: Config) -> dict[str, Any]:
    """``stored`` (an index's spec for ``stage``) plus the config's values of the plugin's ``runtime_params``
    (which the stamp leaves out) when the config names the same plugin."""
    asked = getattr(config, stage).as_dict()
    if asked.get("name") != stored.get("name"):
        return stored
    skip = registry.create(stage, stored).runtime_params
    return {**stored, **{k: v for k, v in asked.items() if k in skip}}


def wanted(config: Config) -> Settings:
    """The settings a config asks for, canonical."""
    return {s: canonical(s, getattr(config, s).as_dict()) for s in INDEX_SECTIONS}


@dataclass(frozen=True)
class Mismatch:
    section: str
    have: Any
    want: Any

    def error(self, location: str) -> IndexConfigMismatch:
        return IndexConfigMismatch(
            f"{location}: index was built with {self.section} {short(self.have)}, config asks for "
            f"{short(self.want)}; re-run ingest with --rebuild to rebuild the index")


def mismatch(stored: Settings | None, want: Settings, explicit: set[str]) -> Mismatch | None:
    """The first section the config sets explicitly (``explicit``) that differs from the stored settings."""
    if stored is None:
        return None
    for section in INDEX_SECTIONS:
        if section in explicit and stored.get(section) != want[section]:
            return Mismatch(section, stored.get(section), want[section])
    return None


def first_difference(stored: Settings, want: Settings) -> Mismatch | None:
    for section in INDEX_SECTIONS:
        if stored.get(section) != want.get(section):
            return Mismatch(section, stored.get(section), want.get(section))
    return None


def short(spec: Any) -> str:
    if not isinstance(spec, dict):
        return repr(spec)
    return "{" + ", ".join(f"{k}={v!r}" for k, v in spec.items()) + "}"
