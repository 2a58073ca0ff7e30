"""Every registered plugin, of every stage, honours the component contract."""

from __future__ import annotations

import json
import time

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
    t = time.perf_counter()
    plugin = cls()  # defaults only
    assert time.perf_counter() - t < 5  # construction never loads models (a generous bound, not a benchmark)
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
