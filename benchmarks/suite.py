"""What the benchmark suite (benchmarks/run.py) and the CI score guard share: ragkit's pipelines, the expected
scores of benchmarks/expected.toml and the check against them.

A pipeline is a name, a retrieval mode and a fusion; ``+ce`` adds the cross-encoder trained on SciFact
(``python benchmarks/finetune_scifact.py supervised``) when it exists.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from _common import CACHE, ROOT

EXPECTED = ROOT / "benchmarks" / "expected.toml"
CROSS_ENCODER = CACHE / "finetune" / "reranker-supervised"


@dataclass(frozen=True)
class Pipeline:
    name: str
    mode: str
    fusion: str = "rrf"
    rerank: bool = False

    def config(self, cross_encoder: Path | None = None) -> dict:
        """The ragkit config of this pipeline (one document = one chunk is the index's, not the query's)."""
        cfg: dict = {"retrieval": {"mode": self.mode}, "fusion": {"name": self.fusion}}
        if self.rerank:
            cfg["rerankers"] = [{"name": "cross-encoder", "model": str(cross_encoder)}]
        return cfg


PIPELINES = {p.name: p for p in (
    Pipeline("bm25", "bm25"), Pipeline("dense", "dense"), Pipeline("hybrid-rrf", "hybrid", "rrf"),
    Pipeline("hybrid-minmax", "hybrid", "minmax"), Pipeline("hybrid-zscore", "hybrid", "zscore"),
    Pipeline("hybrid-rrf+ce", "hybrid", "rrf", rerank=True))}


@dataclass(frozen=True)
class Expected:
    dataset: str
    pipeline: str
    ndcg10: float
    tolerance: float
    source: str

    @property
    def floor(self) -> float:
        return round(self.ndcg10 - self.tolerance, 4)


def load_expected(path: Path = EXPECTED) -> list[Expected]:
    """Every (dataset, pipeline) entry of expected.toml: ``[dataset.pipeline]`` tables with ``ndcg10``, and a
    ``tolerance`` (the dataset's, else the file's default)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    default = float(data.get("tolerance", 0.01))
    out = []
    for dataset, table in data.get("datasets", {}).items():
        tol = float(table.get("tolerance", default))
        source = str(table.get("source", ""))
        for name, entry in table.get("pipelines", {}).items():
            if name not in PIPELINES:
                raise ValueError(f"{path}: unknown pipeline {name!r} for {dataset} (known: {', '.join(PIPELINES)})")
            out.append(Expected(dataset, name, float(entry["ndcg10"]), float(entry.get("tolerance", tol)),
                                str(entry.get("source", source))))
    return out


def check_scores(scores: dict[str, dict[str, float]], expected: list[Expected]) -> list[str]:
    """One line per (dataset, pipeline) whose measured nDCG@10 (``scores[dataset][pipeline]``) is below its
    expected value minus its tolerance; pairs not measured are not checked."""
    failures = []
    for e in expected:
        got = scores.get(e.dataset, {}).get(e.pipeline)
        if got is not None and got < e.floor:
            failures.append(f"{e.dataset} / {e.pipeline}: nDCG@10 {got:.4f} < expected {e.ndcg10:.4f} - "
                            f"tolerance {e.tolerance:.4f} (= {e.floor:.4f})")
    return failures


def cross_encoder_path(path: str | Path | None = None) -> Path | None:
    """The trained cross-encoder to use (the given one, else the one finetune_scifact.py trains), or None."""
    p = Path(path) if path else CROSS_ENCODER
    return p if (p / "config.json").is_file() else None
