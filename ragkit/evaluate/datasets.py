"""Readers for the two dataset layouts used in ``eval_sets/`` and ``../shared/datasets``.

BEIR: ``corpus.jsonl[.gz]``, ``queries.jsonl`` (all splits), ``qrels/<split>.tsv`` (a split's queries are the
query ids that appear in its qrels). QA: ``qa.jsonl`` with question, reference_answer, reference_contexts,
doc_ids (and optional type/tags).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragkit.errors import RagkitError


@dataclass
class Query:
    qid: str
    text: str
    relevant: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    root: Path
    queries: list[Query]
    corpus: Path | None  # corpus.jsonl[.gz] or a directory of documents

    @property
    def qrels(self) -> dict[str, dict[str, int]]:
        return {q.qid: q.relevant for q in self.queries}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise RagkitError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
    return out


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for row in reader:
            if not row or row[0] == "query-id":
                continue
            qid, did, score = row[0], row[1], int(float(row[2]))
            qrels.setdefault(qid, {})[did] = score
    return qrels


def load_beir(root: str | Path, split: str = "test") -> Dataset:
    root = Path(root)
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise RagkitError(f"{root}: no qrels/{split}.tsv (not a BEIR dataset, or no such split)")
    qrels = read_qrels(qrels_path)
    texts = {str(q["_id"]): q["text"] for q in read_jsonl(root / "queries.jsonl")}
    missing = [q for q in qrels if q not in texts]
    if missing:
        raise RagkitError(f"{root}: {len(missing)} qrels query ids have no text in queries.jsonl (e.g. {missing[0]})")
    corpus = next((p for p in (root / "corpus.jsonl.gz", root / "corpus.jsonl", root / "docs") if p.exists()), None)
    queries = [Query(qid, texts[qid], qrels[qid]) for qid in sorted(qrels, key=_natural)]
    return Dataset(root, queries, corpus)


def load_qa(root: str | Path) -> Dataset:
    root = Path(root)
    rows = read_jsonl(root / "qa.jsonl")
    queries = [Query(str(r["id"]), r["question"], {str(d): 1 for d in r.get("doc_ids", [])},
                     {k: v for k, v in r.items() if k not in ("id", "question", "doc_ids")}) for r in rows]
    corpus = next((p for p in (root / "corpus.jsonl.gz", root / "corpus.jsonl", root / "docs") if p.exists()), None)
    return Dataset(root, queries, corpus)


def _natural(qid: str) -> tuple:
    return (0, int(qid), "") if qid.isdigit() else (1, 0, qid)


def doc_keyer(indexed: set[str], wanted: set[str]) -> Callable[[str], str] | None:
    """How to turn an indexed document id into the id a dataset's judgments use, or None when they already agree.
    QA layouts may name documents by file stem ("1545") while the index uses file names ("1545.txt")."""
    stem_of = {d: Path(d).stem for d in indexed}
    if wanted and not (wanted & indexed) and (wanted & set(stem_of.values())):
        return lambda d: stem_of.get(d, d)
    return None
