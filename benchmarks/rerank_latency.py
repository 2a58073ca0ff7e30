"""Rerankers and query transforms on the bundled Beacon corpus + eval set: latency and quality.

Parts (``--parts``, default all), each merged into benchmarks/results/rerank_latency.json:

- ``ce``: the ``cross-encoder`` plugin at depth 10/20/50 over the hybrid top 50: p50/p95 per query, nDCG@10, and
  tokens/s of the plugin against the raw model (``CrossEncoder.predict`` on the same pairs, interleaved query by
  query in the same run, so CPU contention hits both alike). The model is MiniLM-L6 turned into a cross-encoder by
  one pass over SciFact *train* pairs (no pretrained cross-encoder is reachable here): full-size, so its latency is
  real; weak and out of domain, so its quality is not what a proper reranker would give (issue 9 trains those).
- ``llm``: the ``llm`` reranker (qwen0.5b and, with ``--llm-models``, others) at depth 5/10 on the first
  ``--llm-queries`` questions: p50/p95, pairs/s, nDCG@10 against hybrid on the same questions.
- ``prf``: BM25 and hybrid with and without the ``prf`` transform, all questions.
- ``hyde`` / ``mq``: the ``hyde`` and ``multi-query`` transforms with qwen0.5b on the first ``--llm-queries``
  questions, dense and hybrid, against the same questions without them.

The CPU is shared by other jobs while these numbers are taken: absolute latencies are pessimistic; ratios taken in
the same run (plugin vs raw, with vs without) are the meaningful part.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import CACHE, DATASETS, RESULTS, ROOT, write_result

from ragkit import Engine
from ragkit.evaluate.datasets import load_beir
from ragkit.evaluate.retrieval import score
from ragkit.evaluate.stats import percentile
from ragkit.plugins import registry

METRICS = ("ndcg@10", "recall@10", "mrr@10")
NOTE = ("measured on 2 CPU cores shared with ~5 other jobs (load average 4-8): absolute latencies are pessimistic; "
        "ratios measured in the same run are the meaningful numbers")


def doc_run(hits, k: int = 10) -> dict[str, float]:
    """Document-level run from chunk hits (a document's best chunk), scored by rank so ranx keeps the order."""
    out: dict[str, float] = {}
    for h in hits:
        if h.doc_id not in out:
            out[h.doc_id] = 0.0
        if len(out) == k * 3:
            break
    return {d: 1.0 / (i + 1) for i, d in enumerate(out)}


def quality(qrels, runs) -> dict[str, float]:
    sub = {q: qrels[q] for q in runs}
    return {m: round(v, 4) for m, v in score(sub, runs, METRICS).items()}


def candidates(eng: Engine, queries, depth: int = 50, mode: str = "hybrid"):
    return {q.qid: eng.retrieve(q.text, k=depth, mode=mode).hits for q in queries}


# --- cross-encoder ---------------------------------------------------------------------------------------------

def scifact_train_pairs(n_queries: int = 80, seed: int = 0) -> list[tuple[str, str, float]]:
    import gzip
    import random

    root = DATASETS / "scifact"
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in open(root / "queries.jsonl")}
    corpus = {}
    with gzip.open(root / "corpus.jsonl.gz", "rt") as fh:
        for line in fh:
            d = json.loads(line)
            corpus[d["_id"]] = (d.get("title", "") + ". " + d["text"]).strip()
    gold: dict[str, list[str]] = {}
    for line in open(root / "qrels" / "train.tsv").read().splitlines()[1:]:
        qid, did, s = line.split("\t")
        if int(s) > 0 and qid in queries and did in corpus:
            gold.setdefault(qid, []).append(did)
    rng = random.Random(seed)
    ids = list(corpus)
    out = []
    for qid in sorted(gold)[:n_queries]:
        out.append((queries[qid], corpus[gold[qid][0]], 1.0))
        out.append((queries[qid], corpus[rng.choice(ids)], 0.0))
    return out


