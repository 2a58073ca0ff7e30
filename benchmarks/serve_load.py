"""Load test of `ragkit serve`: N concurrent clients against POST /v1/retrieve on the SciFact index.

Starts `ragkit serve` as a separate process on 127.0.0.1 (loopback only; behind an API key, so auth is part
of every request), then runs each configured client count for a bounded duration with SciFact's queries in
turn. Reports throughput, p50/p95/p99 latency and errors, and writes benchmarks/results/serve_load.json.

    python benchmarks/serve_load.py                          # 1 client for 15 s, then 16 clients for 60 s
    python benchmarks/serve_load.py --clients 1,4,16 --duration 30 --mode bm25
    python benchmarks/serve_load.py --compare-batching       # serve.batching on vs off: two servers, alternating
                                                             # runs at 1/4/16/64 clients -> serve_batching.json
    python benchmarks/serve_load.py --compare-batching --baseline --name serve_batching_onnx
                                                             # a third server: torch fp32 queries, no batching
    python benchmarks/serve_load.py --compare-batching --ref HEAD~1
                                                             # and on/off servers running the code at HEAD~1
    python benchmarks/serve_load.py --compare-batching --rounds 3
                                                             # every point three times; medians compared

Acceptance: zero errors at 16 concurrent clients for 60 s. Batching goal: >= 3x the hybrid requests/s at 16
clients with a p95 no worse than without batching, zero errors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import CACHE, DATASETS, ROOT, write_result

from ragkit.evaluate.stats import percentile

MAX_CLIENTS, MAX_DURATION = 64, 600


def scifact_index() -> Path:
    from _common import beir_index
    from ragkit.errors import IndexLockedError

    try:
        eng, _ = beir_index("scifact")
        path = eng.store.path
        eng.close()
        return path
    except IndexLockedError:  # someone else is checking the cached index right now: use it as it is
        found = sorted((CACHE / "eval-indexes").glob("scifact-*"))
        if not found:
            raise
        return found[-1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def queries() -> list[str]:
    path = DATASETS / "scifact" / "queries.jsonl"
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def start_server(index: Path, port: int, keys: Path, overrides: list[str],
                 code: Path | None = None) -> subprocess.Popen:
    """``code``: a folder holding another version of the ``ragkit`` package (see ``code_at``) to serve with,
    in this environment; default: this checkout's."""
    import httpx

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = subprocess.Popen([sys.executable, "-m", "ragkit", "serve", "--index", str(index), "--host", "127.0.0.1",
                             "--port", str(port), "--api-keys", str(keys),
                             *[a for o in overrides for a in ("--set", o)]], cwd=code or ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json().get("ready"):
                return proc
        except (httpx.TransportError, ValueError):
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise SystemExit(f"server did not start: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.5)


def resolve_ref(ref: str) -> str:
    """The commit ``ref`` names in this repository, or a one-line exit."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                             capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise SystemExit(f"--ref {ref!r}: git is not available ({exc.strerror or exc})") from None
    if out.returncode != 0:
        raise SystemExit(f"--ref {ref!r}: not a commit of this repository")
    return out.stdout.strip()


def code_at(commit: str, into: Path) -> Path:
    """The ``ragkit`` package as it was at ``commit``, extracted under ``into`` (git archive: no checkout)."""
    import io
    import tarfile

    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit, "ragkit"],
                             capture_output=True, check=True, timeout=120).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def ref_server(side: str, commit: str) -> str:
    """The name of the ``--ref`` server with batching ``side`` (on/off) running the code at ``commit``."""
    return f"{side}@{commit[:7]}"


def merged(runs: list[dict]) -> dict:
    """One server's runs at one client count, over rounds: the median throughput, latencies and CPU per request,
    the errors summed (a single run is returned as it is)."""
    if len(runs) == 1:
        return runs[0]

    def med(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 2) if values else None

    return {"clients": runs[0]["clients"], "throughput_rps": med(r["throughput_rps"] for r in runs),
            "server_cpu_ms_per_request": med(r["server_cpu_ms_per_request"] for r in runs),
            "latency_ms": {p: med(r["latency_ms"][p] for r in runs) for p in ("p50", "p95", "p99")},
            "errors": sum(r["errors"] for r in runs), "requests": sum(r["requests"] for r in runs)}


def _head() -> str | None:
    """This checkout's commit, with ``+changes`` when its ragkit package differs from it."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "ragkit"],
                               timeout=30).returncode != 0
    except OSError:
        return None
    return (head + "+changes" if dirty else head) or None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds the process has used so far (Linux /proc), None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


def run_load(url: str, key: str, qs: list[str], clients: int, duration: float, k: int, mode: str,
             pid: int | None = None) -> dict:
    """``pid``: the server's process, whose CPU time per answered request is reported (a measure of the server's
    own work that a busy machine does not inflate the way it inflates wall times)."""
    import httpx

    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(10 ** 9))
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker():
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            start.wait()
            while time.perf_counter() < stop_at[0]:
                q = qs[next(counter) % len(qs)]
                t = time.perf_counter()
                try:
                    r = c.post("/v1/retrieve", json={"query": q, "k": k, "mode": mode})
                    ok = r.status_code == 200 and len(r.json()["hits"]) > 0
                    err = None if ok else f"HTTP {r.status_code}: {r.text[:120]}"
                except Exception as exc:
                    err = repr(exc)[:160]
                dt = time.perf_counter() - t
                with lock:
                    if err is None:
                        lat.append(dt)
                    else:
                        errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    stop_at[0] = t0 + duration
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    cpu1 = cpu_seconds(pid)
    lat_ms = sorted(x * 1000 for x in lat)
    cpu_ms = round(1000 * (cpu1 - cpu0) / len(lat), 2) if cpu0 is not None and cpu1 is not None and lat else None

    def pct(p):
        return round(percentile(lat_ms, p / 100), 2) if lat_ms else None

    return {"clients": clients, "duration_s": round(elapsed, 2), "mode": mode, "k": k,
            "requests": len(lat) + len(errors), "ok": len(lat), "errors": len(errors),
            "error_samples": sorted(set(errors))[:5], "throughput_rps": round(len(lat) / elapsed, 2),
            "server_cpu_ms_per_request": cpu_ms,
            "latency_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99),
                           "mean": round(statistics.fmean(lat_ms), 2) if lat_ms else None,
                           "max": round(lat_ms[-1], 2) if lat_ms else None}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", help="comma-separated client counts, run in turn (default 1,16; "
                    "with --compare-batching 1,4,16,64)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per client count (1 client: 1/4 of it)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--mode", default="hybrid", choices=["bm25", "dense", "hybrid"])
    ap.add_argument("--index", type=Path, help="an existing index (default: SciFact's, built once under .cache)")
    ap.add_argument("--port", type=int, default=0, help="default: a free port")
    ap.add_argument("--name", help="result name: benchmarks/results/<name>.json (default serve_load; "
                    "with --compare-batching serve_batching)")
    ap.add_argument("--set", action="append", default=[], help="server config override, e.g. "
                    "serve.max_concurrent_retrievals=2 (repeatable)")
    ap.add_argument("--compare-batching", action="store_true", help="two servers, serve.batching on and off; each "
                    "client count runs on both, alternating which goes first")
    ap.add_argument("--baseline", action="store_true", help="with --compare-batching: a third server as ragkit "
                    "served before batching (torch fp32 queries, no batching)")
    ap.add_argument("--ref", help="with --compare-batching: two more servers, on@REF and off@REF, running the "
                    "ragkit package as it was at this git commit, so a change is measured against its parent in "
                    "the same run")
    ap.add_argument("--rounds", type=int, default=1, help="with --compare-batching: run every server this many "
                    "times at each client count (the order rotating each time) and compare medians; the JSON keeps "
                    "each round's ratio")
    ap.add_argument("--extra", action="append", default=[], metavar="NAME:OVERRIDE",
                    help="with --compare-batching: one more server NAME, batching on, with this config override "
                         "(repeat the NAME for several overrides)")
    args = ap.parse_args()
    counts = [int(c) for c in (args.clients or ("1,4,16,64" if args.compare_batching else "1,16")).split(",")
              if c.strip()]
    if any(not 1 <= c <= MAX_CLIENTS for c in counts) or not 0 < args.duration <= MAX_DURATION:
        raise SystemExit(f"clients must be 1..{MAX_CLIENTS} and duration 0..{MAX_DURATION} s")
    if (args.baseline or args.extra or args.ref) and not args.compare_batching:
        raise SystemExit("--baseline, --extra and --ref add servers to --compare-batching: pass it too")
    if not 1 <= args.rounds <= 10 or (args.rounds > 1 and not args.compare_batching):
        raise SystemExit("--rounds is 1..10, and more than 1 only with --compare-batching")
    args.ref_commit = resolve_ref(args.ref) if args.ref else None
    servers = batching_servers(args) if args.compare_batching else {}  # a bad --extra fails before the index is built

    from ragkit.serve.auth import hash_key, new_key

    index = args.index or scifact_index()
    qs = queries()
    key = new_key()
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.toml"
        keys.write_text(f'[[keys]]\nname = "bench"\nhash = "{hash_key(key)}"\ntenant = "all"\n'
                        'filter = []\nall_tenants = true\n')
        if args.compare_batching:
            compare_batching(args, servers, index, keys, key, qs, counts)
        else:
            load_test(args, index, keys, key, qs, counts)


