"""The committed ablation reports: the DevDay ladder on SciFact (with the trained cross-encoder, and with the
`llm` reranker) and on the bundled Beacon set, and the LLM query transforms (HyDE, multi-query) on Beacon.

With --run, runs `ragkit ablate` for each first (reusing the cached indexes, the shared embedding
cache under .cache/ and the finished steps in the report directories), which writes
benchmarks/reports/<name>/{report.md,report.html,results.json,plots/}. Then collects the primary metric,
significance and latency per step from the reports into benchmarks/results/ablate_ladders.json.
Arguments after --run go to every `ragkit ablate` call (e.g. --fresh to recompute every step); `--run
--only=beacon,scifact` runs only those reports (the others are still collected).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from _common import CACHE, DATASETS, ROOT, write_result

# The rerank step of both ladders: the cross-encoder trained by `python benchmarks/finetune_scifact.py supervised`
# (the ladder's default, `llm:depth=10`, is one Qwen 0.5B call per pair: hours for SciFact's 3,000 pairs on 2 cores).
RERANK = ["--rerank", "cross-encoder:model=.cache/finetune/reranker-supervised,depth=10,blend=0.1"]
SCIFACT = ["--dataset", os.path.relpath(DATASETS / "scifact", ROOT), "--set", "chunker.name=document"]
BEACON = ["--dataset", "eval_sets/beacon", "--corpus", "corpora/beacon",
          "--k", "20", "--metrics", "ndcg@10,hit_rate@5,mrr@10,recall@10"]
# Each report: the `ragkit ablate` arguments, and the report whose finished first steps it may start from.
REPORTS = {
    "scifact": {"args": [*SCIFACT, "--ladder", *RERANK]},
    # The ladder's default rerank step, the llm reranker (Qwen2.5-Coder-0.5B, P(yes), depth 10), stopping after it:
    # SciFact's 300 queries x 10 pairs take 1.5-3 h of CPU here. Its first four steps are the scifact ladder's,
    # copied from benchmarks/reports/scifact/variants/ when missing (variants resume by config fingerprint).
    "scifact-llm": {"args": [*SCIFACT, "--ladder", "--rerank", "llm:depth=10", "--rules", "none", "--expand", "none"],
                    "seed_from": "scifact"},
    "beacon": {"args": [*BEACON, "--ladder", *RERANK]},
    # The LLM query transforms against plain hybrid retrieval, both through the generator's LLM (Qwen 0.5B).
    "beacon-transforms": {"args": [*BEACON, "--set", "generator.name=llama-cpp", "--set", "generator.model=qwen0.5b",
                                   "--vary", "transforms=hyde,multi-query"]},
}
FIRST_STEPS = ("bm25", "dense", "hybrid-rrf", "hybrid-minmax")


def seed_first_steps(src, dst) -> None:
    """Copy the finished BM25 / dense / hybrid steps of another ladder on the same dataset (resumed by config)."""
    (dst / "variants").mkdir(parents=True, exist_ok=True)
    for step in FIRST_STEPS:
        have, want = src / "variants" / f"{step}.json", dst / "variants" / f"{step}.json"
        if have.exists() and not want.exists():
            shutil.copyfile(have, want)


def main(argv: list[str]) -> int:
    run = argv[:1] == ["--run"]
    rest = argv[1:]
    only = set(REPORTS)
    if rest and rest[0].startswith("--only="):
        only = set(rest[0].removeprefix("--only=").split(","))
        rest = rest[1:]
        if only - set(REPORTS):
            print(f"--only: unknown report(s) {', '.join(sorted(only - set(REPORTS)))}; "
                  f"known: {', '.join(REPORTS)}", file=sys.stderr)
            return 2
    out = {}
    for name, spec in REPORTS.items():
        report = ROOT / "benchmarks" / "reports" / name
        if run and name in only:
            if "seed_from" in spec:
                seed_first_steps(ROOT / "benchmarks" / "reports" / spec["seed_from"], report)
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "ragkit", "ablate", *spec["args"], "--out",
                                   os.path.relpath(report, ROOT), "--cache-dir", os.path.relpath(CACHE, ROOT),
                                   *rest], cwd=ROOT)
            print(f"{name}: {time.perf_counter() - t:.0f} s")
            if proc.returncode not in (0, 1):
                return proc.returncode
        if not (report / "results.json").is_file():
            out[name] = {"status": "not run yet", "run": "python benchmarks/ablate_ladders.py --run"}
            print(f"{name}: no {os.path.relpath(report, ROOT)}/results.json yet (not run)")
            continue
        summary = json.loads((report / "results.json").read_text())
        primary = summary["settings"]["primary"]
        out[name] = {"variant_seconds": summary.get("variant_seconds"), "primary": primary,
                     "queries": summary["dataset"]["queries"], "reuse": summary.get("reuse"),
                     "notes": summary.get("notes", []),
                     "steps": [{"name": v["name"], "status": v["status"], "reason": v.get("reason"),
                                primary: v.get("metrics", {}).get(primary),
                                "vs": v.get("reference"),
                                "delta": (v.get("vs_reference") or {}).get(primary, {}).get("delta"),
                                "p_value": (v.get("vs_reference") or {}).get(primary, {}).get("p_value"),
                                "latency_p50_ms": (v.get("latency_ms") or {}).get("total", {}).get("p50")}
                               for v in summary["variants"]]}
    path = write_result("ablate_ladders", {**out, "note": "latencies measured while the 2 CPU cores were shared "
                                                          "with other work: pessimistic"})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
