"""Queries through ONNX Runtime: the exported MiniLM gives sentence-transformers' fp32 vectors, a fresh process
embeds a query without importing torch, and a model that cannot be exported keeps the torch path (or, when ONNX is
forced, fails in one line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ragkit.embedding import onnx_query
from ragkit.embedding.sentence_transformers import SentenceTransformerEmbedder
from ragkit.errors import PluginError

QUERIES = ["How do I rotate an API key?", "log retention", "What is the rate limit of the REST API per minute, "
           "and does it differ between the Business plan and the Enterprise plan?",
           "Quokkas " * 400]  # past the model's 256 tokens: truncated the same way


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def test_onnx_queries_equal_torch_fp32_vectors(cache):
    torch_path = SentenceTransformerEmbedder(precision="fp32", query_runtime="torch")
    onnx_path = SentenceTransformerEmbedder(precision="fp32", query_runtime="onnx")
    want = torch_path.embed_queries(QUERIES)
    got = onnx_path.embed_queries(QUERIES)  # four lengths: grouped by length into model calls
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() < 1e-5
    assert np.abs(onnx_path.embed_query(QUERIES[0]) - want[0]).max() < 1e-5  # alone, unpadded
    folders = list(cache.iterdir())
    assert len(folders) == 1 and onnx_query.is_exported(folders[0])
    assert json.loads((folders[0] / "meta.json").read_text())["max_seq_length"] == 256
    # the same vectors, in the caller's order, whether a batch runs in length groups or in one padded call
    encoder = onnx_query.OnnxQueryEncoder(folders[0])
    mixed = [QUERIES[2], "log retention", QUERIES[0], "key rotation", QUERIES[3], "log retention"]
    grouped, padded = encoder.encode(mixed), encoder.encode(mixed, by_length=False)
    assert np.abs(grouped - padded).max() < 1e-5
    assert np.abs(grouped[0] - want[2]).max() < 1e-5 and np.abs(grouped[2] - want[0]).max() < 1e-5
    assert np.array_equal(grouped[1], grouped[5])
    assert encoder.encode([]).shape == (0, 384)


def _cost(groups, lengths, call):
    return sum(call + len(g) * max(lengths[i] for i in g) for g in groups)


@pytest.mark.parametrize("seed", range(20))
def test_length_groups_cover_each_text_once_at_no_more_cost_than_one_call_or_one_each(seed):
    rng = np.random.default_rng(seed)
    lengths = [int(n) for n in rng.integers(4, 80, size=int(rng.integers(1, 40)))]
    groups = onnx_query.length_groups(lengths, call_tokens=6.0)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    cost = _cost(groups, lengths, 6.0)
    assert cost <= _cost([list(range(len(lengths)))], lengths, 6.0)
    assert cost <= _cost([[i] for i in range(len(lengths))], lengths, 6.0)
    for g in groups:  # every group is a run of neighbouring lengths: no length of another group inside its range
        lo, hi = min(lengths[i] for i in g), max(lengths[i] for i in g)
        assert not any(lo < lengths[i] < hi for other in groups if other is not g for i in other)


def test_length_groups_share_a_call_for_equal_lengths_and_split_far_apart_ones():
    assert onnx_query.length_groups([17, 17, 17, 17]) == [[0, 1, 2, 3]]
    assert sorted(onnx_query.length_groups([10, 60])) == [[0], [1]]  # padding 10 to 60 costs more than a call
    assert sorted(onnx_query.length_groups([12, 13])) == [[0, 1]]  # one token of padding is cheaper
    assert onnx_query.length_groups([]) == []
    assert [len(g) for g in onnx_query.length_groups([9] * 130, most=64)] == [64, 64, 2]


def test_the_export_is_float32_and_leaves_a_bf16_model_as_it_was(cache):
    emb = SentenceTransformerEmbedder(precision="bf16", query_runtime="onnx")
    before = emb.embed(QUERIES[:2])
    vec = emb.embed_query(QUERIES[0])
    fp32 = SentenceTransformerEmbedder(precision="fp32", query_runtime="torch").embed_query(QUERIES[0])
    assert np.abs(vec - fp32).max() < 1e-5  # computed in float32, not in the model's bf16
    assert np.array_equal(emb.embed(QUERIES[:2]), before)  # the shared bf16 model was not converted in place


def test_torch_runtime_never_exports(cache):
    SentenceTransformerEmbedder(query_runtime="torch").embed_query("hello")
    assert not cache.exists()


def test_a_fresh_process_embeds_a_query_without_torch(cache):
    SentenceTransformerEmbedder(precision="fp32").embed_query("warm the export")  # auto: exports once
    code = ("import sys, json\n"
            "from ragkit.embedding.sentence_transformers import SentenceTransformerEmbedder\n"
            "v = SentenceTransformerEmbedder().embed_query(sys.argv[1])\n"
            "print(json.dumps({'torch': 'torch' in sys.modules,"
            " 'st': 'sentence_transformers' in sys.modules, 'v': v.tolist()}))\n")
    env = {**os.environ, "RAGKIT_CACHE": str(cache.parent), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code, QUERIES[0]], capture_output=True, text=True, env=env,
                         check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["torch"] is False and got["st"] is False
    want = SentenceTransformerEmbedder(precision="fp32", query_runtime="torch").embed_query(QUERIES[0])
    assert np.abs(np.array(got["v"], dtype=np.float32) - want).max() < 1e-5


def test_a_model_that_is_not_mean_pooled_is_not_exported(cache):
    from sentence_transformers import SentenceTransformer, models

    from ragkit.embedding.models import resolve_model

    path, _ = resolve_model("all-MiniLM-L6-v2")
    word = models.Transformer(path)
    cls = SentenceTransformer(modules=[word, models.Pooling(word.get_word_embedding_dimension(), "cls")],
                              device="cpu")
    assert "pooling 'cls'" in onnx_query.exportable(cls)
    mean = SentenceTransformer(path, device="cpu")
    assert onnx_query.exportable(mean) is None


def test_forcing_onnx_without_an_exportable_model_is_one_line(cache, monkeypatch):
    monkeypatch.setattr(onnx_query, "exportable", lambda model: "pooling 'cls' is not mean pooling")
    with pytest.raises(PluginError, match="cannot export 'all-MiniLM-L6-v2' to ONNX: pooling 'cls'") as info:
        SentenceTransformerEmbedder(query_runtime="onnx").embed_query("x")
    assert "\n" not in str(info.value)
    # auto falls back to the torch path with the same vectors
    auto = SentenceTransformerEmbedder(precision="fp32").embed_query("x")
    torch_path = SentenceTransformerEmbedder(precision="fp32", query_runtime="torch").embed_query("x")
    assert np.array_equal(auto, torch_path)
