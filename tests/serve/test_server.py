"""The `ragkit serve` command: loopback-only without keys, a clear start-up line, --new-key, a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.conftest import ROOT, free_port


def ragkit(*args, **kw):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "ragkit", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300, **kw)


def test_refuses_a_public_address_without_keys(tmp_path):
    r = ragkit("serve", "--index", str(tmp_path / "idx"), "--host", "0.0.0.0")
    assert r.returncode == 2
    assert r.stderr.startswith("error: serve: refusing to listen on 0.0.0.0 without API keys")
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_keys_file_is_a_one_line_error(tmp_path):
    (tmp_path / "keys.toml").write_text('[[keys]]\nname = "a"\nkey = "plaintext"\ntenant = "t"\n')
    r = ragkit("serve", "--index", str(tmp_path / "idx"), "--api-keys", str(tmp_path / "keys.toml"))
    assert r.returncode == 2 and "store the key's hash, not the key" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_new_key_prints_a_key_and_an_entry_that_accepts_it(tmp_path):
    from ragkit.serve.auth import KeyRing

    r = ragkit("serve", "--new-key", "acme")
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    assert key not in r.stderr
    (tmp_path / "keys.toml").write_text(r.stderr)  # stderr is the keys.toml entry: `2>> keys.toml`
    assert KeyRing.load(tmp_path / "keys.toml").authenticate(key).tenant == "acme"


def test_without_keys_the_banner_says_loopback_only(tmp_path):
    from ragkit.serve.server import is_loopback, prepare

    _, settings, banner = prepare(tmp_path / "idx", None, [], None, None, None)
    assert settings.host == "127.0.0.1"
    assert any("no API keys configured: listening on loopback only" in line for line in banner)
    assert is_loopback("::1") and is_loopback("localhost") and not is_loopback("192.168.1.4")


def test_serve_process_with_keys(tenant_index, tmp_path):
    from ragkit.serve.auth import hash_key, keys_toml_entry, new_key

    key = new_key()
    (tmp_path / "keys.toml").write_text(keys_toml_entry("web", "globex", hash_key(key)))
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ragkit", "serve", "--index", str(tenant_index), "--port",
                             str(port), "--api-keys", str(tmp_path / "keys.toml")], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.time() < deadline, "server did not start"
            time.sleep(0.3)
        r = httpx.post(url + "/v1/retrieve", json={"query": "invoices", "k": 3},
                       headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()["hits"][0]["doc_id"] == "globex/invoices.md"
        assert httpx.post(url + "/v1/retrieve", json={"query": "invoices"}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(30)
    banner = proc.stderr.read()
    assert f"ragkit serve: http://127.0.0.1:{port}" in banner and "tenants: globex" in banner
