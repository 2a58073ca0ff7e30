"""Training examples for the reranker and the embedder, and where they come from.

One example is one question with the passages that answer it (positives) and passages that look relevant but do
not (hard negatives, mined from the index's first-stage ranking). Stored as JSON lines, one example per line::

    {"qid": "s-17", "query": "...", "source": "synthetic",
     "positives": [{"id": "doc#0", "doc_id": "doc", "text": "..."}],
     "negatives": [{"id": "other#2", "doc_id": "other", "text": "...", "rank": 3}]}

Texts are stored, so training never needs the index again. Sources: ``ragkit finetune queries`` (synthetic),
a BEIR directory's qrels split (``--train DIR --split train``), or the QA layout (``qa.jsonl``).
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragkit.errors import RagkitError


@dataclass
class Passage:
    id: str
    text: str
    doc_id: str = ""
    rank: int | None = None  # first-stage rank when it was retrieved (1-based)


@dataclass
class Example:
    qid: str
    query: str
    positives: list[Passage]
    negatives: list[Passage] = field(default_factory=list)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Example":
        return cls(qid=str(d["qid"]), query=str(d["query"]),
                   positives=[Passage(**p) for p in d.get("positives", [])],
                   negatives=[Passage(**p) for p in d.get("negatives", [])], source=str(d.get("source", "")))


def write_examples(path: Path, examples: Iterable[Example], *, append: bool = False) -> int:
    n = 0
    with open(path, "a" if append else "w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def read_examples(path: Path) -> list[Example]:
    """Examples from a JSONL file; a malformed line is an error naming the line."""
    if not path.is_file():
        raise RagkitError(f"{path}: training file not found")
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                ex = Example.from_dict(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise RagkitError(f"{path}:{lineno}: not a training example ({type(exc).__name__}: {exc})") from None
            if ex.positives:
                out.append(ex)
    if not out:
        raise RagkitError(f"{path}: no training examples with a positive passage")
    return out


# --- labelled datasets ------------------------------------------------------------------------------------------

def _beir_docs(corpus: Path, wanted: set[str]) -> dict[str, str]:
    """Text (``title\\n\\nbody``, as the BEIR loader indexes it) of the wanted document ids."""
    opener = gzip.open if corpus.name.endswith(".gz") else open
    out: dict[str, str] = {}
    with opener(corpus, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            obj = json.loads(line)
            did = str(obj.get("_id", obj.get("id", "")))
            if did in wanted:
                title, body = str(obj.get("title") or "").strip(), str(obj.get("text") or "").strip()
                out[did] = f"{title}\n\n{body}" if title and body else (title or body)
    return out


def labelled_examples(root: Path, split: str = "train") -> list[Example]:
    """Examples (positives only) from a BEIR directory's qrels split or a QA-layout ``qa.jsonl``."""
    from ragkit.evaluate.datasets import load_beir, load_qa

    root = Path(root)
    if (root / "qrels" / f"{split}.tsv").is_file():
        ds = load_beir(root, split)
        if ds.corpus is None or not ds.corpus.is_file():
            raise RagkitError(f"{root}: no corpus.jsonl[.gz] to read the positive documents from")
        docs = _beir_docs(ds.corpus, {d for q in ds.queries for d, s in q.relevant.items() if s > 0})
        out = []
        for q in ds.queries:
            pos = [Passage(id=d, doc_id=d, text=docs[d]) for d, s in q.relevant.items() if s > 0 and d in docs]
            if pos:
                out.append(Example(q.qid, q.text, pos, source=f"{root.name}:{split}"))
        return out
    if (root / "qa.jsonl").is_file():
        ds = load_qa(root)
        out = []
        for q in ds.queries:
            ctx = [c for c in q.extra.get("reference_contexts") or [] if str(c).strip()]
            ids = list(q.relevant) or [q.qid]
            pos = [Passage(id=f"{ids[min(i, len(ids) - 1)]}#ctx{i}", doc_id=ids[min(i, len(ids) - 1)], text=c)
                   for i, c in enumerate(ctx)]
            if pos:
                out.append(Example(q.qid, q.text, pos, source=f"{root.name}:qa"))
        return out
    raise RagkitError(f"{root}: not training data (expected qrels/{split}.tsv with queries.jsonl, or qa.jsonl)")


# --- hard negatives ----------------------------------------------------------------------------------------------

