"""The contract between benchmarks/run.py and each system it measures (ragkit and every peer), stdlib only so that
it imports in the peers' virtual environment as well as in ragkit's.

A system runs as its own process: ``python SCRIPT JOB.json OUT.json``. The job names the corpus file (BEIR
``corpus.jsonl[.gz]``), the queries, ``k``, the embedding model folder and the optional cross-encoder. The system
builds its indexes, answers every query one at a time (timed) and then all of them as a batch (timed), and writes
ranked document ids per query; run.py scores every system with the same metric code.

Timing rules, the same for every system: the clock runs from the corpus file to queryable indexes (the model load
is outside it: ``model_load_s``); the first ``warmup`` queries run once untimed before the timed pass; a query's
time covers its embedding, every search, fusion and reranking, up to a ranked list of ``k`` document ids.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path


def read_job(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_corpus(path: str | Path, limit: int | None = None) -> list[tuple[str, str]]:
    """(doc id, text) per BEIR corpus line, the text as ragkit's BEIR loader makes it: title, blank line, body."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            obj = json.loads(line)
            title, body = str(obj.get("title") or "").strip(), str(obj.get("text") or "").strip()
            if title or body:
                out.append((str(obj["_id"]), f"{title}\n\n{body}" if title and body else (title or body)))
            if limit and len(out) >= limit:
                break
    return out


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def one_at_a_time(search: Callable[[str], list[str]], queries: list[list[str]], warmup: int) -> dict:
    """Every query alone: ``{"ranked": {qid: [doc ids]}, "latency_s": [seconds per query]}``."""
    for _, text in queries[:warmup]:
        search(text)
    ranked, latency = {}, []
    for qid, text in queries:
        t = time.perf_counter()
        ranked[qid] = [str(d) for d in search(text)]
        latency.append(time.perf_counter() - t)
    return {"ranked": ranked, "latency_s": latency}


def batch(search_all: Callable[[list[str]], list[list[str]]], queries: list[list[str]], how: str) -> dict:
    """All queries handed over at once: wall seconds and queries/s; ``how`` says what the system batches."""
    t = time.perf_counter()
    out = search_all([text for _, text in queries])
    seconds = time.perf_counter() - t
    if len(out) != len(queries):
        raise RuntimeError(f"batch returned {len(out)} rankings for {len(queries)} queries")
    return {"seconds": seconds, "qps": len(queries) / seconds if seconds > 0 else None, "how": how}


def sequential(search: Callable[[str], list[str]]) -> Callable[[list[str]], list[list[str]]]:
    """The batch of a system with no batch query path: the queries one after another."""
    return lambda texts: [search(t) for t in texts]


def rrf(rankings: list[list[str]], k: int, c: float = 60.0) -> list[str]:
    """Reciprocal rank fusion of ranked id lists (score = sum of 1 / (c + rank), rank from 1), best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for r, d in enumerate(ranking, 1):
            scores[d] = scores.get(d, 0.0) + 1.0 / (c + r)
    return sorted(scores, key=lambda d: -scores[d])[:k]


def versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            pass
    return out


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def write_output(path: str | Path, system: str, pipelines: dict, builds: dict, extra: dict | None = None,
                 packages: tuple[str, ...] = ()) -> None:
    data = {"system": system, "pipelines": pipelines, "builds": builds, "peak_rss_mb": peak_rss_mb(),
            "versions": versions(*packages), "pid": os.getpid(), **(extra or {})}
    Path(path).write_text(json.dumps(data) + "\n", encoding="utf-8")


def main(run: Callable[[dict, str], None]) -> int:
    """``SCRIPT JOB.json OUT.json``: run the system on the job and write its output."""
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} JOB.json OUT.json", file=sys.stderr)
        return 2
    run(read_job(sys.argv[1]), sys.argv[2])
    return 0
