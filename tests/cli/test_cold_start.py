"""Cold start: a BM25-only query from a fresh process imports no torch / sentence-transformers and loads no model,
and finds the same hits as the in-process engine. A hybrid query embeds through ONNX Runtime (exported once, by the
in-process engine here) and imports no torch either; with the torch query path forced it does load them (so the
check can tell the two apart)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "sentence_transformers", "transformers")

# Runs the ragkit command in this process, then reports which heavy modules were imported (on stderr's last line).
PROBE = """
import json, sys
from ragkit.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"exit": code, "loaded": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


def run_query(index, *args) -> tuple[dict, list[str]]:
    argv = ["ragkit", "query", "how do I rotate an API key?", "--index", str(index), "--json", "--k", "4",
            *map(str, args)]
    proc = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = {argv!r}\n{PROBE}"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    probe = json.loads(proc.stderr.strip().splitlines()[-1])
    assert probe["exit"] == 0, proc.stderr
    return json.loads(proc.stdout), probe["loaded"]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    from ragkit import Engine

    from ..conftest import MINI_DOCS, write_tree

    root = tmp_path_factory.mktemp("cold")
    docs = write_tree(root / "docs", MINI_DOCS)
    with Engine.open(root / "idx") as eng:
        eng.ingest([docs])
        expected = {m: [(h.doc_id, round(h.score, 5)) for h in eng.retrieve("how do I rotate an API key?", k=4,
                                                                             mode=m).hits]
                    for m in ("bm25", "hybrid")}
    return root / "idx", expected


def test_bm25_only_query_loads_no_model(index):
    idx, expected = index
    data, loaded = run_query(idx, "--mode", "bm25", "--no-answer")
    assert loaded == []
    assert [(s["doc_id"], round(s["score"], 5)) for s in data["sources"]] == expected["bm25"]
    assert set(data["sources"][0]["scores"]) == {"bm25"}


def test_bm25_only_from_config_loads_no_model(index, tmp_path):
    idx, expected = index
    cfg = tmp_path / "ragkit.toml"
    cfg.write_text('[retrieval]\nmode = "bm25"\n')
    data, loaded = run_query(idx, "--config", cfg, "--no-answer")
    assert loaded == []
    assert [(s["doc_id"], round(s["score"], 5)) for s in data["sources"]] == expected["bm25"]


def test_hybrid_embeds_through_onnx_without_torch(index):
    idx, expected = index
    data, loaded = run_query(idx, "--mode", "hybrid", "--no-answer")
    assert loaded == []
    assert [(s["doc_id"], round(s["score"], 5)) for s in data["sources"]] == expected["hybrid"]


def test_torch_query_path_and_answers_load_the_model(index):
    idx, expected = index
    data, loaded = run_query(idx, "--mode", "hybrid", "--no-answer", "--set", "embedder.query_runtime=torch")
    assert {"torch", "sentence_transformers"} <= set(loaded)
    assert [s["doc_id"] for s in data["sources"]] == [d for d, _ in expected["hybrid"]]
    # the extractive answer embeds sentences: its model loads before the query, even for BM25
    data, loaded = run_query(idx, "--mode", "bm25")
    assert "sentence_transformers" in loaded and data["answer"]
    assert "total" in data["timings"]


def test_python_api_bm25_retrieval_loads_no_model(index):
    idx, expected = index
    code = f"""
import json, sys
from ragkit import Engine
with Engine.open({str(idx)!r}) as eng:
    hits = eng.retrieve("how do I rotate an API key?", k=4, mode="bm25").hits
print(json.dumps({{"hits": [(h.doc_id, round(h.score, 5)) for h in hits],
                  "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout)
    assert out["loaded"] == [] and [tuple(h) for h in out["hits"]] == expected["bm25"]
