"""A small two-tenant corpus (same topics and vocabulary, different facts), indexed once per session, and real
uvicorn servers on 127.0.0.1 over it (in this process, in a thread; the CLI test starts its own process)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port, write_tree

TENANTS = {"acme": "zephyr", "globex": "quasar"}  # tenant -> a codename only its documents use
TOPICS = ["API keys", "log retention", "nightly backups", "alert routing", "dashboard sharing", "invoices",
          "single sign-on", "rate limits", "webhooks", "data export"]
FACTS = {"acme": ["14 days", "the blue console", "Lisbon region", "three approvers", "port 7443"],
         "globex": ["90 days", "the green console", "Osaka region", "two approvers", "port 9443"]}


def tenant_docs() -> dict[str, str]:
    docs = {}
    for tenant, code in TENANTS.items():
        for i, topic in enumerate(TOPICS):
            fact = FACTS[tenant][i % len(FACTS[tenant])]
            other = FACTS[tenant][(i + 2) % len(FACTS[tenant])]
            docs[f"{tenant}/{topic.replace(' ', '-')}.md"] = f"""---
title: {topic.title()} ({tenant})
tenant: {tenant}
product: {"cloud" if i % 2 else "selfhosted"}
---
# {topic.title()}

{code.title()} handles {topic} for every workspace. To change {topic}, open {fact} in the {code} settings page and
press Save. Changes to {topic} need {other} and are recorded in the audit log.

Questions about {topic} limits, {topic} errors and {topic} configuration go to the {code} support desk.
"""
    return docs


def tenant_queries(tenant: str, n: int = 200, seed: int = 7) -> list[str]:
    """Queries that share the corpus vocabulary, some naming the other tenant's codename or facts."""
    rng = random.Random(f"{seed}-{tenant}")
    words = ["how do I change", "where are", "limits for", "errors with", "configure", "who approves",
             "audit log of", "settings page for", "support desk", "workspace"]
    extras = [*TENANTS.values(), *(f for fs in FACTS.values() for f in fs)]
    out = []
    for i in range(n):
        q = f"{rng.choice(words)} {rng.choice(TOPICS)}"
        if i % 3 == 0:
            q += " " + rng.choice(extras)
        out.append(q)
    return out


@pytest.fixture(scope="session")
def tenant_index(tmp_path_factory) -> Path:
    from ragkit import Engine

    root = tmp_path_factory.mktemp("tenants")
    corpus = write_tree(root / "docs", tenant_docs())
    with Engine.open(root / "idx") as eng:
        report = eng.ingest([corpus])
    assert report.documents_total == len(TENANTS) * len(TOPICS)
    return root / "idx"


KEYS: dict[str, str] = {}  # name -> plaintext key (only the test knows them; the server gets hashes)


@pytest.fixture(scope="session")
def keyring():
    from ragkit.serve.auth import KeyRing, hash_key, new_key

    entries = []
    for name, extra in {"acme": {"tenant": "acme"}, "globex": {"tenant": "globex"},
                        "acme-retrieve-only": {"tenant": "acme", "allow": ["retrieve"]},
                        "acme-limited": {"tenant": "acme", "rpm": 2},
                        "acme-cloud": {"tenant": "acme", "filter": ["tenant=acme", "product=cloud"]}}.items():
        KEYS[name] = new_key()
        entries.append({"name": name, "hash": hash_key(KEYS[name], "scrypt" if name == "globex" else "sha256"),
                        **extra})
    return KeyRing.from_dict({"keys": entries})


@contextmanager
def running(app) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 120
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


LIMITS = dict(max_k=20, max_query_chars=300, max_body_bytes=4096, max_tokens=64, max_messages=8)


@pytest.fixture(scope="session")
def tenant_engine(tenant_index):
    from ragkit import Engine

    eng = Engine.open(tenant_index)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def server(tenant_engine, keyring) -> Iterator[str]:
    """The tenant index behind API keys, with small limits; yields the base URL (no /v1)."""
    from ragkit.config import ServeConfig
    from ragkit.serve import create_app

    app = create_app(tenant_engine, keyring, settings=ServeConfig(**LIMITS))
    with running(app) as url:
        yield url


@contextmanager
def clients_for(server: str) -> Iterator[dict]:
    """An httpx client per API key name (and None: no key) on the server at ``server``."""
    import httpx

    def client(key: str | None = "acme") -> httpx.Client:
        headers = {"Authorization": f"Bearer {KEYS[key]}"} if key else {}
        return httpx.Client(base_url=server, headers=headers, timeout=60)

    clients = {name: client(name) for name in KEYS}
    clients[None] = client(None)
    try:
        yield clients
    finally:
        for c in clients.values():
            c.close()


@pytest.fixture(scope="session")
def http(server):
    with clients_for(server) as clients:
        yield clients


@pytest.fixture(scope="session")
def pg_http(pg_server, keyring, tmp_path_factory):
    """The same tenant corpus and keys, served from a postgres index."""
    from ragkit import Engine
    from ragkit.config import ServeConfig
    from ragkit.serve import create_app

    url, made = pg_server
    made.append("serve_tenants")
    corpus = write_tree(tmp_path_factory.mktemp("pg-tenants") / "docs", tenant_docs())
    eng = Engine.open(f"{url}{'&' if '?' in url else '?'}schema=serve_tenants")
    assert eng.ingest([corpus]).documents_total == len(TENANTS) * len(TOPICS)
    with running(create_app(eng, keyring, settings=ServeConfig(**LIMITS))) as base, clients_for(base) as clients:
        yield clients
    eng.close()
