"""What micro-batching can save: the CPU one query embedding costs, by batch size, for each query path, beside the
CPU the rest of a hybrid retrieval costs, in one run.

``ragkit serve`` with ``serve.batching`` on embeds concurrent requests' queries in one model call, each call on one
thread. Batching pays only if a query costs less CPU inside a batch than alone. This script measures that cost for
the query paths ragkit has (the same embedder class the server uses, the same SciFact test questions):

  onnx        ONNX Runtime, float32 (``[embedder] query_runtime = auto``, the default where onnxruntime is installed)
  torch-fp32  sentence-transformers in float32 (``query_runtime = torch, precision = fp32``)
  torch-bf16  the same in bfloat16 (``precision = bf16``; only on a CPU with native bf16)
  onnx-one-call  the ONNX path with each batch in one model call padded to its longest question (ragkit's ONNX
              path before it grouped a batch's questions by length)

For batch sizes 1 to 32 it reports CPU milliseconds per query (process CPU time over at least ``--seconds`` of
consecutive batches). It also measures the rest of an in-process hybrid retrieval on the SciFact index (BM25,
faiss, fusion, fetching chunk texts) with the query vectors computed beforehand, and from both derives the most
batching could give: ``(model(1) + rest) / (model(b) + rest)``, an upper bound for the server's throughput ratio,
which HTTP handling (not counted here, the same with and without batching) only lowers.

    python benchmarks/batch_scaling.py            # writes benchmarks/results/batch_scaling.json
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from _common import DATASETS, beir_index, write_result

SIZES = (1, 2, 4, 8, 16, 32)


def cpu_per_query(encode, texts: list[str], size: int, seconds: float) -> float:
    """CPU milliseconds per text, encoding consecutive batches of ``size`` texts for at least ``seconds``."""
    n, at = 0, 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        if at + size > len(texts):
            at = 0
        encode(texts[at:at + size])
        at += size
        n += size
    return 1000 * (time.process_time() - t0) / n


def make_paths(flags: set[str]) -> dict:
    """Query path name -> a function embedding a list of texts (each path's model loaded)."""
    from ragkit.embedding.onnx_query import OnnxQueryEncoder, export_dir, runtime_available
    from ragkit.embedding.sentence_transformers import SentenceTransformerEmbedder

    embedders = {}
    if runtime_available():
        embedders["onnx"] = SentenceTransformerEmbedder(query_runtime="onnx", precision="fp32")
    embedders["torch-fp32"] = SentenceTransformerEmbedder(query_runtime="torch", precision="fp32")
    if flags & {"avx512_bf16", "amx_bf16"}:
        embedders["torch-bf16"] = SentenceTransformerEmbedder(query_runtime="torch", precision="bf16")
    paths = {}
    for name, emb in embedders.items():
        emb.warm_up_queries()
        paths[name] = emb.embed_queries
        if name == "onnx":  # the same encoder with every batch in one call padded to its longest question
            encoder = OnnxQueryEncoder(export_dir(emb.model_id, emb.params.max_seq_length))
            paths["onnx-one-call"] = lambda texts, enc=encoder: enc.encode(texts, by_length=False)
    return paths


def rest_of_retrieval(texts: list[str], vectors: np.ndarray, seconds: float) -> float:
    """CPU milliseconds of an in-process hybrid retrieval (k=10) whose query vector is looked up, not computed."""
    engine, _ = beir_index("scifact")
    try:
        engine.warm_up(mode="hybrid")
        known = dict(zip(texts, vectors))
        engine.query_encoder = known.__getitem__  # the server's hook for its batcher: here a lookup
        return cpu_per_query(lambda batch: [engine.retrieve(t, k=10, mode="hybrid") for t in batch], texts, 1,
                             seconds)
    finally:
        engine.query_encoder = None
        engine.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per measured point")
    ap.add_argument("--out", default="batch_scaling", help="results name (benchmarks/results/NAME.json)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from encoder_paths import cpu_flags
    from ragkit.evaluate.datasets import load_beir

    torch.set_num_threads(1)  # as the batching server runs each model call
    texts = [q.text for q in load_beir(DATASETS / "scifact", "test").queries]
    flags = cpu_flags()
    load = [round(os.getloadavg()[0], 2)]
    paths: dict[str, dict] = {}
    vectors = None
    for name, embed in make_paths(flags).items():
        embed(texts[:8])  # warm-up
        with torch.inference_mode():
            per = {size: round(cpu_per_query(embed, texts, size, args.seconds), 3) for size in SIZES}
        if vectors is None:
            vectors = embed(texts)
        paths[name] = {"cpu_ms_per_query": per, "batch16_vs_alone": round(per[1] / per[16], 2)}
        load.append(round(os.getloadavg()[0], 2))
        print(f"{name}: " + "  ".join(f"{s}: {v:.2f}" for s, v in per.items()) + " ms CPU/query", flush=True)
    rest = round(rest_of_retrieval(texts, vectors, args.seconds), 3)
    print(f"rest of a hybrid retrieval: {rest:.2f} ms CPU/query", flush=True)
    for p in paths.values():
        m = p["cpu_ms_per_query"]
        p["bound_at_16"] = round((m[1] + rest) / (min(m[s] for s in SIZES if s <= 16) + rest), 2)
    load.append(round(os.getloadavg()[0], 2))
    path = write_result(args.out, {
        "dataset": "scifact", "split": "test", "queries": len(texts), "sizes": list(SIZES),
        "seconds_per_point": args.seconds, "threads_per_call": 1, "paths": paths,
        "rest_of_retrieval_cpu_ms": rest, "cpu_bf16": sorted(flags & {"avx512_bf16", "amx_bf16"}),
        "load_avg_1min": load,
        "note": "process CPU time per query, one thread per model call; rest: an in-process hybrid retrieval "
                "(BM25, faiss, RRF, chunk texts; k=10) with the query vector looked up; bound_at_16: (model alone "
                "+ rest) / (cheapest model cost at a batch of at most 16 + rest)."})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