def bench_model_dir() -> Path:
    from _tiny_ce import train_cross_encoder

    path = CACHE / "rerank-bench" / "minilm-ce-scifact-train"
    if not (path / "config.json").exists():
        t = time.perf_counter()
        train_cross_encoder(scifact_train_pairs(), path, layers=6, max_length=256, batch_size=16)
        print(f"trained the benchmark cross-encoder in {time.perf_counter() - t:.0f} s -> {path}")
    return path


def part_ce(eng, beir, queries, cands) -> dict:
    model_dir = bench_model_dir()
    rr = registry.create("reranker", {"name": "cross-encoder", "model": str(model_dir), "depth": 50,
                                      "batch_size": 16})
    rr.warm_up()
    model = rr.model
    tok = model.tokenizer
    max_len = rr.max_length

    def n_tokens(pairs):
        enc = tok([p[0] for p in pairs], [p[1] for p in pairs], truncation=True, max_length=max_len)
        return [len(x) for x in enc["input_ids"]]

    out = {"queries": len(queries), "model": "MiniLM-L6 cross-encoder, 1 epoch on 160 SciFact train pairs (weak; for latency)",
           "max_length": max_len, "batch_size": 16, "note": NOTE, "depths": {}}
    qrels = beir.qrels
    base = {q.qid: doc_run(cands[q.qid]) for q in queries}
    out["hybrid_no_rerank"] = quality(qrels, base)
    model.predict([("warm", "up")])
    for depth in (10, 20, 50):
        rr.params.depth = depth
        lat, raw_lat, tokens, pad_real, pad_padded = [], [], 0, 0, 0
        runs = {}
        for q in queries:
            hits = copy.deepcopy(cands[q.qid])
            raw_pairs = [(q.text, h.chunk.text) for h in hits[:depth]]
            t = time.perf_counter()
            model.predict(raw_pairs, batch_size=16, show_progress_bar=False)  # raw model, same pairs
            raw_lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            ranked = rr.process(q.text, hits)
            lat.append(time.perf_counter() - t)
            runs[q.qid] = doc_run(ranked)
            lens = n_tokens(raw_pairs)
            tokens += sum(lens)
            srt = sorted(lens, reverse=True)  # predict batches pairs in order of length
            for i in range(0, len(srt), 16):
                b = srt[i:i + 16]
                pad_real += sum(b)
                pad_padded += max(b) * len(b)
        out["depths"][str(depth)] = {
            "p50_ms": round(1000 * percentile(lat, 0.5), 1), "p95_ms": round(1000 * percentile(lat, 0.95), 1),
            "raw_p50_ms": round(1000 * percentile(raw_lat, 0.5), 1),
            "plugin_tokens_per_s": round(tokens / sum(lat), 1), "raw_tokens_per_s": round(tokens / sum(raw_lat), 1),
            "plugin_vs_raw": round(sum(raw_lat) / sum(lat), 3),
            "padding_efficiency": round(pad_real / pad_padded, 3),
            "mean_tokens_per_pair": round(tokens / (depth * len(queries)), 1),
            **quality(qrels, runs)}
        print(f"cross-encoder depth {depth}: {out['depths'][str(depth)]}")
    return out


# --- llm reranker ----------------------------------------------------------------------------------------------

def part_llm(eng, beir, queries, cands, models, depths=(5, 10)) -> dict:
    out = {"queries": len(queries), "note": NOTE, "hybrid_no_rerank": quality(beir.qrels, {
        q.qid: doc_run(cands[q.qid]) for q in queries}), "models": {}}
    for model in models:
        rr = registry.create("reranker", {"name": "llm", "model": model, "depth": 10})
        rr.warm_up()
        res = {}
        for depth in depths:
            rr.params.depth = depth
            lat, runs, unparsed = [], {}, 0
            for q in queries:
                t = time.perf_counter()
                ranked = rr.process(q.text, copy.deepcopy(cands[q.qid]))
                lat.append(time.perf_counter() - t)
                unparsed += sum(1 for h in ranked if "llm_unparsed" in h.scores)
                runs[q.qid] = doc_run(ranked)
            res[str(depth)] = {"p50_ms": round(1000 * percentile(lat, 0.5)),
                               "p95_ms": round(1000 * percentile(lat, 0.95)),
                               "pairs_per_s": round(depth * len(queries) / sum(lat), 2), "unparsed": unparsed,
                               **quality(beir.qrels, runs)}
            print(f"llm {model} depth {depth}: {res[str(depth)]}")
        out["models"][model] = res
    return out


