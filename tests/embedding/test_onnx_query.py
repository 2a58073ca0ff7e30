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
    got = onnx_path.embed_queries(QUERIES)  # one padded batch of four lengths
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() < 1e-5
    assert np.abs(onnx_path.embed_query(QUERIES[0]) - want[0]).max() < 1e-5  # alone, unpadded
    folders = list(cache.iterdir())
    assert len(folders) == 1 and onnx_query.is_exported(folders[0])
    assert json.loads((folders[0] / "meta.json").read_text())["max_seq_length"] == 256


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