def mine_negatives(engine: Any, examples: list[Example], *, n: int = 7, depth: int = 30, mode: str = "hybrid",
                   seed: int = 0, progress: Any = None) -> list[Example]:
    """Fill each example's negatives with ``n`` passages drawn from the first-stage top ``depth`` of its query
    that do not belong to a positive document; a positive given by document id only is replaced by that
    document's best-ranked chunk (what a reranker over this index will actually see)."""
    rng = random.Random(seed)
    for i, ex in enumerate(examples):
        hits = engine.retrieve(ex.query, k=depth, mode=mode).hits
        pos_docs = {p.doc_id or p.id for p in ex.positives}
        best: dict[str, Any] = {}
        for rank, h in enumerate(hits, 1):
            if h.doc_id in pos_docs:
                best.setdefault(h.doc_id, (rank, h))
        for p in ex.positives:
            if (p.doc_id or p.id) in best and p.rank is None:
                rank, h = best[p.doc_id or p.id]
                p.rank = rank
        pool = [Passage(id=h.chunk_id, doc_id=h.doc_id, text=h.chunk.text, rank=r)
                for r, h in enumerate(hits, 1) if h.doc_id not in pos_docs]
        ex.negatives = sorted(rng.sample(pool, min(n, len(pool))), key=lambda p: p.rank or 0)
        if progress:
            progress("negatives", i + 1, len(examples))
    return examples


def random_negatives(examples: list[Example], *, n: int = 7, seed: int = 0) -> list[Example]:
    """Negatives drawn from other examples' positives (when there is no index to mine hard ones from)."""
    rng = random.Random(seed)
    pool = [(ex.qid, p) for ex in examples for p in ex.positives]
    for ex in examples:
        own = {p.doc_id or p.id for p in ex.positives}
        cands = [p for qid, p in rng.sample(pool, min(len(pool), 4 * n + 8)) if qid != ex.qid
                 and (p.doc_id or p.id) not in own]
        ex.negatives = [Passage(id=p.id, doc_id=p.doc_id, text=p.text) for p in cands[:n]]
    return examples


def split_heldout(examples: list[Example], fraction: float, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, held-out): a seeded share of the examples kept aside for the before/after evaluation."""
    if not 0 <= fraction < 1:
        raise RagkitError(f"held-out fraction {fraction}: expected 0 <= f < 1")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_held = int(round(len(examples) * fraction))
    held = set(order[:n_held])
    return ([ex for i, ex in enumerate(examples) if i not in held], [ex for i, ex in enumerate(examples) if i in held])


def iter_pairs(examples: list[Example], n_negatives: int) -> Iterator[tuple[str, Passage, list[Passage]]]:
    """(query, positive, negatives) once per positive passage."""
    for ex in examples:
        for p in ex.positives:
            yield ex.query, p, ex.negatives[:n_negatives]


# --- one call for the CLI and benchmarks -------------------------------------------------------------------------

def first_stage_engine(index: Path, config: Any = None, overrides: list[str] | None = None) -> Any:
    """An Engine on ``index`` that retrieves without transforms, rerankers or filters (mining must see the
    first-stage ranking the reranker will be asked to improve)."""
    from ragkit.config import load_config
    from ragkit.engine import Engine

    cfg = load_config(config, overrides)
    cfg = cfg.model_copy(update={"transforms": [], "rerankers": [], "filters": []})
    engine = Engine(index, cfg)
    if engine.store.version() is None:
        raise RagkitError(f"{engine.store.location}: no index here (run ragkit ingest first)")
    return engine


def training_set(sources: list[Path], *, split: str = "train", index: Path | None = None, config: Any = None,
                 overrides: list[str] | None = None, cache_dir: Path | None = None, negatives: int = 7,
                 depth: int = 30, mode: str = "hybrid", seed: int = 0,
                 progress: Any = None) -> tuple[list[Example], list[str]]:
    """Examples from JSONL files and/or dataset directories, with hard negatives where they are missing.

    Negatives are mined from ``index`` when given; else a dataset directory's own corpus is indexed (once,
    cached like ``ragkit eval`` does) and mined; else they are drawn at random from other examples. Returns the
    examples and one line per source saying what was done."""
    from ragkit.evaluate.runner import dataset_engine, load_dataset

    examples: list[Example] = []
    notes: list[str] = []
    shared = first_stage_engine(index, config, overrides) if index is not None else None
    try:
        for src in sources:
            src = Path(src)
            if src.is_file():
                exs = read_examples(src)
                engine = shared
            elif src.is_dir():
                exs = labelled_examples(src, split)
                engine = shared
                if engine is None:
                    ds = load_dataset(src, split)  # BEIR with this split, else the QA layout
                    if ds.corpus is not None:
                        built, _ = dataset_engine(ds, config, overrides, cache_dir, progress=progress)
                        built.close()
                        engine = first_stage_engine(built.store.location, config, overrides)
            else:
                raise RagkitError(f"{src}: training data not found (a JSONL file or a dataset directory)")
            missing = [ex for ex in exs if not ex.negatives]
            if missing and engine is not None:
                mine_negatives(engine, missing, n=negatives, depth=depth, mode=mode, seed=seed, progress=progress)
                how = f"hard negatives mined from {engine.store.location} ({mode} top {depth})"
            elif missing:
                random_negatives(missing, n=negatives, seed=seed)
                how = "random negatives from other examples (no index to mine)"
            else:
                how = "negatives as given"
            if engine is not None and engine is not shared:
                engine.close()
            notes.append(f"{src}: {len(exs)} examples; {how}")
            examples += exs
    finally:
        if shared is not None:
            shared.close()
    return examples, notes
