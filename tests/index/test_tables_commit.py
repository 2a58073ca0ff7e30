"""Tables are part of the index commit: a changed document replaces its tables, --sync drops them, and a writer
killed (SIGKILL) with the next generation fully staged leaves the previous tables exactly as they were."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ragkit import Engine
from ragkit.plugins import registry


@pytest.fixture(autouse=True)
def table_loader():
    """The ``table`` loader, also where the installed entry points predate it (an editable install made
    before it existed; ``pip install -e .`` registers it)."""
    from ragkit.ingest.table_files import TableFileLoader

    if "table" not in registry.names("loader"):
        registry.register(TableFileLoader)
        yield
        registry._classes.pop(("loader", "table"), None)
    else:
        yield

PRICES = """---
title: Prices
tenant: acme
---
# Prices

## Plans

| Plan | Price | Seats |
|------|-------|-------|
| Team | $299 | 25 |
| Business | $1,200 | 100 |
"""


def _rows(index):
    with Engine.open(index) as eng:
        view = eng.reader().tables()
        return {t.name: view.rows(t.name) for t in eng.tables()}


def test_tables_follow_their_document_and_survive_a_sigkill(tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    (docs / "prices.md").write_text(PRICES, encoding="utf-8")
    (docs / "nodes.csv").write_text("Node,CPUs\nn1,8\nn2,16\n", encoding="utf-8")
    with Engine.open(index, overrides=["ingest.tables=true"]) as eng:
        report = eng.ingest([docs])
        assert report.tables_added == 2
        [t] = eng.tables("tenant=acme")
        assert t.name == "prices__plans" and t.metadata["tenant"] == "acme" and t.heading == ["Prices", "Plans"]
        hits = eng.retrieve("table of plans price seats", k=3, filter="table?").hits
        assert hits and hits[0].chunk.metadata["table"] == "prices__plans"
    before = _rows(index)
    assert before["prices__plans"] == [["Team", 299, 25], ["Business", 1200, 100]]

    # the next version fully staged, then SIGKILL before it becomes current: the old tables are intact
    (docs / "prices.md").write_text(PRICES.replace("$299", "$349"), encoding="utf-8")
    env = {**os.environ, "RAGKIT_CRASH_AT": "before-commit"}
    proc = subprocess.run([sys.executable, "-m", "ragkit", "ingest", str(docs), "--index", str(index),
                           "--set", "ingest.tables=true"], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert _rows(index) == before

    # a real commit replaces the changed document's table and keeps the unchanged file's
    with Engine.open(index, overrides=["ingest.tables=true"]) as eng:
        assert eng.ingest([docs]).committed
    after = _rows(index)
    assert after["prices__plans"][0] == ["Team", 349, 25] and after["nodes"] == before["nodes"]

    (docs / "nodes.csv").unlink()
    with Engine.open(index, overrides=["ingest.tables=true"]) as eng:
        eng.ingest([docs], sync=True)
    assert set(_rows(index)) == {"prices__plans"}
