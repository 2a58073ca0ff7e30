"""Shared fixtures. The real MiniLM model is used everywhere (loaded once per process and shared);
the SciFact index is built once per machine under .cache/ and reused (see benchmarks/_common.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

MINI_DOCS = {
    "cloud/api-keys.md": """---
title: Rotating API keys
product: cloud
date: 2024-05-01
status: current
---
# Rotating API keys

Open Settings > API keys and press Rotate next to the key. The previous key keeps working for 24 hours
so that running agents can switch over. Rotation is recorded in the audit log.

## Scopes

Each key has a scope: ingest-only, read-only or admin.
""",
    "selfhosted/api-keys.md": """---
title: API keys on self-hosted Beacon
product: selfhosted
date: 2024-03-01
status: current
---
# API keys on self-hosted Beacon

Run `beacon keys rotate --key-id ID` on the server. The zanzibar flag disables the grace period entirely.
""",
    "cloud/retention.txt": "Log retention on the cloud edition is 30 days on the Starter plan and 400 days on "
                           "the Enterprise plan. Metrics are kept for 13 months.\n",
    "selfhosted/backup.html": """<html><head><title>Backups</title><meta name="product" content="selfhosted">
<style>body{color:red}</style><script>var tracking = "zzz-script-text";</script></head>
<body><nav>Home | Docs | Pricing</nav><main><h1>Backups</h1><p>Back up the data directory nightly with
<code>beacon backup create</code>. Snapshots are stored in /var/lib/beacon/snapshots.</p>
<table><tr><th>Tier</th><th>Retention</th></tr><tr><td>daily</td><td>7 snapshots</td></tr></table></main>
<footer>Copyright Tidewater Labs. Cookie settings.</footer></body></html>
""",
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def mini_corpus(tmp_path) -> Path:
    return write_tree(tmp_path / "docs", MINI_DOCS)


@pytest.fixture
def mini_index(tmp_path, mini_corpus):
    from ragkit import Engine

    eng = Engine.open(tmp_path / "idx")
    eng.ingest([mini_corpus])
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def embedder():
    from ragkit.plugins import registry

    emb = registry.create("embedder", "sentence-transformers")
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def budget(embedder):
    return embedder.token_budget()


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    path = ROOT.parent / "shared" / "datasets"
    if not (path / "scifact" / "corpus.jsonl.gz").exists():
        pytest.fail(f"offline datasets not found at {path} (CI places ../shared beside the checkout)")
    return path


@pytest.fixture(scope="session")
def scifact_engine(shared_datasets):
    """SciFact indexed with one chunk per document; built once, cached under .cache/indexes."""
    from _common import beir_index

    eng, _ = beir_index("scifact")
    eng.warm_up()
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def beacon_engine(tmp_path_factory):
    from ragkit import Engine

    eng = Engine.open(tmp_path_factory.mktemp("beacon") / "idx")
    eng.ingest([ROOT / "corpora" / "beacon"])
    yield eng
    eng.close()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- local language models (GGUF via llama-cpp-python; .ci/run fetches them with ../shared/models/fetch.sh) -----

def gguf(name: str) -> Path:
    from ragkit.llm.models import offline_model_path

    path = offline_model_path(name)
    if path is None:
        pytest.fail(f"offline model {name!r} not fetched: run ../shared/models/fetch.sh {name}")
    return path


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """SmolLM2-135M: fast and weak; for code paths, never for quality claims."""
    return gguf("smollm2")


@pytest.fixture(scope="session")
def qwen05_path() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct: the default local generator."""
    return gguf("qwen0.5b")


@pytest.fixture(scope="session")
def small_llm(smollm2_path):
    from ragkit.llm.llama_cpp import LlamaCppLLM

    return LlamaCppLLM(str(smollm2_path), n_ctx=2048).warm_up()


@pytest.fixture(scope="session")
def qwen_llm(qwen05_path):
    from ragkit.llm.llama_cpp import LlamaCppLLM

    return LlamaCppLLM(str(qwen05_path), n_ctx=4096).warm_up()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server(smollm2_path):
    """A real llama.cpp OpenAI-compatible server (llama_cpp.server) on 127.0.0.1 serving SmolLM2 as "smollm2".
    Yields its base URL (".../v1")."""
    import subprocess
    import time
    import urllib.request

    port = free_port()
    log = open(ROOT / ".pytest_cache" / f"llama-server-{port}.log", "w") if (ROOT / ".pytest_cache").is_dir() \
        else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
                             "--model_alias", "smollm2"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(base + "/models", timeout=2).read()
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"llama_cpp.server did not start on port {port}")
            time.sleep(0.5)
    yield base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- a generator that only holds an LLM (what LLM-backed generators offer other stages via Resources.llm) ------


from ragkit.plugins import Plugin, registry  # noqa: E402
from ragkit.types import Answer  # noqa: E402


class LLMGenerator(Plugin):
    """A generator exposing an LLM object (what an LLM-backed generator offers the other stages)."""

    stage, name = "generator", "test-llm-holder"
    the_llm = None

    @property
    def llm(self):
        return type(self).the_llm

    def answer(self, query, hits):
        return Answer(query, "", [], hits)


@pytest.fixture
def llm_generator():
    registry.register(LLMGenerator)
    yield LLMGenerator
    LLMGenerator.the_llm = None
    registry._classes.pop(("generator", LLMGenerator.name), None)


# --- PostgreSQL with pgvector (the postgres store) -------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_server():
    """The URL of a PostgreSQL server with pgvector for this session: RAGKIT_TEST_PG_URL, else a throwaway one
    on 127.0.0.1 (ragkit.testing.postgres). A server that cannot start fails the tests that need it."""
    from ragkit.testing.postgres import TestServerError, test_server_url

    block = test_server_url()
    try:
        url = block.__enter__()
    except TestServerError as exc:
        pytest.fail(f"no PostgreSQL for the postgres-store tests: {exc}", pytrace=False)
    made: list[str] = []
    yield url, made
    if os.environ.get("RAGKIT_TEST_PG_URL"):  # a user's server: leave it as it was
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for schema in made:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    block.__exit__(None, None, None)


@pytest.fixture
def pg_index(pg_server):
    """A function returning the URL of a new, empty postgres index (its own schema) on the session's server."""
    import uuid

    url, made = pg_server

    def new() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        made.append(schema)
        return f"{url}{'&' if '?' in url else '?'}schema={schema}"

    return new


@pytest.fixture(params=["embedded", "postgres"])
def index_location(request, tmp_path):
    """A function returning the location of a new, empty index of each store: a directory, a postgresql:// URL."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_index")
    made = iter(range(1000))
    return lambda: str(tmp_path / f"index-{next(made)}")