def report_line(res: dict, label: str = "") -> None:
    print(f"{label}{res['clients']:>3} clients {res['duration_s']:>6.1f} s: {res['throughput_rps']:>7.1f} req/s  "
          f"p50 {res['latency_ms']['p50']} ms  p95 {res['latency_ms']['p95']} ms  "
          f"p99 {res['latency_ms']['p99']} ms  errors {res['errors']}  server CPU "
          f"{res['server_cpu_ms_per_request']} ms/request", flush=True)


def load_test(args, index: Path, keys: Path, key: str, qs: list[str], counts: list[int]) -> None:
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(index, port, keys, args.set)
    try:
        run_load(url, key, qs, 4, 3, args.k, args.mode)  # warm-up (caches, thread pool, first requests)
        runs = []
        for c in counts:
            res = run_load(url, key, qs, c, args.duration / 4 if c == 1 else args.duration, args.k, args.mode,
                           proc.pid)
            runs.append(res)
            report_line(res)
    finally:
        proc.terminate()
        proc.wait(30)
    load = os.getloadavg()
    path = write_result(args.name or "serve_load", {
        "index": index.name, "endpoint": "/v1/retrieve", "server_overrides": args.set, "auth": "API key (sha256)",
        "runs": runs,
        "acceptance": {"clients": 16, "duration_s": 60, "errors_required": 0,
                       "met": any(r["clients"] >= 16 and r["duration_s"] >= 59 and r["errors"] == 0 for r in runs)},
        "note": "server and clients on the same 2-CPU machine, shared with other jobs during the run "
                f"(load average {load[0]:.1f} at the end); latencies are pessimistic. Hybrid retrieval embeds "
                "every query with MiniLM on the CPU, which bounds throughput."})
    print(f"wrote {path}")


