"""The peers of the benchmark suite, run in the peers' own virtual environment (benchmarks/peers/.venv, made by
setup.sh): ``.venv/bin/python systems.py JOB.json OUT.json`` with ``job["system"]`` one of ``raw``, ``llamaindex``,
``haystack``. The contract and timing rules are protocol.py's; run.py scores what this writes.

Every peer gets the same documents (one per chunk, title + body as ragkit reads them), the same MiniLM folder,
batch size 64 for document embedding, ``k`` hits per branch and per answer, and (``+ce``) the same cross-encoder on
the fused top ``rerank_depth`` with the rest kept behind, as ragkit's cross-encoder reranker does.
"""

from __future__ import annotations

import os
import re
import sys
import time

import protocol

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH = "query vectors in one encode call, then each query's search"
SEQUENTIAL = "queries one after another (no batch query path used)"


def raw(job: dict, docs: list[tuple[str, str]]) -> tuple[dict, dict, dict]:
    """The floors: rank-bm25 and bm25s for BM25, sentence-transformers + a faiss flat inner-product index for dense,
    bm25s + faiss + RRF (c = 60) for hybrid. No framework around them."""
    import bm25s
    import faiss
    import numpy as np
    from rank_bm25 import BM25Okapi
    from sentence_transformers import SentenceTransformer

    k, ids, texts = job["k"], [d for d, _ in docs], [t for _, t in docs]
    with protocol.Timer() as load:
        model = SentenceTransformer(job["model"], device="cpu", local_files_only=True)
    builds = {}
    with protocol.Timer() as b:
        words = [re.findall(r"\w+", t.lower()) for t in texts]
        okapi = BM25Okapi(words)
    builds["rank-bm25"] = {"seconds": b.seconds}
    with protocol.Timer() as b:
        sparse = bm25s.BM25()
        sparse.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    builds["bm25s"] = {"seconds": b.seconds}
    with protocol.Timer() as b:
        with protocol.Timer() as enc:
            vecs = model.encode(texts, batch_size=job["batch_size"], normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        dense = faiss.IndexFlatIP(vecs.shape[1])
        dense.add(np.ascontiguousarray(vecs, dtype=np.float32))
    builds["faiss"] = {"seconds": b.seconds, "encode_seconds": enc.seconds}

    def okapi_search(q: str) -> list[str]:
        scores = okapi.get_scores(re.findall(r"\w+", q.lower()))
        top = np.argsort(-scores)[:k]
        return [ids[i] for i in top]

    def bm25s_many(qs: list[str]) -> list[list[str]]:
        n = min(k, len(ids))
        rows, _ = sparse.retrieve(bm25s.tokenize(qs, stopwords="en", show_progress=False), k=n,
                                  show_progress=False, n_threads=1)
        return [[ids[i] for i in row] for row in rows]

    def faiss_many(qs: list[str], vq=None) -> list[list[str]]:
        vq = model.encode(qs, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False) \
            if vq is None else vq
        _, rows = dense.search(np.ascontiguousarray(vq, dtype=np.float32), min(k, len(ids)))
        return [[ids[i] for i in row if i >= 0] for row in rows]

    def hybrid_many(qs: list[str]) -> list[list[str]]:
        return [protocol.rrf([a, b], k) for a, b in zip(bm25s_many(qs), faiss_many(qs))]

    pipelines = {}
    for name, one, many, how in (
            ("rank-bm25", okapi_search, protocol.sequential(okapi_search), SEQUENTIAL),
            ("bm25s", lambda q: bm25s_many([q])[0], bm25s_many, "bm25s.retrieve over all query token lists"),
            ("faiss", lambda q: faiss_many([q])[0], faiss_many, BATCH + " (one faiss search call)"),
            ("bm25s+faiss+rrf", lambda q: hybrid_many([q])[0], hybrid_many, BATCH)):
        res = protocol.one_at_a_time(one, job["queries"], job["warmup"])
        res["batch"] = protocol.batch(many, job["queries"], how)
        pipelines[name] = res
        print(f"raw {name}: done", file=sys.stderr, flush=True)
    builds["bm25s+faiss+rrf"] = {"seconds": builds["bm25s"]["seconds"] + builds["faiss"]["seconds"]}
    def embed_alone(q: str) -> list[str]:
        model.encode([q], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return []

    embed_only = protocol.one_at_a_time(embed_alone, job["queries"], job["warmup"])["latency_s"]
    return pipelines, builds, {"model_load_s": load.seconds, "query_embedding_latency_s": embed_only}


def llamaindex(job: dict, docs: list[tuple[str, str]]) -> tuple[dict, dict, dict]:
    """LlamaIndex: VectorStoreIndex (HuggingFaceEmbedding of the MiniLM folder), BM25Retriever, QueryFusionRetriever
    (reciprocal rank, num_queries=1: no LLM query generation), SentenceTransformerRerank with the cross-encoder."""
    from llama_index.core import Settings, VectorStoreIndex
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.retrievers.fusion_retriever import FUSION_MODES
    from llama_index.core.schema import QueryBundle, TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.retrievers.bm25 import BM25Retriever

    k = job["k"]
    Settings.llm = None  # LlamaIndex's own switch for "no LLM" (num_queries=1 never calls one)
    with protocol.Timer() as load:
        embed = HuggingFaceEmbedding(model_name=job["model"], device="cpu", embed_batch_size=job["batch_size"],
                                     normalize=True)
    Settings.embed_model = embed
    builds = {}
    with protocol.Timer() as b:
        nodes = [TextNode(text=t, id_=d) for d, t in docs]
        index = VectorStoreIndex(nodes, embed_model=embed, show_progress=False)
    builds["VectorStoreIndex"] = {"seconds": b.seconds}
    with protocol.Timer() as b:
        bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=min(k, len(nodes)))
    builds["BM25Retriever"] = {"seconds": b.seconds}
    vector = index.as_retriever(similarity_top_k=k)
    fusion = QueryFusionRetriever([vector, bm25], similarity_top_k=k, num_queries=1,
                                  mode=FUSION_MODES.RECIPROCAL_RANK)
    retrievers = {"bm25": bm25, "dense": vector, "hybrid-rrf": fusion}
    rerank = None
    if job.get("cross_encoder"):
        from llama_index.core.postprocessor import SentenceTransformerRerank

        rerank = SentenceTransformerRerank(model=job["cross_encoder"], top_n=job["rerank_depth"], device="cpu")

    def ids(nodes_) -> list[str]:
        return [n.node.node_id for n in nodes_]

    def searcher(name: str):
        retriever = retrievers[name.removesuffix("+ce")]

        def search(q, vec=None) -> list[str]:
            found = retriever.retrieve(QueryBundle(q, embedding=vec) if vec is not None else q)
            if name.endswith("+ce"):
                head, tail = found[:job["rerank_depth"]], found[job["rerank_depth"]:]
                found = rerank.postprocess_nodes(head, query_bundle=QueryBundle(q)) + tail
            return ids(found)
        return search

    pipelines = {}
    for name in ["bm25", "dense", "hybrid-rrf"] + (["hybrid-rrf+ce"] if rerank else []):
        search = searcher(name)
        res = protocol.one_at_a_time(search, job["queries"], job["warmup"])
        if name == "bm25":
            res["batch"] = protocol.batch(protocol.sequential(search), job["queries"], SEQUENTIAL)
        else:
            def many(qs, search=search):
                vecs = embed.get_text_embedding_batch(qs)
                return [search(q, v) for q, v in zip(qs, vecs)]
            res["batch"] = protocol.batch(many, job["queries"], BATCH + " (QueryBundle.embedding)")
        pipelines[name] = res
        print(f"llamaindex {name}: done", file=sys.stderr, flush=True)
    builds["total"] = {"seconds": builds["VectorStoreIndex"]["seconds"] + builds["BM25Retriever"]["seconds"]}
    return pipelines, builds, {"model_load_s": load.seconds}


def haystack(job: dict, docs: list[tuple[str, str]]) -> tuple[dict, dict, dict]:
    """Haystack: InMemoryDocumentStore, SentenceTransformersDocumentEmbedder / TextEmbedder on the MiniLM folder,
    InMemoryBM25Retriever + InMemoryEmbeddingRetriever joined by DocumentJoiner (reciprocal_rank_fusion), and
    SentenceTransformersSimilarityRanker with the cross-encoder."""
    from haystack import Document, Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder, SentenceTransformersTextEmbedder)

    k = job["k"]
    with protocol.Timer() as load:
        doc_embedder = SentenceTransformersDocumentEmbedder(model=job["model"], batch_size=job["batch_size"],
                                                            progress_bar=False, normalize_embeddings=True,
                                                            local_files_only=True)
        doc_embedder.warm_up()
    builds = {}
    with protocol.Timer() as b:
        store = InMemoryDocumentStore()
        embedded = doc_embedder.run([Document(id=d, content=t) for d, t in docs])["documents"]
        store.write_documents(embedded)
    builds["InMemoryDocumentStore"] = {"seconds": b.seconds}

    def text_embedder():
        e = SentenceTransformersTextEmbedder(model=job["model"], progress_bar=False, normalize_embeddings=True,
                                             local_files_only=True)
        e.warm_up()
        return e

    ranker = None
    if job.get("cross_encoder"):
        from haystack_integrations.components.rankers.sentence_transformers import (
            SentenceTransformersSimilarityRanker)

        ranker = SentenceTransformersSimilarityRanker(model=job["cross_encoder"], top_k=job["rerank_depth"],
                                                      scale_score=False)
        ranker.warm_up()

    def pipeline(name: str) -> Pipeline:
        p = Pipeline()
        if name == "bm25":
            p.add_component("bm25", InMemoryBM25Retriever(store, top_k=k))
            return p
        p.add_component("embedder", text_embedder())
        p.add_component("dense", InMemoryEmbeddingRetriever(store, top_k=k))
        p.connect("embedder.embedding", "dense.query_embedding")
        if name.startswith("hybrid"):
            p.add_component("bm25", InMemoryBM25Retriever(store, top_k=k))
            p.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=k))
            p.connect("bm25", "joiner")
            p.connect("dense", "joiner")
        return p

    def searcher(name: str):
        base = name.removesuffix("+ce")
        p = pipeline(base)
        out_of = {"bm25": "bm25", "dense": "dense"}.get(base, "joiner")

        def search(q: str) -> list[str]:
            inputs = {"bm25": {"query": q}} if base != "dense" else {}
            if base != "bm25":
                inputs["embedder"] = {"text": q}
            found = p.run(inputs)[out_of]["documents"]
            if name.endswith("+ce"):
                d = job["rerank_depth"]
                found = ranker.run(query=q, documents=found[:d])["documents"] + found[d:]
            return [doc.id for doc in found]
        return search

    pipelines = {}
    for name in ["bm25", "dense", "hybrid-rrf"] + (["hybrid-rrf+ce"] if ranker else []):
        search = searcher(name)
        res = protocol.one_at_a_time(search, job["queries"], job["warmup"])
        res["batch"] = protocol.batch(protocol.sequential(search), job["queries"], SEQUENTIAL)
        pipelines[name] = res
        print(f"haystack {name}: done", file=sys.stderr, flush=True)
    return pipelines, builds, {"model_load_s": load.seconds}


SYSTEMS = {"raw": (raw, ("bm25s", "faiss-cpu", "rank-bm25", "sentence-transformers", "torch")),
           "llamaindex": (llamaindex, ("llama-index-core", "llama-index-embeddings-huggingface",
                                       "llama-index-retrievers-bm25", "sentence-transformers", "torch")),
           "haystack": (haystack, ("haystack-ai", "sentence-transformers-haystack", "sentence-transformers",
                                   "torch"))}


def run(job: dict, out: str) -> None:
    fn, packages = SYSTEMS[job["system"]]
    t = time.perf_counter()
    docs = protocol.load_corpus(job["corpus"])
    read_s = time.perf_counter() - t
    pipelines, builds, extra = fn(job, docs)
    protocol.write_output(out, job["system"], pipelines, builds, {**extra, "corpus_read_s": read_s}, packages)


if __name__ == "__main__":
    sys.exit(protocol.main(run))
