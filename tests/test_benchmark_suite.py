"""The benchmark suite's score guard (benchmarks/suite.py, benchmarks/expected.toml) and benchmarks/run.py on a tiny
BEIR directory made here: a score below its expected value minus the tolerance fails, naming the pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

import protocol  # noqa: E402
from suite import EXPECTED, PIPELINES, Expected, check_scores, load_expected  # noqa: E402


def test_expected_toml_names_known_pipelines_with_a_source():
    expected = load_expected(EXPECTED)
    assert {e.dataset for e in expected} >= {"scifact"}
    for e in expected:
        assert e.pipeline in PIPELINES
        assert 0 < e.tolerance < 0.05 and 0 < e.floor < e.ndcg10 <= 1
        source = e.source.split(" ")[0]
        assert (ROOT / source).is_file(), e


def test_expected_scores_equal_the_results_on_record():
    record = json.loads((ROOT / "benchmarks" / "results" / "scifact_retrieval.json").read_text())["results"]
    for e in load_expected(EXPECTED):
        if e.dataset == "scifact":
            assert e.ndcg10 == record[e.pipeline]["ndcg@10"], e.pipeline


def test_a_planted_lower_score_fails_and_names_the_pipeline():
    expected = [Expected("scifact", "bm25", 0.68, 0.01, "x"), Expected("scifact", "dense", 0.64, 0.01, "x")]
    assert check_scores({"scifact": {"bm25": 0.675, "dense": 0.631}}, expected) == []  # within tolerance
    failures = check_scores({"scifact": {"bm25": 0.6699, "dense": 0.64}}, expected)
    assert len(failures) == 1 and failures[0].startswith("scifact / bm25:") and "0.6699" in failures[0]
    assert check_scores({"nfcorpus": {"bm25": 0.1}}, expected) == []  # only what is expected is checked


def test_unknown_pipeline_in_expected_toml_is_an_error(tmp_path):
    path = tmp_path / "expected.toml"
    path.write_text('[datasets.scifact.pipelines]\nbm42 = { ndcg10 = 0.5 }\n')
    with pytest.raises(ValueError, match="unknown pipeline 'bm42'"):
        load_expected(path)


def test_tolerance_is_taken_per_entry_then_dataset_then_file(tmp_path):
    path = tmp_path / "expected.toml"
    path.write_text('tolerance = 0.02\n[datasets.a]\ntolerance = 0.03\n[datasets.a.pipelines]\n'
                    'bm25 = { ndcg10 = 0.5 }\ndense = { ndcg10 = 0.5, tolerance = 0.001 }\n'
                    '[datasets.b.pipelines]\nbm25 = { ndcg10 = 0.5 }\n')
    got = {(e.dataset, e.pipeline): e.tolerance for e in load_expected(path)}
    assert got == {("a", "bm25"): 0.03, ("a", "dense"): 0.001, ("b", "bm25"): 0.02}


def test_rrf_of_the_raw_floor():
    # d2 is 2nd and 1st: 1/62 + 1/61 beats d1's 1/61 alone
    assert protocol.rrf([["d1", "d2"], ["d2", "d3"]], k=3) == ["d2", "d1", "d3"]
    assert protocol.rrf([["a", "b", "c"]], k=2) == ["a", "b"]


def tiny_beir(root: Path) -> Path:
    docs = [("d1", "Rotating keys", "Rotate an API key in the settings page."),
            ("d2", "Backups", "Back up the data directory every night."),
            ("d3", "Cars", "Fixing vehicles at the garage."),
            ("d4", "Retention", "Logs are retained for thirty days.")]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n"
                                               for d, t, x in docs))
    queries = [("q1", "rotate api key", "d1"), ("q2", "nightly backup of the data directory", "d2"),
               ("q3", "automobile repair", "d3")]  # q3 shares no word with d3: BM25 cannot find it
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t, _ in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                             "".join(f"{q}\t{d}\t1\n" for q, _, d in queries))
    return root


@pytest.mark.slow
def test_run_exits_nonzero_naming_the_pipeline_below_expected(tmp_path):
    data = tiny_beir(tmp_path / "tinyset")
    expected = tmp_path / "expected.toml"
    expected.write_text("[datasets.tinyset.pipelines]\nbm25 = { ndcg10 = 0.99, tolerance = 0.01 }\n")
    out = tmp_path / "out.json"
    skip = [p for p in PIPELINES if p != "bm25"]
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--dataset", str(data),
                           "--expected", str(expected), "--out", str(out), "--warmup", "1", "--cold-build",
                           "--skip", *skip],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "BELOW EXPECTED: tinyset / bm25: nDCG@10" in proc.stderr
    result = json.loads(out.read_text())
    rk = result["datasets"]["tinyset"]["systems"]["ragkit"]
    assert list(rk["scored"]) == ["bm25"]
    assert rk["scored"]["bm25"]["metrics"]["ndcg@10"] < 0.98 and rk["scored"]["bm25"]["metrics"]["mrr@10"] > 0
    assert rk["builds"]["index"]["documents"] == 4 and rk["peak_rss_mb"] > 0
    assert result["expected_check"]["failures"] and result["load_avg_before"] and result["host"]["cores"]


def test_run_rejects_a_directory_that_is_not_beir(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--dataset", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "not a BEIR directory (no qrels/test.tsv)" in proc.stderr


def test_suites_name_their_datasets(tmp_path, shared_datasets):
    import run

    assert run.dataset_roots("quick", None) == [run.DATASETS / "scifact"]
    full = run.dataset_roots("full", None)
    assert {p.name for p in full} >= {"scifact", "nfcorpus", "hotpotqa_dev500"}
    assert all((p / "qrels" / "test.tsv").is_file() for p in full)
    assert run.dataset_roots(None, tmp_path) == [tmp_path.resolve()]


def test_peers_read_the_same_document_texts_as_ragkit(tmp_path):
    """Every peer gets a document's text exactly as ragkit's BEIR loader makes it (one document = one chunk)."""
    from ragkit.ingest.beir import BeirLoader

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in (
        {"_id": "a", "title": " Title ", "text": "Body text."}, {"_id": 7, "title": "", "text": "No title."},
        {"_id": "c", "title": "Only a title", "text": ""})))
    ragkit_docs = [(d.doc_id, d.text) for d in BeirLoader().load(corpus, "corpus")]
    assert protocol.load_corpus(corpus) == ragkit_docs == [("a", "Title\n\nBody text."), ("7", "No title."),
                                                           ("c", "Only a title")]