def batch_stats(url: str, key: str) -> dict:
    import httpx

    return httpx.get(f"{url}/v1/stats", headers={"Authorization": f"Bearer {key}"}, timeout=30).json()["batching"]


BASELINE = ["serve.batching=false", "embedder.query_runtime=torch", "embedder.precision=fp32"]


def batching_servers(args) -> dict[str, list[str]]:
    """The servers --compare-batching runs, by name, with their config overrides: ``on`` and ``off``, with
    ``--baseline`` the server before batching, and each ``--extra`` server."""
    servers = {"on": [*args.set, "serve.batching=true"], "off": [*args.set, "serve.batching=false"]}
    if args.baseline:
        servers["baseline"] = [*args.set, *BASELINE]
    for spec in args.extra:
        name, _, override = spec.partition(":")
        if not name or not override or name in ("on", "off", "baseline"):
            raise SystemExit(f"--extra {spec!r}: expected NAME:OVERRIDE, with a NAME other than on, off and "
                             "baseline")
        if "@" in name:
            raise SystemExit(f"--extra {spec!r}: '@' is kept for --ref servers")
        servers.setdefault(name, [*args.set, "serve.batching=true"]).append(override)
    if args.ref_commit:
        for side in ("on", "off"):
            servers[ref_server(side, args.ref_commit)] = servers[side]
    return servers


