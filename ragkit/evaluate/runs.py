"""Runs: per query, the retrieved documents and their scores, best first (what ranx and trec_eval score).

A run is built from a query's chunk hits (:func:`doc_run`: a document's score is its best chunk's, or the sum
of its chunks'), kept as a :class:`RunResult` with the per-query latencies, and stored as a gzipped TREC run file
(:func:`write_trec_run` / :func:`read_trec_run`). :func:`doc_key_for` maps the index's document ids to the ids
a dataset's judgments use.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ragkit.evaluate.datasets import doc_keyer

Run = dict[str, dict[str, float]]  # qid -> {doc_id: score}, best first
NO_DOC = "__none__"  # the placeholder ranx needs for a query that retrieved nothing


def doc_run(hits: Iterable, doc_key: Callable[[str], str] | None = None, *, level: str = "max",
            exclude: str | None = None) -> dict[str, float]:
    """One query's documents from its (best-first) chunk hits. ``level='max'``: a document's score is its best
    chunk's; ``'sum'``: the sum over its chunks. ``doc_key`` maps an indexed doc id to the dataset's id;
    a document whose (mapped) id is ``exclude`` is left out."""
    docs: dict[str, float] = {}
    for h in hits:
        doc = doc_key(h.doc_id) if doc_key else h.doc_id
        if exclude is not None and doc == exclude:
            continue
        if level == "sum":
            docs[doc] = docs.get(doc, 0.0) + h.score
        elif doc not in docs:
            docs[doc] = h.score  # hits are best-first, so the first is the best chunk
    return docs


def for_ranx(run: Run) -> Run:
    """The run as ranx takes it: every query needs at least one entry."""
    return {qid: docs or {NO_DOC: 0.0} for qid, docs in run.items()}


@dataclass
class RunResult:
    docs: Run  # qid -> {doc_id: score}, best first (may be empty)
    latencies: dict[str, float]  # qid -> seconds

    @property
    def run(self) -> Run:
        return for_ranx(self.docs)


def indexed_doc_ids(reader) -> set[str]:
    """The document ids of an index's read view (none without an index)."""
    return {d.doc_id for d in reader.documents()} if reader is not None else set()


def doc_key_for(reader, queries) -> Callable[[str], str] | None:
    """The dataset's document-id mapping for this index (see :func:`ragkit.evaluate.datasets.doc_keyer`)."""
    return doc_keyer(indexed_doc_ids(reader), {d for q in queries for d in q.relevant})


def write_trec_run(path: Path, run: Run, tag: str) -> Path:
    """A ranking as a gzipped TREC run file (``qid Q0 doc rank score tag``, best first; gunzipped, the format
    trec_eval and ranx's ``Run.from_file`` read): for post-hoc analysis (fusing or blending variants, other
    metrics) without running the pipeline again. Scores are written exactly (``repr``). Written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as fh:
        for qid, docs in run.items():
            ranked = sorted(docs.items(), key=lambda kv: -kv[1])
            fh.writelines(f"{qid} Q0 {doc} {rank} {score!r} {tag}\n" for rank, (doc, score) in enumerate(ranked, 1))
    os.replace(tmp, path)
    return path


def read_trec_run(path: Path) -> Run:
    """The run a :func:`write_trec_run` file (or any whitespace-separated TREC run, gzipped or not) holds."""
    opener = gzip.open if path.suffix == ".gz" else open
    run: Run = {}
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            qid, _, doc, _, score, *_ = line.split()
            run.setdefault(qid, {})[doc] = float(score)
    return run
