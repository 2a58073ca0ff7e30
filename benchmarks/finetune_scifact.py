"""ragkit finetune on SciFact (issue 9's acceptance numbers). Each step writes its part of
benchmarks/results/finetune_scifact.json; models go to .cache/finetune/ (not in the repository).

    python benchmarks/finetune_scifact.py supervised      # reranker on SciFact's train split -> test nDCG@10
    python benchmarks/finetune_scifact.py queries --n 600 # synthetic questions from the SciFact corpus (qwen0.5b)
    python benchmarks/finetune_scifact.py synthetic       # reranker trained on those questions only
    python benchmarks/finetune_scifact.py embedder        # embedder adapted on them, full and LoRA -> dense nDCG@10
    python benchmarks/finetune_scifact.py transfer        # reranker on the other shared sets' labelled data
    python benchmarks/finetune_scifact.py shuffle         # the floor: hybrid top 50 in random order, 50 seeds
    python benchmarks/finetune_scifact.py blend --section supervised   # blend weight chosen on held-out questions

Evaluation is always SciFact *test* (300 queries; its queries are never trained on): the hybrid (RRF) first
stage of a one-document-per-chunk index, reranked to depth 50 by the trained cross-encoder, nDCG@10, with a
paired randomization test against hybrid alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _common import (BEIR_OVERRIDES, BLEND_WEIGHTS, CACHE, DATASETS, RESULTS, beir_index, scifact_dev_test, versus,
                     write_result)

NAME = "finetune_scifact"
MODELS = CACHE / "finetune"
SYNTH = MODELS / "scifact-synth.jsonl"  # written by `queries`, read by `synthetic`, `embedder`, `blend --dev synthetic`
METRICS = ("ndcg@10", "recall@100", "mrr@10")


def load_results() -> dict:
    path = RESULTS / f"{NAME}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        return {k: v for k, v in data.items() if k not in ("benchmark", "date", "machine")}
    return {}


def save(section: str, data: dict) -> None:
    results = load_results()
    results[section] = {**data, "load_avg_1min_at_end": round(os.getloadavg()[0], 2)}
    path = write_result(NAME, results)
    print(json.dumps(data, indent=2, default=str))
    print(f"wrote {path}")


def evaluate(rerank_model: Path | None = None, embed_model: Path | None = None, mode: str = "hybrid",
             depth: int = 50) -> tuple[dict, list[float], float]:
    """SciFact test metrics of the first stage (optionally another embedder) + optional cross-encoder."""
    from ragkit.evaluate.runner import dataset_engine, evaluate_retrieval, load_dataset

    ds = load_dataset(DATASETS / "scifact", "test")
    overrides = list(BEIR_OVERRIDES)
    if embed_model is not None:
        overrides.append(f"embedder.model={embed_model}")
    cfg = {"rerankers": [{"name": "cross-encoder", "model": str(rerank_model), "depth": depth}]} \
        if rerank_model else None
    t = time.perf_counter()
    eng, _ = dataset_engine(ds, cfg, overrides, CACHE)
    build_s = time.perf_counter() - t
    eng.warm_up()
    t = time.perf_counter()
    rep = evaluate_retrieval(eng, ds, k=100, mode=mode, metrics=METRICS)
    secs = time.perf_counter() - t
    eng.close()
    per_query = [r["metrics"]["ndcg@10"] for r in rep.rows]
    return {m: round(v, 4) for m, v in rep.metrics.items()}, per_query, round(secs + build_s, 1)


def goal_for(kind: str, hybrid_ndcg: float, args) -> float | None:
    """Issue 9's SciFact test nDCG@10 goal for a reranker of this kind (None: the issue sets none)."""
    return {"supervised": args.goal, "synthetic": round(hybrid_ndcg + 0.01, 4)}.get(kind)


def baseline(mode: str = "hybrid") -> tuple[dict, list[float]]:
    metrics, per_query, _ = evaluate(mode=mode)
    return metrics, per_query


def train_and_eval_reranker(section: str, sources: list[Path], args, split: str = "train", kind: str = "") -> None:
    from ragkit.finetune.data import split_heldout, training_set
    from ragkit.finetune.reranker import train_reranker

    t = time.perf_counter()
    index = beir_index("scifact")[0]
    index_path = index.store.path
    index.close()
    examples, notes = training_set(sources, split=split, index=index_path if args.mine_scifact else None,
                                   overrides=BEIR_OVERRIDES, cache_dir=CACHE, negatives=args.negatives,
                                   depth=args.depth, seed=args.seed, progress=_printer())
    prep_s = time.perf_counter() - t
    train, held = split_heldout(examples, args.heldout, args.seed)
    out = MODELS / f"reranker-{section}"
    card = train_reranker(train, out, heldout=held, loss=args.loss, epochs=args.epochs, negatives=args.negatives,
                          groups_per_step=args.groups, max_length=args.max_length, lr=args.lr,
                          max_minutes=args.max_minutes, seed=args.seed, threads=args.threads,
                          progress=_printer())
    if args.skip_eval:  # a model for `tune.py --refit-cross-encoder`: its test number comes from the tune run
        save(section, {"training_data": notes, "examples": len(examples), "prepare_s": round(prep_s, 1),
                       "card": brief(card), "evaluated": False})
        return
    base_m, base_q = baseline()
    m, q, eval_s = evaluate(out, depth=args.rerank_depth)
    goal = goal_for(kind or section, base_m["ndcg@10"], args)
    save(section, {"training_data": notes, "examples": len(examples), "prepare_s": round(prep_s, 1),
                   "card": brief(card), "hybrid": base_m, f"hybrid+reranker@{args.rerank_depth}": m,
                   "versus_hybrid": versus(q, base_q), "eval_s": eval_s,
                   "goal_ndcg@10": goal, "goal_met": None if goal is None else m["ndcg@10"] >= goal})


