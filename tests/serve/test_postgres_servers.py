"""Several `ragkit serve` processes on one postgres index: both answer a steady load with zero failures while a
third process ingests and commits, and both show the new documents afterwards (no restart)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import MINI_DOCS, ROOT, free_port, write_tree


def serve(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "ragkit", "serve", "--store", url, "--port", str(port),
                             "--set", "serve.reload_interval=0.2"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_healthy(base: str, proc: subprocess.Popen) -> None:
    deadline = time.time() + 180
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.time() < deadline, f"server {base} did not start"
        time.sleep(0.3)


@pytest.mark.slow
def test_two_servers_answer_while_a_third_process_commits(pg_index, tmp_path):
    url = pg_index()
    corpus = write_tree(tmp_path / "docs", MINI_DOCS)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    first = subprocess.run([sys.executable, "-m", "ragkit", "ingest", str(corpus), "--store", url], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    ports = [free_port(), free_port()]
    procs = [serve(url, p) for p in ports]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    errors, done, stop = [], [], threading.Event()

    def load(base: str, mode: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/retrieve", json={"query": "how are API keys rotated?", "k": 5, "mode": mode})
                    if r.status_code != 200:
                        errors.append((base, r.status_code, r.text[:200]))
                    done.append(time.monotonic())
                except Exception as exc:  # a dropped connection is a failure too
                    errors.append((base, repr(exc)))
                time.sleep(0.02)

    try:
        for base, proc in zip(bases, procs):
            wait_healthy(base, proc)
        threads = [threading.Thread(target=load, args=(b, m)) for b in bases for m in ("hybrid", "bm25")]
        for t in threads:
            t.start()
        try:
            write_tree(corpus, {"ops/staging.md": "# Staging\n\nHeliotrope is the codename of the staging cluster.\n"})
            t0 = time.monotonic()
            third = subprocess.run([sys.executable, "-m", "ragkit", "ingest", str(corpus), "--store", url],
                                   cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            assert third.returncode == 0, third.stderr
            assert sum(1 for d in done if d > t0) > 0  # requests were answered while the third process worked
            for base in bases:
                deadline = time.monotonic() + 60
                while True:
                    hits = httpx.post(base + "/v1/retrieve", json={"query": "heliotrope", "mode": "bm25"}).json()
                    if hits["hits"] and hits["hits"][0]["doc_id"] == "ops/staging.md":
                        break
                    assert time.monotonic() < deadline, f"{base} never showed the new document"
                    time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    assert errors == []
    assert len(done) > 20
