"""The MiniLM embedder's precision: bf16 and fp32 give interchangeable vectors, the choice is not stamped into
the index, and a bad value is a one-line error."""

from __future__ import annotations

import numpy as np
import pytest

from ragkit import Engine
from ragkit.config import Config
from ragkit.embedding.sentence_transformers import SentenceTransformerEmbedder, cpu_has_bf16
from ragkit.errors import ConfigError
from ragkit.index.settings import wanted

TEXTS = ["How do I rotate an API key?", "Log retention is 30 days on the Business plan.",
         "The REST API allows 1,200 requests per minute.", "Quokkas live on Rottnest Island."]


def test_auto_picks_bf16_only_where_the_cpu_has_it():
    assert SentenceTransformerEmbedder().precision == ("bf16" if cpu_has_bf16() else "fp32")
    assert SentenceTransformerEmbedder(precision="fp32").precision == "fp32"
    assert SentenceTransformerEmbedder(precision="auto", device="cuda").precision == "fp32"


def test_bf16_and_fp32_vectors_are_interchangeable():
    fp32 = SentenceTransformerEmbedder(precision="fp32").embed(TEXTS)
    bf16 = SentenceTransformerEmbedder(precision="bf16").embed(TEXTS)
    assert fp32.dtype == bf16.dtype == np.float32 and fp32.shape == bf16.shape
    assert np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-3)
    assert np.min(np.sum(fp32 * bf16, axis=1)) > 0.99  # the same direction, vector by vector
    assert not np.array_equal(fp32, bf16)  # but really computed in another precision
    # the same neighbours: each text's nearest other text agrees
    near = lambda v: np.argsort(-(v @ v.T - 2 * np.eye(len(v))), axis=1)[:, 0]  # noqa: E731
    assert near(fp32).tolist() == near(bf16).tolist()


def test_precision_is_not_part_of_the_index_stamp(tmp_path, mini_corpus):
    forced = Config.model_validate({"embedder": {"name": "sentence-transformers", "precision": "bf16"}})
    assert wanted(forced) == wanted(Config())
    with Engine.open(tmp_path / "idx", overrides=["embedder.precision=fp32"]) as eng:
        eng.ingest([mini_corpus])
    # an index embedded in fp32 opens, and answers, with an explicit bf16 embedder
    with Engine.open(tmp_path / "idx", overrides=["embedder.name=sentence-transformers",
                                                  "embedder.precision=bf16"]) as eng:
        assert eng.embedder.precision == "bf16"  # the config's precision, though the index does not stamp it
        hits = eng.retrieve("rotate api key grace period", k=3).hits
        assert hits and hits[0].doc_id.endswith("api-keys.md")


def test_a_bad_precision_is_one_line_error():
    with pytest.raises(ConfigError) as exc:
        SentenceTransformerEmbedder(precision="fp8")
    assert "precision" in str(exc.value) and "\n" not in str(exc.value)
