"""`ragkit eval` (retrieval part) on small hand-made datasets in both layouts, and on SciFact."""

from __future__ import annotations

import json

import pytest

from ragkit.errors import RagkitError
from ragkit.evaluate.runner import dataset_engine, evaluate_retrieval, load_dataset

from ..test_cli import ragkit


def _beir(root):
    root.mkdir()
    docs = [("d1", "Rotating API keys", "Press rotate in settings to rotate an API key."),
            ("d2", "Retention", "Logs are retained for thirty days on the starter plan."),
            ("d3", "Backups", "Nightly backups of the data directory are stored in snapshots."),
            ("q3", "Alerting", "Alert rules notify the on-call channel about rotation failures.")]
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                               for i, t, x in docs))
    queries = {"q1": "how to rotate an api key", "q2": "how long are logs retained", "q3": "alert on rotation",
               "q9": "train split only"}
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td3\t1\nq2\td2\t1\n"
                                             "q3\tq3\t1\nq3\tmissing-doc\t1\n")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    return root


def test_beir_layout_graded_split_missing_and_self_hits(tmp_path):
    ds = load_dataset(_beir(tmp_path / "mini"), "test")
    assert [q.qid for q in ds.queries] == ["q1", "q2", "q3"]  # only the split's queries
    assert ds.queries[0].relevant == {"d1": 2, "d3": 1}  # graded
    eng, rep = dataset_engine(ds, None, ["chunker.name=document"], tmp_path / "cache")
    assert rep.documents_total == 4
    r = evaluate_retrieval(eng, ds, k=10, mode="bm25", metrics=("ndcg@10", "recall@10"))
    assert r.warnings == ["1 judged document ids are not in the corpus (e.g. missing-doc); "
                          "they count as unretrievable"]
    row = {x["qid"]: x for x in r.rows}
    assert row["q1"]["retrieved"][0] == "d1" and row["q3"]["retrieved"][0] == "q3"
    dropped = evaluate_retrieval(eng, ds, k=10, mode="bm25", metrics=("recall@10",), drop_self_hits=True)
    assert "q3" not in {x["qid"]: x for x in dropped.rows}["q3"]["retrieved"]
    assert dropped.metrics["recall@10"] < r.metrics["recall@10"]
    # the index is cached by corpus + settings: a second engine reuses it without embedding
    _, again = dataset_engine(ds, None, ["chunker.name=document"], tmp_path / "cache")
    assert not again.committed and again.chunks_embedded == 0
    eng.close()


def test_qa_layout_with_docs_dir_and_stem_ids(tmp_path):
    root = tmp_path / "qa"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "101.txt").write_text("The incubation period of the virus is five days on average.")
    (root / "docs" / "102.txt").write_text("Masks reduce transmission in crowded indoor spaces.")
    (root / "qa.jsonl").write_text(json.dumps({"id": "a", "question": "what is the incubation period",
                                               "reference_answer": "five days", "reference_contexts": [],
                                               "doc_ids": ["101"]}) + "\n")
    ds = load_dataset(root)
    eng, _ = dataset_engine(ds, None, None, tmp_path / "cache")
    r = evaluate_retrieval(eng, ds, k=5, metrics=("hit_rate@1",))
    assert r.metrics["hit_rate@1"] == 1.0 and not r.warnings
    eng.close()


def test_not_a_dataset_and_unknown_metric(tmp_path):
    with pytest.raises(RagkitError, match="not a dataset"):
        load_dataset(tmp_path)
    ds = load_dataset(_beir(tmp_path / "mini"))
    eng, _ = dataset_engine(ds, None, ["chunker.name=document"], tmp_path / "cache")
    with pytest.raises(RagkitError, match="unknown metric 'ndgc@10'"):
        evaluate_retrieval(eng, ds, metrics=("ndgc@10",))
    eng.close()


@pytest.mark.slow
def test_cli_eval_on_scifact_reproduces_the_benchmark(scifact_engine, shared_datasets, tmp_path):
    from _common import CACHE

    from ragkit.evaluate.datasets import load_beir
    from ragkit.evaluate.retrieval import run_queries, score

    ds = load_beir(shared_datasets / "scifact")
    expected = score(ds.qrels, run_queries(scifact_engine, ds, k=100, mode="bm25").run, ("ndcg@10",))["ndcg@10"]
    proc = ragkit("eval", "--dataset", shared_datasets / "scifact", "--cache-dir", CACHE, "--set",
                  "chunker.name=document", "--mode", "bm25", "--json", "--out", tmp_path / "r.json",
                  "--markdown", tmp_path / "r.md")
    data = json.loads(proc.stdout)
    assert data["queries"] == 300 and abs(data["metrics"]["ndcg@10"] - expected) < 1e-9
    assert data["metrics"]["ndcg@10"] >= 0.66
    full = json.loads((tmp_path / "r.json").read_text())
    assert len(full["rows"]) == 300 and set(full["rows"][0]["metrics"]) >= {"ndcg@10", "mrr@10"}
    assert "| ndcg@10 |" in (tmp_path / "r.md").read_text()


def test_cli_eval_on_the_bundled_eval_set_with_its_corpus(tmp_path):
    from _common import ROOT

    proc = ragkit("eval", "--dataset", ROOT / "eval_sets" / "beacon", "--corpus", ROOT / "corpora" / "beacon",
                  "--cache-dir", tmp_path / "cache", "--mode", "bm25", "--metrics", "ndcg@10,hit_rate@5", "--json")
    data = json.loads(proc.stdout)
    assert data["queries"] == 68 and 0.5 < data["metrics"]["ndcg@10"] <= 1.0
    # without --json and with stderr not a terminal (here a pipe): plain progress lines a log file can follow
    plain = ragkit("eval", "--dataset", ROOT / "eval_sets" / "beacon", "--corpus", ROOT / "corpora" / "beacon",
                   "--cache-dir", tmp_path / "cache", "--mode", "bm25", "--metrics", "ndcg@10")
    lines = [line for line in plain.stderr.splitlines() if line.startswith("eval: ")]
    assert len(lines) >= 10 and lines[0].startswith("eval: queries 6/68 (")
    assert lines[-1].startswith("eval: queries 68/68 (") and "left" not in lines[-1]
    bad = ragkit("eval", "--dataset", ROOT / "eval_sets" / "beacon", "--corpus", tmp_path / "nope", check=False)
    assert bad.returncode == 2 and "corpus not found" in bad.stderr
