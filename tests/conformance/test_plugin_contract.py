"""Every registered plugin, of every stage, honours the component contract (ragkit.testing.PluginContract)."""

from __future__ import annotations

import pytest

from ragkit.errors import PluginError
from ragkit.plugins import STAGES, registry
from ragkit.testing import PluginContract

ALL = [(s, n) for s in STAGES for n in registry.names(s)]


class TestEveryPlugin(PluginContract):
    @pytest.fixture(params=ALL, ids=[f"{s}.{n}" for s, n in ALL])
    def plugin_class(self, request):
        return registry.get(*request.param)


def test_every_stage_of_the_foundation_has_a_builtin():
    for stage in ("loader", "chunker", "embedder", "sparse", "dense", "fusion", "generator"):
        assert registry.names(stage), stage


def test_construction_loads_no_model():
    """The embedder's weights load on warm_up/first use, not in the constructor."""
    emb = registry.get("embedder", "sentence-transformers")(model="/nonexistent/model/dir")
    assert emb._model is None  # a bad path only fails when the model is needed
    with pytest.raises(PluginError, match="cannot load model '/nonexistent/model/dir'"):
        emb.warm_up()
