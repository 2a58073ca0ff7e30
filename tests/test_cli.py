"""The `ragkit` command as a user runs it (real subprocesses, real model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def ragkit(*args, cwd=None, check=True):
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "ragkit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory):
    from .conftest import MINI_DOCS, write_tree

    root = tmp_path_factory.mktemp("cli")
    docs = write_tree(root / "docs", MINI_DOCS)
    (docs / "bad.txt").write_bytes(b"\x00\x00binary")
    proc = ragkit("ingest", docs, "--index", root / "idx", "--json")
    return root, json.loads(proc.stdout)


def test_ingest_json_summary(cli_index):
    root, rep = cli_index
    assert rep["files_seen"] == 5 and rep["files_read"] == 4 and rep["committed"]
    assert rep["failed"] == [{"path": str(root / "docs" / "bad.txt"),
                              "reason": "binary content (NUL bytes); not a text file"}]


def test_ingest_human_summary_and_strict(cli_index, tmp_path):
    root, _ = cli_index
    proc = ragkit("ingest", root / "docs", "--index", root / "idx")
    assert "5 seen · 0 read · 4 unchanged · 0 skipped · 1 failed" in proc.stdout
    assert "(unchanged)" in proc.stdout and "bad.txt: binary content" in proc.stdout
    strict = ragkit("ingest", root / "docs", "--index", root / "idx", "--strict", check=False)
    assert strict.returncode == 1


def test_query_json_explain(cli_index):
    root, _ = cli_index
    proc = ragkit("query", "how do I rotate an API key?", "--index", root / "idx", "--json", "--k", "3",
                  "--filter", "product=cloud")
    data = json.loads(proc.stdout)
    assert [s["doc_id"] for s in data["sources"]][0] == "cloud/api-keys.md"
    assert all(s["metadata"]["product"] == "cloud" for s in data["sources"])
    assert {"bm25", "dense", "rrf"} <= set(data["sources"][0]["scores"])
    assert "[1]" in data["answer"] and data["citations"][0]["doc_id"] == "cloud/api-keys.md"
    assert "total" in data["timings"]


def test_query_table_output(cli_index):
    root, _ = cli_index
    proc = ragkit("query", "backup snapshots directory", "--index", root / "idx", "--explain", "--mode", "bm25")
    assert "selfhosted/backup.html" in proc.stdout and "Answer" in proc.stdout
    assert "stages: bm25 -> generator extractive" in proc.stdout


def test_plugins_listing():
    proc = ragkit("plugins")
    for name in ("sentence", "bm25s", "rank-bm25", "faiss", "rrf", "minmax", "zscore", "extractive"):
        assert name in proc.stdout
    rows = json.loads(ragkit("plugins", "--json").stdout)
    chunker = next(r for r in rows if r["stage"] == "chunker" and r["name"] == "sentence")
    assert {p["name"]: p["default"] for p in chunker["params"]} == {"chunk_size": 200, "chunk_overlap": 20}


@pytest.mark.parametrize("args,needle", [
    (["query", "x", "--index", "{tmp}/none"], "no index here yet"),
    (["query", "x", "--index", "{tmp}/new", "--set", "chunker.name=nope"], "unknown chunker plugin 'nope'"),
    (["ingest", "{tmp}", "--index", "{tmp}/i", "--config", "{tmp}/missing.toml"], "config file not found"),
    (["query", "x", "--index", "{tmp}/foreign"], "not a ragkit index"),
    (["query", "x", "--index", "{idx}", "--filter", "product"], "expected field=value"),
    (["query", "  ", "--index", "{idx}"], "the question is empty"),
])
def test_errors_are_one_line(tmp_path, cli_index, args, needle):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "file.txt").write_text("x")
    args = [a.format(tmp=tmp_path, idx=cli_index[0] / "idx") for a in args]
    proc = ragkit(*args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr


def test_help_is_complete():
    top = ragkit("--help").stdout
    for cmd in ("ingest", "query", "plugins", "info", "eval"):
        assert cmd in top
        sub = ragkit(cmd, "--help").stdout
        assert "Usage" in sub and "--help" in sub
    assert "--sync" in ragkit("ingest", "--help").stdout and "--explain" in ragkit("query", "--help").stdout


def test_info(cli_index):
    root, _ = cli_index
    data = json.loads(ragkit("info", "--index", root / "idx", "--json").stdout)
    assert data["documents"] == 4 and data["generation"] == "g000001"
    assert data["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2" and data["dim"] == 384
    assert data["config"]["chunker"]["name"] == "sentence"
    assert "generation" in ragkit("info", "--index", root / "idx").stdout


def test_query_stream_json_lines_with_a_local_llm(cli_index, smollm2_path):
    root, _ = cli_index
    proc = ragkit("query", "How long are logs retained on the Enterprise plan?", "--index", root / "idx", "--k", "3",
                  "--stream", "--json", "--set", "generator.name=llama-cpp", "--set", f"generator.model={smollm2_path}",
                  "--set", "generator.max_tokens=16", "--set", "generator.n_ctx=1024")
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    deltas, final = lines[:-1], lines[-1]
    assert len(deltas) > 1 and all(d["type"] == "delta" for d in deltas)
    assert final["type"] == "answer" and final["usage"]["prompt_tokens"] > 0
    assert 1 <= final["usage"]["completion_tokens"] <= 16
    assert {"generate", "generate:llm", "first_token", "total"} <= set(final["timings"])


def test_query_stream_human_output_and_explain(cli_index):
    root, _ = cli_index
    proc = ragkit("query", "How long are logs retained on the Enterprise plan?", "--index", root / "idx", "--k", "3",
                  "--stream", "--explain")
    assert proc.stdout.startswith("Answer ") and "400 days" in proc.stdout.splitlines()[0]
    assert "[1] cloud/retention.txt" in proc.stdout and "stages: " in proc.stdout


@pytest.mark.parametrize("args,needle", [
    (["query"], "Missing argument"),
    (["bogus"], "No such command 'bogus'"),
    (["eval"], "Missing option '--dataset'"),
    (["query", "x", "--k", "many"], "Invalid value for '--k'"),
])
def test_usage_errors_exit_2_without_a_traceback(args, needle):
    proc = ragkit(*args, check=False)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_postgres_index_named_by_flag_or_by_the_config(pg_index, tmp_path):
    """`--store URL` (alias of --index) and `[store] url` in the config name the same postgres index; the
    password in a URL is never printed."""
    from .conftest import MINI_DOCS, write_tree

    url = pg_index().replace("postgres@", "postgres:hunter2@")  # the test server trusts any password
    docs = write_tree(tmp_path / "docs", MINI_DOCS)
    report = json.loads(ragkit("ingest", docs, "--store", url, "--json").stdout)
    assert report["documents_total"] == 4 and report["committed"]
    config = tmp_path / "ragkit.toml"
    config.write_text(f'[store]\nurl = "{url}"\n', encoding="utf-8")
    proc = ragkit("info", "--config", config, "--json")
    info = json.loads(proc.stdout)
    assert info["documents"] == 4 and info["store"]["store"] == "postgres"
    assert info["store"]["schema_version"] == info["store"]["ragkit_schema_version"]
    assert "hunter2" not in proc.stdout and "***" in info["index"]
    empty = ragkit("query", "anything", "--index", pg_index().replace("postgres@", "postgres:hunter2@"), check=False)
    assert empty.returncode != 0 and "no index here yet" in empty.stderr and "hunter2" not in empty.stderr