def compare_batching(args, servers: dict[str, list[str]], index: Path, keys: Path, key: str, qs: list[str],
                     counts: list[int]) -> None:
    """The servers run side by side (the others idle while one is loaded); for each client count, the order
    rotates. With ``--baseline`` a third server runs as ragkit served before micro-batching and the faster query
    paths existed: queries through sentence-transformers in float32, no batching."""
    procs, urls = {}, {}
    old = tempfile.TemporaryDirectory(prefix="ragkit-ref-") if args.ref_commit else None
    try:
        code = code_at(args.ref_commit, Path(old.name)) if old else None
        for name, overrides in servers.items():
            port = args.port if name == "on" and args.port else free_port()
            procs[name] = start_server(index, port, keys, overrides, code if "@" in name else None)
            urls[name] = f"http://127.0.0.1:{port}"
        for name in servers:
            run_load(urls[name], key, qs, 4, 3, args.k, args.mode)  # warm-up
        runs, by, load_avg = [], {}, [round(os.getloadavg()[0], 2)]
        names = list(servers)
        for i, c in enumerate(counts):
            for rnd in range(args.rounds):
                first = (i * args.rounds + rnd) % len(names)
                for name in names[first:] + names[:first]:
                    res = run_load(urls[name], key, qs, c, args.duration / 4 if c == 1 else args.duration, args.k,
                                   args.mode, procs[name].pid)
                    res["batching"] = name == "on" or name.startswith("on@")
                    res["round"] = rnd + 1
                    if name == "baseline":
                        res["baseline"] = True
                    elif "@" in name:
                        res["server"], res["code"] = name, args.ref_commit
                    elif name not in ("on", "off"):
                        res["server"], res["overrides"] = name, servers[name][len(args.set):]
                    runs.append(res)
                    by.setdefault((name, c), []).append(res)
                    report_line(res, f"{name:<8} ")
            load_avg.append(round(os.getloadavg()[0], 2))
        stats = batch_stats(urls["on"], key)
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(30)
        if old is not None:
            old.cleanup()
    rounds, by = by, {k: merged(v) for k, v in by.items()}  # by: the median over rounds
    summary = []
    for c in counts:
        on, off = by[("on", c)], by[("off", c)]
        row = {"clients": c, "rps_ratio": round(on["throughput_rps"] / off["throughput_rps"], 2)
               if off["throughput_rps"] else None,
               "p95_on_ms": on["latency_ms"]["p95"], "p95_off_ms": off["latency_ms"]["p95"],
               "cpu_ms_on": on["server_cpu_ms_per_request"], "cpu_ms_off": off["server_cpu_ms_per_request"],
               "errors": on["errors"] + off["errors"]}
        base = by.get(("baseline", c))
        if base is not None:
            row.update({"rps_vs_baseline": round(on["throughput_rps"] / base["throughput_rps"], 2)
                        if base["throughput_rps"] else None, "p95_baseline_ms": base["latency_ms"]["p95"],
                        "errors_baseline": base["errors"]})
        if args.ref_commit:  # this checkout's servers against the same servers at --ref
            for side in ("on", "off"):
                ref = by[(ref_server(side, args.ref_commit), c)]
                row[f"rps_vs_ref_{side}"] = (round(by[(side, c)]["throughput_rps"] / ref["throughput_rps"], 2)
                                             if ref["throughput_rps"] else None)
                row[f"cpu_ms_ref_{side}"] = ref["server_cpu_ms_per_request"]
        if args.rounds > 1:  # each ratio round by round, to show how far one run can be off
            pairs = {"rps_ratio": ("on", "off"), "rps_vs_baseline": ("on", "baseline")}
            if args.ref_commit:
                pairs.update({f"rps_vs_ref_{side}": (side, ref_server(side, args.ref_commit))
                              for side in ("on", "off")})
            for field_, (a, b) in pairs.items():
                if (b, c) in rounds:
                    row[field_ + "_rounds"] = [round(x["throughput_rps"] / y["throughput_rps"], 2)
                                               if y["throughput_rps"] else None
                                               for x, y in zip(rounds[(a, c)], rounds[(b, c)])]
        summary.append(row)
    at16 = next((s for s in summary if s["clients"] == 16), None)
    goal = {"clients": 16, "rps_ratio": 3.0, "p95_no_worse": True, "errors_required": 0,
            "met": None if at16 is None else bool(at16["rps_ratio"] and at16["rps_ratio"] >= 3.0
                                                  and at16["p95_on_ms"] <= at16["p95_off_ms"] and not at16["errors"])}
    path = write_result(args.name or "serve_batching", {
        "index": index.name, "endpoint": "/v1/retrieve", "mode": args.mode, "k": args.k,
        "server_overrides": args.set, "baseline_overrides": BASELINE if args.baseline else None,
        "ref": args.ref_commit, "code": _head(), "rounds": args.rounds,
        "duration_s": args.duration, "runs": runs, "summary": summary, "goal": goal,
        "batch_stats": stats, "load_avg_1min": load_avg,
        "note": "servers (serve.batching on / off, and with --baseline the server as it was before batching: "
                "torch fp32 queries, no batching) on the same 2-CPU machine as the clients, rotating which runs "
                "first at each client count; batch_stats: the batching server's counters over the whole run "
                "(warm-up included)."})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
