"""Cold start: the wall time of a fresh process, measured from outside, as a CLI user pays it on every command.

Each round runs, in turn, one fresh process for each of
  import     `python -c "import ragkit.cli"`
  bm25       `ragkit query Q --index IDX --mode bm25 --no-answer --json`   (must import no torch, load no model)
  hybrid     `ragkit query Q --index IDX --mode hybrid --no-answer --json`    (the query through ONNX Runtime)
  hybrid-torch   the same with `--set embedder.query_runtime=torch`       (the query through sentence-transformers)
  model      import sentence-transformers + load the index's embedder + embed one query (what hybrid-torch adds)
  onnx       import onnxruntime + load the exported query encoder + embed one query (what hybrid adds)
and reports the median (and min/max) over the rounds, the retrieval's own time from the query's JSON, and which heavy
modules each query process imported. The ONNX export is made once before the rounds (not timed). On a dataset's
index it also scores the test queries with both query paths (nDCG@10, dense and hybrid) and the largest difference
between their query vectors. Writes benchmarks/results/cold_start.json.

    python benchmarks/cold_start.py                          # SciFact's cached index (built once), 5 rounds
    python benchmarks/cold_start.py --index PATH --runs 9    # an existing index
    python benchmarks/cold_start.py --corpus corpora/beacon --runs 2 --out cold_start_smoke   # a quick smoke test

Goal: bm25 <= 1.0 s on SciFact's index.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, write_result

HEAVY = ("torch", "sentence_transformers", "transformers")
QUERY = "Vitamin D deficiency is associated with an increased risk of infection."
GOAL_BM25_S = 1.0

# Runs the ragkit command in this process; its last stderr line reports the heavy modules it imported.
PROBE = """
import json, sys
sys.argv = {argv!r}
from ragkit.cli import main
try:
    main()
except SystemExit as exc:
    if exc.code:
        raise
print(json.dumps([m for m in {heavy!r} if m in sys.modules]), file=sys.stderr)
"""

# What the dense branch adds in a fresh process: the import, the model load, the first query embedding.
MODEL = """
import json, sys, time
t0 = time.perf_counter()
from ragkit.engine import Engine
eng = Engine.open({index!r})
t1 = time.perf_counter()
import sentence_transformers
t2 = time.perf_counter()
eng.embedder.warm_up()
t3 = time.perf_counter()
eng.embedder.embed_query("warm")
t4 = time.perf_counter()
print(json.dumps({{"open_engine_s": t1 - t0, "import_sentence_transformers_s": t2 - t1, "load_model_s": t3 - t2,
                  "first_embed_s": t4 - t3}}))
"""


def env() -> dict[str, str]:
    """This checkout's ragkit, offline."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "COLUMNS": "200"}


def timed(code: str) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), cwd=ROOT)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"cold_start: a measured process failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, proc


# The ONNX query path in a fresh process: its imports, the session load, the first query.
ONNX = """
import json, time
t0 = time.perf_counter()
from ragkit.engine import Engine
eng = Engine.open({index!r})
t1 = time.perf_counter()
import onnxruntime, tokenizers
t2 = time.perf_counter()
enc = eng.embedder._query_encoder()
assert enc, "no ONNX query encoder"
t3 = time.perf_counter()
eng.embedder.embed_query("warm")
t4 = time.perf_counter()
print(json.dumps({{"open_engine_s": t1 - t0, "import_onnxruntime_s": t2 - t1, "load_session_s": t3 - t2,
                  "first_embed_s": t4 - t3}}))
"""

MODES = {"bm25": ("bm25", []), "hybrid": ("hybrid", []),
         "hybrid-torch": ("hybrid", ["--set", "embedder.query_runtime=torch"])}


def query_code(index: Path, name: str) -> str:
    mode, extra = MODES[name]
    argv = ["ragkit", "query", QUERY, "--index", str(index), "--mode", mode, "--no-answer", "--json", *extra]
    return PROBE.format(argv=argv, heavy=HEAVY)


def summary(values: list[float]) -> dict:
    return {"median_s": round(statistics.median(values), 3), "min_s": round(min(values), 3),
            "max_s": round(max(values), 3), "runs_s": [round(v, 3) for v in values]}


