"""Engine behaviour end to end with the real model: ingest, incremental updates, filters, answers. Every test that
touches the store runs on both (``idx``: a directory, then a postgresql:// URL). Embedded only, because the store
plays no part in what they check: the plugin-error test (opens no index), the refused huge file and the duplicate
document ids (decided while reading files, before the writer) and the post-stage filter order (after retrieval)."""

from __future__ import annotations

import pytest

from ragkit import Engine
from ragkit.errors import ConfigError, IndexConfigMismatch, PluginError


@pytest.fixture
def idx(index_location):
    """A new, empty index of each store."""
    return index_location()


@pytest.fixture
def embedded_idx(tmp_path):
    return tmp_path / "idx"


@pytest.fixture
def mini_index(idx, mini_corpus):
    eng = Engine.open(idx)
    eng.ingest([mini_corpus])
    yield eng
    eng.close()


def test_ingest_and_query(mini_index):
    st = mini_index.stats()
    assert st["documents"] == 4 and st["chunks"] >= 4
    ans = mini_index.query("how do I rotate an API key in the cloud?", k=3)
    assert ans.sources[0].doc_id == "cloud/api-keys.md"
    assert "[1]" in ans.text and ans.citations[0].doc_id == "cloud/api-keys.md"
    assert ans.sources[0].chunk.metadata["source"].endswith("cloud/api-keys.md")


def test_explain_scores_per_stage(mini_index):
    r = mini_index.retrieve("beacon keys rotate", k=4)
    top = r.hits[0]
    assert set(top.scores) >= {"bm25", "dense", "rrf"}
    assert top.ranks["rrf"] == 1
    assert r.trace[0] == "bm25 + dense -> fusion rrf"


def test_reingest_unchanged_embeds_nothing(tmp_path, mini_corpus, idx):
    eng = Engine.open(idx)
    first = eng.ingest([mini_corpus])
    assert first.committed and first.chunks_embedded == first.chunks_total
    again = eng.ingest([mini_corpus])
    assert not again.committed and again.chunks_embedded == 0 and again.files_read == 0
    assert again.files_unchanged == 4 and again.generation == first.generation


def test_changed_file_replaced_and_only_it_embedded(tmp_path, mini_corpus, idx):
    eng = Engine.open(idx)
    eng.ingest([mini_corpus])
    (mini_corpus / "cloud" / "retention.txt").write_text(
        "Log retention on the cloud edition is now 90 days on the Starter plan.\n", encoding="utf-8")
    rep = eng.ingest([mini_corpus])
    assert rep.committed and rep.files_read == 1 and rep.documents_updated == 1 and rep.documents_added == 0
    assert rep.chunks_embedded == 1
    hits = eng.retrieve("retention starter plan days", k=1, mode="bm25").hits
    assert "90 days" in hits[0].chunk.text


def test_sync_removes_deleted_files_and_only_with_sync(tmp_path, mini_corpus, idx):
    eng = Engine.open(idx)
    eng.ingest([mini_corpus])
    (mini_corpus / "selfhosted" / "backup.html").unlink()
    rep = eng.ingest([mini_corpus])
    assert not rep.committed and eng.stats()["documents"] == 4
    rep = eng.ingest([mini_corpus], sync=True)
    assert rep.committed and rep.documents_removed == 1 and eng.stats()["documents"] == 3
    assert all(h.doc_id != "selfhosted/backup.html" for h in eng.retrieve("backup snapshots", k=10).hits)


