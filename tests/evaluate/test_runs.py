"""Runs: hits -> document run, the ranx form, TREC run files, and the dataset's document ids for an index."""

from __future__ import annotations

import gzip

from ragkit.evaluate.datasets import Query
from ragkit.evaluate.runs import NO_DOC, RunResult, doc_key_for, doc_run, for_ranx, read_trec_run, write_trec_run
from ragkit.index.store import DocRecord
from ragkit.types import Chunk, Hit


def hit(doc: str, score: float, pos: int = 0) -> Hit:
    return Hit(Chunk(f"{doc}#{pos}", doc, "text", pos), score)


HITS = [hit("a.txt", 3.0), hit("b.txt", 2.0), hit("a.txt", 1.5, 1), hit("c.txt", 1.0)]


def test_a_document_scores_its_best_chunk_or_the_sum_of_its_chunks():
    assert doc_run(HITS) == {"a.txt": 3.0, "b.txt": 2.0, "c.txt": 1.0}
    assert list(doc_run(HITS)) == ["a.txt", "b.txt", "c.txt"]  # best first
    assert doc_run(HITS, level="sum")["a.txt"] == 4.5


def test_doc_key_and_exclude_apply_to_the_mapped_id():
    stem = lambda d: d.removesuffix(".txt")  # noqa: E731
    assert doc_run(HITS, stem, exclude="b") == {"a": 3.0, "c": 1.0}


def test_ranx_form_gives_an_empty_query_a_placeholder():
    assert for_ranx({"q1": {}, "q2": {"a": 1.0}}) == {"q1": {NO_DOC: 0.0}, "q2": {"a": 1.0}}
    assert RunResult({"q1": {}}, {"q1": 0.1}).run == {"q1": {NO_DOC: 0.0}}


def test_trec_run_files_round_trip_exactly(tmp_path):
    run = {"q1": {"b": 0.1 + 0.2, "a": 2.0}, "q2": {"c": -1.0}}
    path = write_trec_run(tmp_path / "runs" / "x.trec.gz", run, "x")
    lines = gzip.open(path, "rt").read().splitlines()
    assert lines[0] == "q1 Q0 a 1 2.0 x" and lines[1].split()[3] == "2"
    assert read_trec_run(path) == run
    plain = tmp_path / "plain.trec"
    plain.write_text("\n".join(lines) + "\n")
    assert read_trec_run(plain) == run


class View:
    """A read view holding these documents (the part of a StoreReader a run needs)."""

    def __init__(self, ids):
        self.ids = ids

    def documents(self):
        return [DocRecord(d, d, d, {}) for d in self.ids]


def test_doc_key_maps_file_names_to_the_stems_a_qa_set_judges():
    queries = [Query("1", "x", {"1545": 1})]
    key = doc_key_for(View(["1545.txt", "7.txt"]), queries)
    assert key is not None and key("1545.txt") == "1545"
    assert doc_key_for(View(["1545"]), queries) is None  # ids already agree
    assert doc_key_for(None, queries) is None  # no index yet