def _printer():
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 30 or done == total:
            last[0] = now
            print(f"{stage} {done}/{total}", flush=True)

    return progress


def cmd_supervised(args) -> None:
    train_and_eval_reranker(args.section or "supervised", [DATASETS / "scifact"], args, kind="supervised")


def cmd_queries(args) -> None:
    from ragkit.finetune.data import first_stage_engine
    from ragkit.finetune.synth import SynthSettings, generate_questions
    from ragkit.llm import make_llm

    index = beir_index("scifact")[0]
    path = index.store.path
    index.close()
    eng = first_stage_engine(path, None, BEIR_OVERRIDES)
    llm = make_llm({"backend": "llama-cpp", "model": args.llm, "n_threads": args.threads})
    out = SYNTH
    out.parent.mkdir(parents=True, exist_ok=True)
    rep = generate_questions(eng, llm, out, SynthSettings(n=args.n, per_chunk=args.per_chunk, seed=args.seed),
                             progress=_printer())
    eng.close()
    done = sum(1 for _ in open(out.with_name(out.name + ".progress.jsonl"))) - 1
    save("queries", {**rep.to_dict(), "chunks_processed_total": done, "llm_model": args.llm,
                     "seconds_per_chunk_this_run": round(rep.seconds / rep.chunks_processed, 2) if rep.chunks_processed
                     else None})


def cmd_synthetic(args) -> None:
    args.mine_scifact = False  # the synthetic file carries its own negatives (mined when it was written)
    train_and_eval_reranker(args.section or "synthetic", [SYNTH], args, kind="synthetic")


def cmd_transfer(args) -> None:
    sources = [DATASETS / "nfcorpus", DATASETS / "pubmedqa", DATASETS / "covidqa", DATASETS / "hotpotqa_dev500"]
    args.mine_scifact = False  # each set's negatives come from its own corpus (or at random without one)
    train_and_eval_reranker("transfer", sources, args)


def cmd_shuffle(args) -> None:
    """nDCG@10 of the hybrid top ``rerank_depth`` in a random order (mean and range over 50 seeds): what a
    reranker that knows nothing scores, the floor a trained one must clear."""
    import random

    from ragkit.evaluate.datasets import load_beir
    from ragkit.evaluate.retrieval import evaluate_run

    test = load_beir(DATASETS / "scifact", "test")
    eng = beir_index("scifact")[0]
    tops = {q.qid: [h.doc_id for h in eng.retrieve(q.text, k=args.rerank_depth, mode="hybrid").hits]
            for q in test.queries}
    eng.close()
    values = []
    for seed in range(50):
        rng = random.Random(seed)
        run = {}
        for qid, top in tops.items():
            order = list(top)
            rng.shuffle(order)
            run[qid] = {d: float(len(order) - i) for i, d in enumerate(order)}
        values.append(evaluate_run(test.qrels, run, ("ndcg@10",))[0]["ndcg@10"])
    save("random_order", {"depth": args.rerank_depth, "seeds": len(values),
                          "ndcg@10_mean": round(sum(values) / len(values), 4),
                          "ndcg@10_min": round(min(values), 4), "ndcg@10_max": round(max(values), 4)})


def cmd_embedder(args) -> None:
    from ragkit.finetune.data import read_examples, split_heldout
    from ragkit.finetune.embedder import train_embedder

    examples = read_examples(SYNTH)
    train, held = split_heldout(examples, args.heldout, args.seed)
    base_m, base_q = baseline("dense")
    results = {"examples": len(examples), "dense_base": base_m}
    for lora in (False, True):
        label = "lora" if lora else "full"
        out = MODELS / f"embedder-{label}"
        card = train_embedder(train, out, heldout=held, lora=lora, epochs=args.epochs, batch_size=args.batch_size,
                              max_minutes=args.max_minutes, seed=args.seed, progress=_printer())
        m, q, secs = evaluate(embed_model=out, mode="dense")
        results[label] = {"card": brief(card), "dense": m, "versus_base": versus(q, base_q), "reindex_and_eval_s": secs}
        save("embedder", results)


