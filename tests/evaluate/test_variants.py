"""Variant planning: ``--vary`` axes, ``--variant`` specs, plugin specs, grids and the ladder, overrides."""

from __future__ import annotations

import pytest

from ragkit.config import load_config
from ragkit.errors import ConfigError
from ragkit.evaluate import variants as va


def test_bad_vary_and_spec_errors_are_one_line():
    base = load_config(None)
    with pytest.raises(ConfigError, match="unknown axis"):
        va.parse_vary("bogus=1,2", base)
    with pytest.raises(ConfigError, match="expected AXIS=VALUE1,VALUE2"):
        va.parse_vary("retrieval", base)
    grid = va.full_grid(base, [va.parse_vary("retrieval=bm25,hybrid", base), va.parse_vary("fusion=rrf,minmax", base)])
    assert [v.name for v in grid] == ["base", "bm25 + fusion=rrf", "bm25 + fusion=minmax", "hybrid + fusion=rrf",
                                      "hybrid + fusion=minmax"]
    assert grid[4].overrides == {"retrieval.mode": "hybrid", "fusion.name": "minmax"}
    assert va.apply_overrides(base, {"rerankers+": {"name": "rules"}, "fusion.name": "zscore"}).rerankers[0].name \
        == "rules"
    assert va.parse_spec("cross-encoder:model=/m,depth=10") == {"name": "cross-encoder", "model": "/m", "depth": 10}
    assert va.parse_spec("none") is None
    assert va.parse_variant("small: chunker.chunk_size=64, retrieval.candidates=50").overrides == {
        "chunker.chunk_size": 64, "retrieval.candidates": 50}


def test_ladder_steps_build_on_each_other_and_a_step_set_to_none_is_disabled():
    steps = va.ladder(rerank=None)
    assert [(v.name, v.parent) for v in steps] == [
        ("bm25", None), ("dense", "bm25"), ("hybrid-rrf", "dense"), ("hybrid-minmax", "hybrid-rrf"),
        ("+rerank", "hybrid-rrf"), ("+rules", "+rerank"), ("+expand", "+rules")]
    by = {v.name: v for v in steps}
    assert by["+rerank"].disabled == "disabled with --rerank none" and by["+rerank"].overrides == {}
    assert by["+rules"].overrides == {"rerankers+": va.DEFAULT_LADDER_RULES} and by["+rules"].disabled is None


def test_duplicate_names_are_numbered_and_slugs_are_file_names():
    plan = va.dedupe_names([va.Variant("x"), va.Variant("x"), va.Variant("y")])
    assert [v.name for v in plan] == ["x", "x#2", "y"]
    assert va.slug("hybrid + fusion=rrf") == "hybrid_fusion_rrf" and va.slug("///") == "variant"


def test_config_hash_is_order_independent():
    assert va.config_hash({"a": 1, "b": [1, 2]}) == va.config_hash({"b": [1, 2], "a": 1})
    assert va.config_hash({"a": 1}) != va.config_hash({"a": 2})
