"""ragkit as one system of the benchmark suite (``python benchmarks/suite_ragkit.py JOB.json OUT.json``, started by
benchmarks/run.py in ragkit's own environment; the contract is benchmarks/peers/protocol.py).

Builds one index of the corpus (one document = one chunk) in the job's ``index_dir``: embeddings come from the
job's ``embedding_cache`` file when it already holds them (the suite's default: unchanged text is never embedded
twice) or from a fresh one (``--cold-build``: the build embeds every document, as the peers' builds do). Then each
pipeline of benchmarks/suite.py opens that index with its own query settings.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import protocol  # noqa: E402
from _common import BEIR_OVERRIDES  # noqa: E402
from suite import PIPELINES  # noqa: E402

PACKAGES = ("ragkit", "torch", "sentence-transformers", "transformers", "faiss-cpu", "numpy")


def run(job: dict, out: str) -> None:
    from ragkit.embedding.query_cache import QueryVectorCache
    from ragkit.engine import Engine
    from ragkit.evaluate.runs import doc_run

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    index = Path(job["index_dir"]) / "ragkit-index"
    cache = job.get("embedding_cache") or str(Path(job["index_dir"]) / "ragkit-embeddings.sqlite")
    overrides = list(BEIR_OVERRIDES)  # ragkit's default embedder: the same MiniLM folder as job["model"]
    t = time.perf_counter()
    builder = Engine.open(index, overrides=overrides, embedding_cache=cache)
    builder.embedder.warm_up()
    model_load = time.perf_counter() - t
    with protocol.Timer() as build:
        report = builder.ingest([job["corpus"]])
    builder.close()
    builds = {"index": {"seconds": build.seconds, "documents": report.documents_total, "chunks": report.chunks_total,
                        "embedded": report.chunks_embedded,
                        "from_embedding_cache": report.chunks_total - report.chunks_embedded}}

    k, queries = job["k"], job["queries"]
    pipelines = {}
    for name in job["pipelines"]:
        p = PIPELINES[name]
        if p.rerank and not job.get("cross_encoder"):
            continue
        eng = Engine.open(index, p.config(job.get("cross_encoder")), overrides=overrides,
                          embedding_cache=cache).warm_up(generator=False)

        def search(text: str, eng=eng) -> list[str]:
            return list(doc_run(eng.retrieve(text, k=k).hits))

        result = protocol.one_at_a_time(search, queries, job["warmup"])
        eng.close()
        # the batch: every query vector in one encode call, then each query's search
        qc = QueryVectorCache()
        eng = Engine.open(index, p.config(job.get("cross_encoder")), overrides=overrides,
                          embedding_cache=cache, query_cache=qc).warm_up(generator=False)

        def search_all(texts: list[str], eng=eng, qc=qc, mode=p.mode) -> list[list[str]]:
            if mode != "bm25":
                vecs = eng.embedder.embed(texts)
                for text, vec in zip(texts, vecs):
                    qc.get(eng.embedder.model_id, text, lambda _, v=vec: v)
            return [list(doc_run(eng.retrieve(text, k=k).hits)) for text in texts]

        how = "queries one after another" if p.mode == "bm25" else \
            "query vectors in one encode call, then each query's search"
        result["batch"] = protocol.batch(search_all, queries, how)
        eng.close()
        pipelines[name] = result
        print(f"ragkit {name}: done", file=sys.stderr, flush=True)
    protocol.write_output(out, "ragkit", pipelines, builds, {"model_load_s": model_load}, PACKAGES)


if __name__ == "__main__":
    sys.exit(protocol.main(run))