# --- transforms ------------------------------------------------------------------------------------------------

def with_transform(eng: Engine, beir, queries, transforms, modes) -> dict:
    res = {}
    with Engine.open(eng.store.path, {"transforms": transforms}) as t_eng:
        for mode in modes:
            lat, runs = [], {}
            for q in queries:
                t = time.perf_counter()
                runs[q.qid] = doc_run(t_eng.retrieve(q.text, k=30, mode=mode).hits)
                lat.append(time.perf_counter() - t)
            res[mode] = {**quality(beir.qrels, runs), "p50_ms": round(1000 * percentile(lat, 0.5), 1)}
    return res


def part_prf(eng, beir, queries) -> dict:
    out = {"queries": len(queries), "baseline": with_transform(eng, beir, queries, [], ("bm25", "hybrid"))}
    for fb_docs, fb_terms, lam in ((5, 10, 0.5), (10, 10, 0.5)):
        key = f"prf fb_docs={fb_docs} fb_terms={fb_terms} original_weight={lam}"
        out[key] = with_transform(eng, beir, queries, [{"name": "prf", "fb_docs": fb_docs, "fb_terms": fb_terms,
                                                        "original_weight": lam}], ("bm25", "hybrid"))
        print(key, out[key])
    print("baseline", out["baseline"])
    return out


def part_llm_transform(eng, beir, queries, name, spec) -> dict:
    out = {"queries": len(queries), "llm": spec.get("llm"), "note": NOTE,
           "baseline": with_transform(eng, beir, queries, [], ("dense", "hybrid"))}
    out[name] = with_transform(eng, beir, queries, [spec], ("dense", "hybrid"))
    print(name, out)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="ce,llm,prf,hyde,mq")
    ap.add_argument("--llm-queries", type=int, default=20)
    ap.add_argument("--llm-models", default="qwen0.5b")
    ap.add_argument("--ce-queries", type=int, default=0, help="cross-encoder on the first N questions (0 = all)")
    ap.add_argument("--index", default="", help="reuse an index of corpora/beacon instead of building one")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    data: dict = {}
    beir = load_beir(ROOT / "eval_sets" / "beacon", "test")
    queries = beir.queries
    with tempfile.TemporaryDirectory() as tmp:
        idx = Path(args.index) if args.index else Path(tmp) / "idx"
        eng = Engine.open(idx)
        if not args.index:
            eng.ingest([ROOT / "corpora" / "beacon"])
        eng.warm_up()
        cands = candidates(eng, queries) if parts & {"ce", "llm"} else {}
        few = queries[:args.llm_queries]
        if "ce" in parts:
            data["cross_encoder"] = part_ce(eng, beir, queries[:args.ce_queries or None], cands)
        if "llm" in parts:
            data["llm"] = part_llm(eng, beir, few, cands, args.llm_models.split(","))
        if "prf" in parts:
            data["prf"] = part_prf(eng, beir, queries)
        if "hyde" in parts:
            data["hyde"] = part_llm_transform(eng, beir, few, "hyde", {"name": "hyde", "llm": "local:qwen0.5b"})
        if "mq" in parts:
            data["multi_query"] = part_llm_transform(eng, beir, few, "multi-query",
                                                     {"name": "multi-query", "llm": "local:qwen0.5b", "n": 3})
        eng.close()
    data["dataset"] = "eval_sets/beacon (68 questions, document-level qrels) over corpora/beacon"
    path = RESULTS / "rerank_latency.json"  # parts run separately: merge into what earlier runs wrote
    merged = json.loads(path.read_text()) if path.exists() else {}
    for key in ("benchmark", "date", "machine"):
        merged.pop(key, None)
    merged.update(data)
    print(f"wrote {write_result('rerank_latency', merged)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
