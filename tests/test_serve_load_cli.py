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
