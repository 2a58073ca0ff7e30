"""Every registered plugin, of every stage, honours the component contract."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from ragkit.errors import ConfigError
from ragkit.plugins import STAGES, registry

ALL = [(s, n) for s in STAGES for n in registry.names(s)]


@pytest.mark.parametrize("stage,name", ALL, ids=[f"{s}.{n}" for s, n in ALL])
def test_plugin_contract(stage, name):
    cls = registry.get(stage, name)
    assert cls.stage == stage and cls.name == name
    assert issubclass(cls.Params, BaseModel)
    plugin = cls()  # defaults only
    spec = plugin.spec()
    assert spec["name"] == name
    json.dumps(spec)  # serialisable
    # the spec round-trips: rebuilding from it gives an equal plugin spec
    assert registry.create(stage, spec).spec() == spec
    with pytest.raises(ConfigError, match="unknown parameter 'no_such_param'"):
        cls(no_such_param=1)


def test_every_stage_of_the_foundation_has_a_builtin():
    for stage in ("loader", "chunker", "embedder", "sparse", "dense", "fusion", "generator"):
        assert registry.names(stage), stage


def test_construction_loads_no_model():
    """The embedder's weights load on warm_up/first use, not in the constructor."""
    emb = registry.get("embedder", "sentence-transformers")(model="/nonexistent/model/dir")
    assert emb._model is None  # a bad path only fails when the model is needed
    from ragkit.errors import PluginError

    with pytest.raises(PluginError, match="cannot load model '/nonexistent/model/dir'"):
        emb.warm_up()