def measure(index: Path, runs: int) -> dict:
    walls: dict[str, list[float]] = {"import": [], **{m: [] for m in MODES}}
    inner: dict[str, list[float]] = {m: [] for m in MODES}
    loaded: dict[str, list[str]] = {}
    model: list[dict] = []
    onnx: list[dict] = []
    timed(query_code(index, "hybrid"))  # makes the ONNX export once, if this machine has none yet
    for i in range(runs):
        wall, _ = timed("import ragkit.cli")
        walls["import"].append(wall)
        for mode in MODES:
            wall, proc = timed(query_code(index, mode))
            walls[mode].append(wall)
            inner[mode].append(sum(json.loads(proc.stdout)["timings"].values()))
            loaded[mode] = json.loads(proc.stderr.strip().splitlines()[-1])
        _, proc = timed(MODEL.format(index=str(index)))
        model.append(json.loads(proc.stdout))
        _, proc = timed(ONNX.format(index=str(index)))
        onnx.append(json.loads(proc.stdout))
        print(f"round {i + 1}/{runs}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in walls.items()), flush=True)
    out = {name: summary(v) for name, v in walls.items()}
    for mode in MODES:
        out[mode]["retrieval_ms_median"] = round(1000 * statistics.median(inner[mode]), 2)
        out[mode]["heavy_modules_imported"] = loaded[mode]
    out["model"] = {k: round(statistics.median(m[k] for m in model), 3) for k in model[0]}
    out["onnx"] = {k: round(statistics.median(m[k] for m in onnx), 3) for k in onnx[0]}
    return out


def quality(index: Path, dataset: Path) -> dict:
    """The test queries through both query paths on the same index: nDCG@10 (dense, hybrid) and the largest
    per-component difference between the two paths' query vectors."""
    import numpy as np

    from ragkit.engine import Engine
    from ragkit.evaluate.datasets import load_beir
    from ragkit.evaluate.retrieval import evaluate_run, run_queries

    ds = load_beir(dataset, "test")
    out: dict = {"dataset": dataset.name, "queries": len(ds.queries)}
    vecs = {}
    for runtime in ("onnx", "torch"):
        with Engine.open(index, overrides=[f"embedder.query_runtime={runtime}"]) as eng:
            vecs[runtime] = np.stack([eng.embedder.embed_query(q.text) for q in ds.queries])
            for mode in ("dense", "hybrid"):
                run = run_queries(eng, ds, k=100, mode=mode)
                mean, _ = evaluate_run(ds.qrels, run.run, ("ndcg@10",))
                out[f"{mode}_{runtime}_ndcg@10"] = round(mean["ndcg@10"], 4)
            out["precision_documents"] = eng.embedder.precision
    out["max_abs_vector_difference"] = float(np.abs(vecs["onnx"] - vecs["torch"]).max())
    return out


def build_index(corpus: Path, where: Path) -> Path:
    from ragkit import Engine

    with Engine.open(where) as eng:
        eng.ingest([corpus])
    return where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, help="an existing index (default: SciFact's, built once under .cache)")
    ap.add_argument("--corpus", type=Path, help="index this folder into a temporary index first (smoke tests)")
    ap.add_argument("--runs", type=int, default=5, help="rounds; each runs every process once (default 5)")
    ap.add_argument("--label", help="the index's name in the results (default: scifact, or the --index path)")
    ap.add_argument("--out", default="cold_start", help="results name (benchmarks/results/NAME.json)")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        if args.corpus is not None:
            index, what = build_index(args.corpus, Path(tmp) / "idx"), str(args.corpus)
        else:
            from serve_load import scifact_index  # SciFact's cached index (built once)

            index = args.index or scifact_index()
            what = args.label or ("scifact" if args.index is None else str(args.index))
        load_before = os.getloadavg()[0]
        from ragkit.engine import Engine

        with Engine.open(index) as eng:
            stats = eng.stats()
        result = measure(index, args.runs)
        if args.corpus is None and args.index is None:
            from _common import DATASETS

            result["quality"] = quality(index, DATASETS / "scifact")
    data = {"index": what, "documents": stats["documents"], "chunks": stats["chunks"], "runs": args.runs,
            "query": QUERY, "goal_bm25_s": GOAL_BM25_S, **result,
            "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    path = write_result(args.out, data)
    print(json.dumps({k: v for k, v in data.items() if k in ("import", *MODES, "model", "onnx", "quality")}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