def test_bad_files_reported_and_nothing_already_indexed_is_lost(tmp_path, mini_corpus, idx):
    eng = Engine.open(idx)
    eng.ingest([mini_corpus])
    before = eng.stats()
    # an indexed file becomes unreadable garbage, new bad files appear
    (mini_corpus / "cloud" / "retention.txt").write_bytes(b"\x00\x00garbage\x00")
    (mini_corpus / "empty.md").write_text("")
    (mini_corpus / "noise.txt").write_bytes(bytes(range(1, 256)) * 4)
    (mini_corpus / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (mini_corpus / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<<")
    rep = eng.ingest([mini_corpus])
    failed = dict(rep.failed)
    assert set(failed) == {str(mini_corpus / n) for n in
                           ("cloud/retention.txt", "empty.md", "noise.txt", "broken.pdf")}
    assert "empty document" in failed[str(mini_corpus / "empty.md")]
    assert "binary content" in failed[str(mini_corpus / "noise.txt")]
    assert dict(rep.skipped)[str(mini_corpus / "image.png")] == "unsupported file type .png"
    after = eng.stats()
    assert after["documents"] == before["documents"] and after["chunks"] == before["chunks"]
    hits = eng.retrieve("log retention enterprise plan", k=1, mode="bm25").hits
    assert hits[0].doc_id == "cloud/retention.txt"  # the previous version still answers


def test_huge_file_is_refused(tmp_path, mini_corpus, embedded_idx):
    (mini_corpus / "huge.txt").write_text("word " * 300_000)
    eng = Engine.open(embedded_idx, overrides=["ingest.max_file_mb=1"])
    rep = eng.ingest([mini_corpus])
    reason = dict(rep.failed)[str(mini_corpus / "huge.txt")]
    assert reason.startswith("file too large (1.4 MB > max_file_mb 1)")
    assert rep.documents_total == 4


def test_changing_chunking_or_model_needs_rebuild(tmp_path, mini_corpus, idx):
    Engine.open(idx).ingest([mini_corpus])
    with pytest.raises(IndexConfigMismatch, match="--rebuild"):
        Engine.open(idx, overrides=["chunker.chunk_size=64"]).ingest([mini_corpus])
    eng = Engine.open(idx, overrides=["chunker.name=token", "chunker.chunk_size=16"])
    rep = eng.ingest([mini_corpus], rebuild=True)
    assert rep.committed and rep.chunks_total > 4
    assert eng.stats()["config"]["chunker"] == {"name": "token", "chunk_size": 16, "chunk_overlap": 16}
    # reopening without a config uses what the index was built with
    assert Engine.open(idx).stats()["config"]["chunker"]["name"] == "token"


def test_unknown_plugin_and_parameter_errors_list_what_exists(tmp_path):
    with pytest.raises(PluginError, match=r"unknown chunker plugin 'nope' \(available: .*sentence.*token"):
        Engine.open(tmp_path / "i", overrides=["chunker.name=nope"])
    with pytest.raises(ConfigError, match=r"unknown parameter 'size' \(known: chunk_size, chunk_overlap\)"):
        Engine.open(tmp_path / "i", overrides=["chunker.size=3"])


def test_duplicate_document_ids_across_files(tmp_path, embedded_idx):
    import json

    a = tmp_path / "a" / "c.jsonl"
    b = tmp_path / "b" / "c2.jsonl"
    a.parent.mkdir()
    b.parent.mkdir()
    a.write_text(json.dumps({"_id": "x", "text": "first copy"}) + "\n")
    b.write_text(json.dumps({"_id": "x", "text": "second copy"}) + "\n")
    eng = Engine.open(embedded_idx)
    rep = eng.ingest([a.parent, b.parent])
    assert rep.documents_total == 1
    assert "duplicate document id 'x'" in dict(rep.failed)[str(b.resolve())]


# --- filters apply inside both branches ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_filter_is_applied_inside_each_branch(mini_index, mode):
    q = "beacon keys rotate zanzibar grace period self-hosted server"
    unfiltered = mini_index.retrieve(q, k=1, mode=mode).hits
    assert unfiltered[0].doc_id == "selfhosted/api-keys.md"  # the filtered chunk would win without the filter
    for flt in (["product=cloud"], {"product": "cloud"}, ["product!=selfhosted"]):
        hits = mini_index.retrieve(q, k=10, mode=mode, filter=flt).hits
        assert hits, flt
        assert all(h.chunk.metadata.get("product") != "selfhosted" for h in hits), flt
        if flt != ["product!=selfhosted"]:
            assert all(h.chunk.metadata["product"] == "cloud" for h in hits), flt


def test_filter_matching_nothing(mini_index):
    assert mini_index.retrieve("api keys", filter="product=onprem").hits == []


def test_range_and_exists_filters(mini_index):
    hits = mini_index.retrieve("api keys", k=10, filter=["date>=2024-04-01"]).hits
    assert {h.doc_id for h in hits} == {"cloud/api-keys.md"}
    hits = mini_index.retrieve("retention", k=10, filter=["!product"]).hits
    assert {h.doc_id for h in hits} == {"cloud/retention.txt"}


def test_empty_index_and_query(tmp_path, idx):
    eng = Engine.open(idx)
    assert eng.retrieve("anything").hits == []
    assert eng.stats()["documents"] == 0


def test_rebuild_where_every_file_fails_keeps_the_index(tmp_path, mini_corpus, idx):
    eng = Engine.open(idx)
    eng.ingest([mini_corpus])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.txt").write_bytes(b"\x00\x01")
    rebuild = Engine.open(idx, overrides=["chunker.chunk_size=64"])
    rep = rebuild.ingest([bad], rebuild=True)
    assert not rep.committed and rep.failed
    assert rebuild.stats()["documents"] == 4 and rebuild.stats()["config"]["chunker"]["chunk_size"] == 200
    assert rebuild.retrieve("rotate api key", k=1).hits[0].doc_id == "cloud/api-keys.md"


def test_filters_run_in_config_order_and_show_in_trace(tmp_path, mini_corpus, embedded_idx):
    cfg = {"filters": [{"name": "max-per-doc", "max_chunks": 1}, {"name": "keywords", "must_include": ["api"]}]}
    eng = Engine.open(embedded_idx, cfg)
    eng.ingest([mini_corpus])
    r = eng.retrieve("rotate api keys", k=10)
    assert r.trace[-2:] == ["filter max-per-doc", "filter keywords"]
    assert r.hits and len({h.doc_id for h in r.hits}) == len(r.hits)
    assert all("api" in h.chunk.text.lower() for h in r.hits)
