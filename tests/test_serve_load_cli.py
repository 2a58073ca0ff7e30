"""benchmarks/serve_load.py refuses a malformed server list in one line, before it builds an index or starts a
server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args,message", [
    (["--baseline"], "add servers to --compare-batching: pass it too"),
    (["--ref", "HEAD"], "add servers to --compare-batching: pass it too"),
    (["--compare-batching", "--extra", "a@b:serve.batch_max=4"], "'@' is kept for --ref servers"),
    (["--rounds", "3"], "more than 1 only with --compare-batching"),
    (["--compare-batching", "--rounds", "0"], "--rounds is 1..10"),
    (["--compare-batching", "--ref", "HEAD"], "--ref 'HEAD': git is not available"),  # PATH is empty here
    (["--extra", "window0:serve.batch_window_ms=0"], "add servers to --compare-batching: pass it too"),
    (["--compare-batching", "--extra", "no-override"], "expected NAME:OVERRIDE"),
    (["--compare-batching", "--extra", ":serve.batch_max=4"], "expected NAME:OVERRIDE"),
    (["--compare-batching", "--extra", "off:serve.batch_max=4"], "a NAME other than on, off and baseline"),
])
def test_a_malformed_server_list_exits_before_any_work(tmp_path, args, message):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), *args], capture_output=True,
                          text=True, cwd=tmp_path, env={"RAGKIT_CACHE": str(tmp_path / "cache"), "PATH": ""},
                          timeout=60)
    assert proc.returncode == 1 and message in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "cache").exists()  # no index was built


def _serve_load():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import serve_load
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return serve_load


def test_a_ref_that_is_no_commit_exits_before_any_work(tmp_path):
    import os

    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), "--compare-batching", "--ref",
                           "no-such-ref-anywhere"], capture_output=True, text=True, cwd=tmp_path,
                          env={"RAGKIT_CACHE": str(tmp_path / "cache"), "PATH": os.environ.get("PATH", "")},
                          timeout=60)
    assert proc.returncode == 1 and "--ref 'no-such-ref-anywhere': not a commit of this repository" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "cache").exists()


def test_code_at_extracts_the_package_as_committed(tmp_path):
    serve_load = _serve_load()
    head = serve_load.resolve_ref("HEAD")
    code = serve_load.code_at(head, tmp_path / "code")
    for path in ("ragkit/__init__.py", "ragkit/serve/app.py"):
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{head}:{path}"], capture_output=True, text=True,
                               check=True).stdout
        assert (code / path).read_text() == shown  # the committed file, whatever the working tree holds
    assert not (code / "tests").exists() and not (code / "benchmarks").exists()  # the package only


def test_rounds_merge_to_medians_and_sum_errors():
    serve_load = _serve_load()
    runs = [{"clients": 16, "throughput_rps": rps, "server_cpu_ms_per_request": cpu, "errors": err, "requests": 100,
             "latency_ms": {"p50": p, "p95": 2 * p, "p99": 3 * p}}
            for rps, cpu, err, p in [(100.0, 9.0, 0, 10.0), (140.0, 8.0, 1, 30.0), (120.0, None, 0, 20.0)]]
    m = serve_load.merged(runs)
    assert m["throughput_rps"] == 120.0 and m["server_cpu_ms_per_request"] == 8.5  # None: not measured, left out
    assert m["latency_ms"] == {"p50": 20.0, "p95": 40.0, "p99": 60.0} and m["errors"] == 1 and m["requests"] == 300
    assert serve_load.merged(runs[:1]) is runs[0]
