"""``PluginContract``: the component contract every plugin of every stage honours (see ``ragkit.plugins``).

Subclass it and provide a ``plugin_class`` fixture returning the class under test::

    class TestMyReranker(PluginContract):
        @pytest.fixture
        def plugin_class(self):
            return MyReranker
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from ragkit.errors import ConfigError
from ragkit.plugins import STAGES, Plugin, registry


class PluginContract:
    @pytest.fixture
    def plugin_class(self) -> type[Plugin]:
        raise NotImplementedError("subclass PluginContract and define a `plugin_class` fixture")

    def test_declares_its_stage_name_and_params(self, plugin_class):
        assert plugin_class.stage in STAGES, f"unknown stage {plugin_class.stage!r}"
        assert plugin_class.name and isinstance(plugin_class.name, str)
        assert issubclass(plugin_class.Params, BaseModel)

    def test_is_registered_under_its_name(self, plugin_class):
        assert registry.get(plugin_class.stage, plugin_class.name) is plugin_class

    def test_defaults_build_and_the_spec_round_trips(self, plugin_class):
        spec: dict[str, Any] = plugin_class().spec()  # defaults only
        assert spec["name"] == plugin_class.name
        json.dumps(spec)  # serialisable
        params = {k: v for k, v in spec.items() if k != "name"}
        assert plugin_class(**params).spec() == spec
        assert registry.create(plugin_class.stage, spec).spec() == spec

    def test_an_unknown_parameter_is_a_clear_error(self, plugin_class):
        with pytest.raises(ConfigError, match="unknown parameter 'no_such_param'") as exc:
            plugin_class(no_such_param=1)
        assert plugin_class.name in str(exc.value) and "\n" not in str(exc.value)
