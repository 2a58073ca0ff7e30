"""The fuzz suites of tests/hostile/, run on their own, with the count of every generated input and its outcome.

- Hypothesis over every built-in loader (random bytes, truncations, byte flips and insertions of a valid file of
  each format): an input must give documents or a one-line load error, never another exception, a hang or a crash.
- Schemathesis over `ragkit serve`'s OpenAPI schema (every endpoint, each request sent with and without an API key):
  no 5xx, no response that violates the schema.

    python benchmarks/fuzz.py                 # the CI-sized profile make test runs (fixed seeds)
    python benchmarks/fuzz.py --profile long  # random seeds, 20x the loader inputs, 12x the requests
Writes benchmarks/results/fuzz.json (or fuzz_long.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, write_result

TESTS = ["tests/hostile/test_fuzz_loaders.py", "tests/hostile/test_fuzz_server.py"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["ci", "long"], default="ci")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "stats.json")
        env = {**os.environ, "RAGKIT_FUZZ_PROFILE": args.profile, "RAGKIT_FUZZ_STATS": stats,
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-W", "ignore::hypothesis.errors.HypothesisWarning", *TESTS],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        counts = json.loads(open(stats).read())
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    loaders = {t: sum(c.values()) for t, c in counts["loader"].items()}
    requests = {t: sum(c.values()) for t, c in counts["server"].items()}
    server_errors = sum(n for c in counts["server"].values() for status, n in c.items() if status.startswith("5"))
    crashes = sum(c.get("crash", 0) + c.get("limit", 0) for c in counts["loader"].values())
    out = {"profile": args.profile, "passed": proc.returncode == 0, "pytest": summary, "seconds": round(seconds, 1),
           "loader_inputs": sum(loaders.values()), "loader_crashes_or_limits": crashes,
           "server_requests": sum(requests.values()), "server_5xx": server_errors,
           "load_avg_1min": round(os.getloadavg()[0], 2), "loader": counts["loader"], "server": counts["server"]}
    path = write_result("fuzz" if args.profile == "ci" else "fuzz_long", out)
    print(f"{summary}\n{out['loader_inputs']} loader inputs ({crashes} crashes or limits), "
          f"{out['server_requests']} requests ({server_errors} 5xx) in {seconds:.0f} s -> {path}")
    if proc.returncode:
        print(proc.stdout[-4000:], file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