def brief(card: dict) -> dict:
    """A model card for the results JSON: the list of training question ids becomes its length."""
    out = {k: v for k, v in card.items() if k != "train_questions"}
    if "train_questions" in card:
        out["train_questions"] = len(card["train_questions"])
    return out


def synthetic_dev(heldout: float, seed: int) -> tuple[list[tuple[str, str]], dict]:
    """The synthetic questions every training run holds out, as (queries, qrels): each question's source
    abstract is its one relevant document."""
    from ragkit.finetune.data import read_examples, split_heldout

    _, held = split_heldout(read_examples(SYNTH), heldout, seed)
    return ([(e.qid, e.query) for e in held],
            {e.qid: {p.doc_id or p.id: 1 for p in e.positives} for e in held})


def cmd_blend(args) -> None:
    """Score hybrid top-``rerank_depth`` once with a trained reranker, then pick the blend weight (cross-encoder vs
    fused score) on held-out questions (SciFact train, or with ``--dev synthetic`` the held-out synthetic ones: no
    labels) and report SciFact test at that weight (plus the whole curve)."""
    from ragkit.evaluate.retrieval import evaluate_run
    from ragkit.finetune.reranker import scorer
    from ragkit.rerank._common import blend_scores

    section = args.section or "supervised"
    model_dir = MODELS / f"reranker-{section}"
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(model_dir), device="cpu")
    score = scorer(model)
    sets = scifact_dev_test(args.heldout, args.seed)
    if args.dev == "synthetic":  # zero-shot: choose the weight on the held-out synthetic questions, no labels
        sets["dev"] = synthetic_dev(args.heldout, args.seed)
    eng = beir_index("scifact")[0]
    weights = BLEND_WEIGHTS
    curves, per_query = {}, {}
    t = time.perf_counter()
    for name, (queries, qrels) in sets.items():
        runs = {w: {} for w in weights}
        for i, (qid, text) in enumerate(queries):
            hits = eng.retrieve(text, k=args.rerank_depth, mode="hybrid").hits
            ce = score(text, [h.chunk.text for h in hits])
            for w in weights:
                blended = blend_scores(ce, [h.score for h in hits], w)
                runs[w][qid] = {h.doc_id: float(b) for h, b in zip(hits, blended)}
            if (i + 1) % 50 == 0:
                print(f"{name} {i + 1}/{len(queries)}", flush=True)
        curves[name] = {}
        for w in weights:
            agg, pq = evaluate_run(qrels, runs[w], ("ndcg@10",))
            curves[name][w] = round(agg["ndcg@10"], 4)
            per_query[(name, w)] = [pq["ndcg@10"].get(qid, 0.0) for qid, _ in queries]
    eng.close()
    best = max(weights[1:], key=lambda w: (curves["dev"][w], -w))
    goal = goal_for(section.split("-")[0], curves["test"][0.0], args)
    save(f"{section}-blend", {"model": str(model_dir), "depth": args.rerank_depth, "dev": args.dev,
                              "dev_questions": len(sets["dev"][0]), "chosen_on_dev": best,
                              "test_ndcg@10_at_chosen": curves["test"][best], "test_hybrid_ndcg@10": curves["test"][0.0],
                              "versus_hybrid": versus(per_query[("test", best)], per_query[("test", 0.0)]),
                              "curve_dev": curves["dev"], "curve_test": curves["test"],
                              "seconds": round(time.perf_counter() - t, 1),
                              "goal_ndcg@10": goal, "goal_met": None if goal is None else curves["test"][best] >= goal})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["supervised", "queries", "synthetic", "embedder", "transfer", "blend",
                                     "shuffle"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heldout", type=float, default=0.1)
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--depth", type=int, default=30, help="first-stage depth negatives are drawn from")
    ap.add_argument("--loss", default="listwise")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=160)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--max-minutes", type=float, default=25.0)
    ap.add_argument("--skip-eval", action="store_true", help="train and save only (no test evaluation)")
    ap.add_argument("--rerank-depth", type=int, default=50)
    ap.add_argument("--goal", type=float, default=0.73)
    ap.add_argument("--n", type=int, default=600, help="synthetic questions to keep")
    ap.add_argument("--per-chunk", type=int, default=1)
    ap.add_argument("--llm", default="qwen0.5b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--section", default="", help="result section / model name (default: the step)")
    ap.add_argument("--dev", choices=["train", "synthetic"], default="train",
                    help="blend: questions the weight is chosen on (held-out SciFact train, or held-out synthetic)")
    args = ap.parse_args()
    args.mine_scifact = True
    {"supervised": cmd_supervised, "queries": cmd_queries, "synthetic": cmd_synthetic,
     "embedder": cmd_embedder, "transfer": cmd_transfer, "blend": cmd_blend,
     "shuffle": cmd_shuffle}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
