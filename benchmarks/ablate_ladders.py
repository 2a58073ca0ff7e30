"""The committed ablation reports: the DevDay ladder on SciFact and on the bundled Beacon set.

Runs `ragkit ablate --ladder` for each (reusing the cached indexes and the shared embedding cache under
.cache/), which writes benchmarks/reports/<name>/{report.md,report.html,results.json,plots/}, then collects
the primary metric, significance and wall time per step into benchmarks/results/ablate_ladders.json.
Extra arguments go to every `ragkit ablate` call (e.g. --rerank cross-encoder:model=/path,depth=10 or --fresh).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from _common import CACHE, DATASETS, ROOT, write_result

LADDERS = {
    "scifact": ["--dataset", str(DATASETS / "scifact"), "--set", "chunker.name=document"],
    "beacon": ["--dataset", str(ROOT / "eval_sets" / "beacon"), "--corpus", str(ROOT / "corpora" / "beacon"),
               "--k", "20", "--metrics", "ndcg@10,hit_rate@5,mrr@10,recall@10"],
}


def main(argv: list[str]) -> int:
    out = {}
    for name, args in LADDERS.items():
        report = ROOT / "benchmarks" / "reports" / name
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "ragkit", "ablate", *args, "--ladder", "--out", str(report),
                               "--cache-dir", str(CACHE), *argv], cwd=ROOT)
        seconds = time.perf_counter() - t
        if proc.returncode not in (0, 1):
            return proc.returncode
        summary = json.loads((report / "results.json").read_text())
        primary = summary["settings"]["primary"]
        out[name] = {"seconds": round(seconds, 1), "primary": primary, "queries": summary["dataset"]["queries"],
                     "notes": summary.get("notes", []),
                     "steps": [{"name": v["name"], "status": v["status"], "reason": v.get("reason"),
                                primary: v.get("metrics", {}).get(primary),
                                "vs": v.get("reference"),
                                "delta": (v.get("vs_reference") or {}).get(primary, {}).get("delta"),
                                "p_value": (v.get("vs_reference") or {}).get(primary, {}).get("p_value"),
                                "latency_p50_ms": (v.get("latency_ms") or {}).get("total", {}).get("p50")}
                               for v in summary["variants"]]}
        print(f"{name}: {seconds:.0f} s")
    path = write_result("ablate_ladders", {**out, "note": "latencies measured while the 2 CPU cores were shared "
                                                          "with other work: pessimistic"})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
