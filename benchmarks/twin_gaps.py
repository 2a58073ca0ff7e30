"""Where ragkit's BM25, dense and hybrid rows differ from their LlamaIndex and Haystack twins, and why.

The suite (`run.py --suite full`) puts ragkit beside its peers; on some sets ragkit's BM25 scores below
LlamaIndex's, and its dense rows below the peers' by about 0.001. Two differences in set-up are the candidates:

- BM25: ragkit's defaults are k1 = 0.9, b = 0.4 and `\\w+` tokens; LlamaIndex's BM25Retriever uses bm25s' defaults
  (k1 = 1.5, b = 0.75) and bm25s' tokenizer (tokens of two or more word characters), with the same English stop
  words and Snowball stemmer.
- Dense: ragkit embeds in bf16 on a CPU that computes it natively (`[embedder] precision = auto`); the peers in fp32.

This script scores, side by side in one run and with the same metric code, ragkit's own plugins at each of these
settings, and LlamaIndex's BM25Retriever rebuilt from its parts (no LlamaIndex import: bm25s with its tokenizer,
stop words and stemmer, default parameters). The suite's recorded numbers (`results/full.json`) are printed beside
as a check that the rebuilt rows reproduce them.

    python benchmarks/twin_gaps.py [--datasets scifact nfcorpus hotpotqa_dev500] [--no-dense]

Writes benchmarks/results/twin_gaps.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import protocol  # noqa: E402
from _common import DATASETS, RESULTS, machine, versus, write_result  # noqa: E402

K = 100
BM25_SETTINGS = {  # name: (k1, b); ragkit's analyzer (\w+ tokens, English stop words, Snowball stemmer)
    "ragkit bm25 (k1 0.9, b 0.4: ragkit's default)": (0.9, 0.4),
    "ragkit bm25 (k1 1.2, b 0.75)": (1.2, 0.75),
    "ragkit bm25 (k1 1.5, b 0.75: bm25s' default)": (1.5, 0.75),
}
LI_BM25 = "LlamaIndex BM25Retriever, rebuilt (bm25s tokenizer, k1 1.5, b 0.75)"
LI_HYBRID = "LlamaIndex fusion, rebuilt (RRF of the rebuilt BM25Retriever and dense fp32)"
DEFAULT_BM25, BM25S_DEFAULTS = list(BM25_SETTINGS)[0], list(BM25_SETTINGS)[2]


def fuse(sparse: list, dense: list) -> list:
    """RRF (k = 60) of two branches' top-100 per query, as ragkit's hybrid and LlamaIndex's QueryFusionRetriever
    (mode reciprocal_rerank) both compute it."""
    from ragkit.retrieve.fusion import rrf

    return [rrf({"sparse": s, "dense": d}, K) for s, d in zip(sparse, dense)]


def corpus(name: str):
    from ragkit.evaluate.datasets import load_beir

    root = DATASETS / name
    path = next(p for p in (root / "corpus.jsonl.gz", root / "corpus.jsonl") if p.is_file())
    docs = protocol.load_corpus(path)
    test = load_beir(root, "test")
    queries = [(q.qid, q.text) for q in test.queries]  # as run.py does
    return docs, queries, test.qrels


def ragkit_bm25(texts, queries, k1, b):
    from ragkit.index.bm25 import Bm25sIndex
    from ragkit.plugins import QueryBundle

    index = Bm25sIndex(k1=k1, b=b)
    index.build(texts)
    return [index.search(QueryBundle(q), K, None) for _, q in queries]


def llamaindex_bm25(texts, queries):
    """What BM25Retriever.from_defaults builds: bm25s.tokenize(stopwords="en", stemmer=english) over the node texts,
    then bm25s.BM25() with its defaults; queries tokenized the same way."""
    import bm25s
    import Stemmer

    stem = Stemmer.Stemmer("english")
    index = bm25s.BM25()
    index.index(bm25s.tokenize(texts, stopwords="en", stemmer=stem, show_progress=False), show_progress=False)
    out = []
    for _, q in queries:
        toks = bm25s.tokenize([q], stopwords="en", stemmer=stem, show_progress=False, return_ids=False)[0]
        scores = index.get_scores(toks) if toks else np.zeros(len(texts), np.float32)
        order = np.argsort(-scores, kind="stable")[:K]
        out.append((order, scores[order]))
    return out


def dense_runs(texts, queries, precision: str):
    from ragkit.embedding.cache import embed_with_cache
    from ragkit.embedding.sentence_transformers import SentenceTransformerEmbedder
    from ragkit.index.topk import top_k

    emb = SentenceTransformerEmbedder(precision=precision)  # all-MiniLM-L6-v2, the offline copy when installed
    t = time.perf_counter()
    vecs, _ = embed_with_cache(texts, emb.model_id, emb.embed, None, emb.dim)  # ingest's order and grouping
    seconds = time.perf_counter() - t
    qv = emb.embed([q for _, q in queries])
    runs = [top_k(vecs @ v, K, None) for v in qv]
    return runs, seconds


def to_run(ids, queries, rankings):
    return {qid: {ids[int(r)]: float(s) for r, s in zip(rows, scores)}
            for (qid, _), (rows, scores) in zip(queries, rankings)}


def score(qrels, run):
    from ragkit.evaluate.retrieval import evaluate_run

    mean, per_query = evaluate_run(qrels, run, ("ndcg@10",))
    return round(mean["ndcg@10"], 4), [per_query["ndcg@10"].get(q, 0.0) for q in sorted(qrels)]


def recorded(name: str) -> dict:
    path = RESULTS / "full.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    out = {}
    for ds_name, ds in data.get("datasets", {}).items():
        if ds_name != name:
            continue
        for system, body in ds.get("systems", {}).items():
            for pipe, s in body.get("scored", {}).items():
                out[f"{system} {pipe}"] = s["metrics"]["ndcg@10"]
    return out


def one(name: str, with_dense: bool) -> dict:
    docs, queries, qrels = corpus(name)
    ids, texts = [d for d, _ in docs], [t for _, t in docs]
    runs: dict[str, list] = {}
    for label, (k1, b) in BM25_SETTINGS.items():
        runs[label] = ragkit_bm25(texts, queries, k1, b)
    runs[LI_BM25] = llamaindex_bm25(texts, queries)
    refs = {label: LI_BM25 for label in runs}
    encode_s = {}
    if with_dense:
        for precision in ("fp32", "bf16"):
            runs[f"ragkit dense ({precision})"], encode_s[precision] = dense_runs(texts, queries, precision)
            refs[f"ragkit dense ({precision})"] = "ragkit dense (fp32)"
            print(f"{name}: dense {precision} embedded in {encode_s[precision]:.0f} s", flush=True)
        runs[LI_HYBRID] = fuse(runs[LI_BM25], runs["ragkit dense (fp32)"])
        refs[LI_HYBRID] = LI_HYBRID
        for precision in ("fp32", "bf16"):
            for label in (DEFAULT_BM25, BM25S_DEFAULTS):
                hybrid = f"ragkit hybrid-rrf: {label.removeprefix('ragkit ')} + dense {precision}"
                runs[hybrid] = fuse(runs[label], runs[f"ragkit dense ({precision})"])
                refs[hybrid] = LI_HYBRID
    scores = {label: score(qrels, to_run(ids, queries, r)) for label, r in runs.items()}
    rows = {label: {"ndcg@10": s, "against": refs[label], "versus": versus(pq, scores[refs[label]][1])}
            for label, (s, pq) in scores.items()}
    out = {"documents": len(docs), "queries": len(queries), "rows": rows, "encode_s": encode_s,
           "recorded_in_full_json": recorded(name)}
    for label, r in rows.items():
        print(f"{name:16s} {label:75s} {r['ndcg@10']:.4f}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["hotpotqa_dev500", "nfcorpus", "scifact"])
    ap.add_argument("--no-dense", action="store_true", help="BM25 rows only (no embedding)")
    args = ap.parse_args()
    started = time.time()
    data = {"machine": machine(), "k": K, "datasets": {}}
    for name in args.datasets:
        data["datasets"][name] = one(name, not args.no_dense)
    data["seconds"] = round(time.time() - started, 1)
    print(write_result("twin_gaps", data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
