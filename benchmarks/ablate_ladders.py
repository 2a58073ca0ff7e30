"""The committed ablation reports: the DevDay ladder on SciFact and on the bundled Beacon set.

With --run, runs `ragkit ablate --ladder` for each first (reusing the cached indexes, the shared embedding
cache under .cache/ and the finished steps in the report directories), which writes
benchmarks/reports/<name>/{report.md,report.html,results.json,plots/}. Then collects the primary metric,
significance and latency per step from the reports into benchmarks/results/ablate_ladders.json.
Arguments after --run go to every `ragkit ablate` call (e.g. --fresh to recompute every step).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from _common import CACHE, DATASETS, ROOT, write_result

# The rerank step of both: the cross-encoder trained by `python benchmarks/finetune_scifact.py supervised` (the
# ladder's default, `llm:depth=10`, is one Qwen 0.5B call per pair: hours for SciFact's 3,000 pairs on 2 cores).
RERANK = ["--rerank", "cross-encoder:model=.cache/finetune/reranker-supervised,depth=10,blend=0.1"]
LADDERS = {
    "scifact": ["--dataset", os.path.relpath(DATASETS / "scifact", ROOT), "--set", "chunker.name=document", *RERANK],
    # The ladder's default rerank step, the llm reranker (Qwen2.5-Coder-0.5B, P(yes), depth 10): SciFact's 300
    # queries x 10 pairs are more than 3 h of CPU here, so this ladder stops after it (its first four steps are the
    # scifact ladder's, copied from benchmarks/reports/scifact/variants/ when missing, as they resume by config).
    "scifact-llm": ["--dataset", os.path.relpath(DATASETS / "scifact", ROOT), "--set", "chunker.name=document",
                    "--rerank", "llm:depth=10", "--rules", "none", "--expand", "none"],
    "beacon": ["--dataset", "eval_sets/beacon", "--corpus", "corpora/beacon",
               "--k", "20", "--metrics", "ndcg@10,hit_rate@5,mrr@10,recall@10", *RERANK],
}


def seed_first_steps(src, dst) -> None:
    """Copy the finished BM25 / dense / hybrid steps of another ladder on the same dataset (resumed by config)."""
    (dst / "variants").mkdir(parents=True, exist_ok=True)
    for step in ("bm25", "dense", "hybrid-rrf", "hybrid-minmax"):
        have, want = src / "variants" / f"{step}.json", dst / "variants" / f"{step}.json"
        if have.exists() and not want.exists():
            shutil.copyfile(have, want)


def main(argv: list[str]) -> int:
    out = {}
    for name, args in LADDERS.items():
        report = ROOT / "benchmarks" / "reports" / name
        if argv[:1] == ["--run"]:
            if name == "scifact-llm":
                seed_first_steps(ROOT / "benchmarks" / "reports" / "scifact", report)
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "ragkit", "ablate", *args, "--ladder", "--out",
                                   os.path.relpath(report, ROOT), "--cache-dir", os.path.relpath(CACHE, ROOT),
                                   *argv[1:]], cwd=ROOT)
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
