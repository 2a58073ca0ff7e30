"""The MiniLM encoder on the CPU: ragkit's torch fp32 path against faster CPU paths, side by side in one run.

Paths (each the same sentence-transformers model, same tokenizer, mean pooling, normalised):
  fp32   torch float32: what ragkit uses
  int8   torch dynamic quantization of every Linear layer to int8 (weights; activations quantized on the fly)
  bf16   weights and activations in bfloat16 (only when the CPU has avx512_bf16 or amx_bf16)
  bf16-queries   fp32 documents with bf16 queries: an existing index served with a faster query encoder
For each: documents/s encoding SciFact's corpus (as ingest does: batches of 64, one doc = one chunk), query
latency one query at a time (p50/p95), SciFact test nDCG@10 of dense retrieval (exact cosine over the vectors), and
nDCG@10 and speed against fp32. A path qualifies for adoption when nDCG@10 stays within 0.002 of fp32 and it is
faster on both documents and queries (bf16-queries: on queries; its documents are fp32's). Writes
benchmarks/results/encoder_paths.json.

    python benchmarks/encoder_paths.py                           # full SciFact (5183 docs, 300 queries)
    python benchmarks/encoder_paths.py --limit 300 --queries 40 --out encoder_paths_smoke   # a quick smoke test

ONNX Runtime is not a path here: ragkit uses it for queries only (ragkit/embedding/onnx_query.py, float32, the same
vectors as fp32 to ~1e-6); cold_start.py and batch_scaling.py measure it.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from _common import DATASETS, write_result

TOLERANCE = 0.002


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def load_corpus(root: Path, limit: int | None, wanted: set[str]) -> tuple[list[str], list[str]]:
    """(doc ids, texts) as ragkit's BEIR loader builds them (title, blank line, text); with ``limit``: the first
    ``limit`` documents plus every one a measured query judges relevant."""
    ids, texts = [], []
    with gzip.open(root / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            obj = json.loads(line)
            doc_id = str(obj["_id"])
            if limit is not None and i >= limit and doc_id not in wanted:
                continue
            title, body = str(obj.get("title") or "").strip(), str(obj.get("text") or "").strip()
            ids.append(doc_id)
            texts.append(f"{title}\n\n{body}" if title and body else (title or body))
    return ids, texts


def make_paths(flags: set[str]) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from ragkit.embedding.models import resolve_model

    base = SentenceTransformer(resolve_model("all-MiniLM-L6-v2")[0], device="cpu").eval()
    paths = {"fp32": base}
    int8 = copy.deepcopy(base)
    int8[0].model = torch.ao.quantization.quantize_dynamic(int8[0].model, {torch.nn.Linear}, dtype=torch.qint8)
    paths["int8"] = int8
    if flags & {"avx512_bf16", "amx_bf16"}:
        paths["bf16"] = copy.deepcopy(base).to(torch.bfloat16)
    return paths


def encode(model, texts: list[str], batch_size: int) -> np.ndarray:
    vecs = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)
    return np.ascontiguousarray(vecs, dtype=np.float32)


def ndcg10(qrels: dict[str, dict[str, int]], qids: list[str], qv: np.ndarray, doc_ids: list[str],
           dv: np.ndarray) -> tuple[float, dict[str, float]]:
    from ragkit.evaluate.retrieval import score

    sims = qv @ dv.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :100]
    run = {qid: {doc_ids[j]: float(sims[i, j]) for j in top[i]} for i, qid in enumerate(qids)}
    qr = {qid: qrels[qid] for qid in qids}
    per = score(qr, run, ("ndcg@10",), per_query=True)["ndcg@10"]
    return float(statistics.fmean(per.values())), per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, help="only the first N documents (plus those the queries judge relevant)")
    ap.add_argument("--queries", type=int, help="only the first N test queries")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    ap.add_argument("--out", default="encoder_paths", help="results name (benchmarks/results/NAME.json)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from ragkit.evaluate.datasets import load_beir

    if args.threads:
        torch.set_num_threads(args.threads)
    root = DATASETS / "scifact"
    ds = load_beir(root, "test")
    queries = ds.queries[: args.queries] if args.queries else ds.queries
    qrels = {q.qid: q.relevant for q in queries}
    doc_ids, texts = load_corpus(root, args.limit, {d for q in queries for d in q.relevant})
    flags = cpu_flags()
    paths = make_paths(flags)
    load = [round(os.getloadavg()[0], 2)]
    results: dict[str, dict] = {}
    per_query: dict[str, dict[str, float]] = {}
    qtexts, qids = [q.text for q in queries], [q.qid for q in queries]
    doc_vectors: dict[str, tuple[np.ndarray, float]] = {}
    for name, model in paths.items():
        encode(model, qtexts[:8], 8)  # warm-up
        with torch.inference_mode():
            t = time.perf_counter()
            dv = encode(model, texts, 64)
            doc_s = time.perf_counter() - t
            doc_vectors[name] = dv, doc_s
            lat, qv = [], []
            for text in qtexts:
                t = time.perf_counter()
                qv.append(encode(model, [text], 1)[0])
                lat.append(1000 * (time.perf_counter() - t))
        nd, per_query[name] = ndcg10(qrels, qids, np.stack(qv), doc_ids, dv)
        lat.sort()
        results[name] = {"docs_per_s": round(len(texts) / doc_s, 1), "encode_s": round(doc_s, 2),
                         "query_ms_p50": round(lat[len(lat) // 2], 2),
                         "query_ms_p95": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2),
                         "ndcg@10": round(nd, 4)}
        load.append(round(os.getloadavg()[0], 2))
        print(f"{name}: {results[name]}", flush=True)
        if name == "bf16":  # its query vectors against fp32's document vectors
            nd, per_query["bf16-queries"] = ndcg10(qrels, qids, np.stack(qv), doc_ids, doc_vectors["fp32"][0])
            fp32_docs = doc_vectors["fp32"][1]
            results["bf16-queries"] = {**results["bf16"], "docs_per_s": round(len(texts) / fp32_docs, 1),
                                       "encode_s": round(fp32_docs, 2), "ndcg@10": round(nd, 4)}
            print(f"bf16-queries: {results['bf16-queries']}", flush=True)
    ref = results["fp32"]
    for name, r in results.items():
        r["ndcg_delta"] = round(r["ndcg@10"] - ref["ndcg@10"], 4)
        r["docs_speedup"] = round(r["docs_per_s"] / ref["docs_per_s"], 2)
        r["query_speedup"] = round(ref["query_ms_p50"] / r["query_ms_p50"], 2)
        r["qualifies"] = (name != "fp32" and abs(r["ndcg@10"] - ref["ndcg@10"]) <= TOLERANCE
                          and (r["docs_speedup"] > 1 or name == "bf16-queries") and r["query_speedup"] > 1)
    path = write_result(args.out, {
        "dataset": "scifact", "split": "test", "documents": len(texts), "queries": len(queries),
        "limit": args.limit, "torch_threads": torch.get_num_threads(), "tolerance_ndcg": TOLERANCE,
        "cpu_bf16": sorted(flags & {"avx512_bf16", "amx_bf16"}), "paths": results, "load_avg_1min": load})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
