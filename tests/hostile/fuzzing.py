"""Fuzzing profiles and counts shared by the Hypothesis loader fuzz and the Schemathesis server fuzz.

``RAGKIT_FUZZ_PROFILE=ci`` (the default, what ``make test`` runs: fixed seeds, a few dozen examples each) or
``long`` (random seeds, many more examples). With ``RAGKIT_FUZZ_STATS=path``, the counts of generated inputs and
of their outcomes are written to that JSON file at the end of the session (benchmarks/fuzz.py reads it)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Profile:
    name: str
    loader_examples: int
    server_examples: int
    derandomize: bool


PROFILES = {"ci": Profile("ci", 100, 25, True), "long": Profile("long", 2000, 300, False)}
FUZZ = PROFILES[os.environ.get("RAGKIT_FUZZ_PROFILE", "ci")]

COUNTS: dict[str, Counter] = {}


def record(kind: str, target: str, outcome: object) -> None:
    """Count one generated input of ``kind`` ("loader" / "server") against ``target`` and its outcome."""
    COUNTS.setdefault(f"{kind}\t{target}", Counter())[str(outcome)] += 1


def write_stats() -> None:
    path = os.environ.get("RAGKIT_FUZZ_STATS")
    if not path:
        return
    out: dict = {"profile": FUZZ.name, "loader": {}, "server": {}}
    for key, counter in sorted(COUNTS.items()):
        kind, target = key.split("\t", 1)
        out[kind][target] = dict(sorted(counter.items()))
    Path(path).write_text(json.dumps(out, indent=2) + "\n")
