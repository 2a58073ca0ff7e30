"""The conformance kit: reusable pytest test classes that every store and plugin passes.

A package that adds a store or a plugin subclasses the class for it in its own tests and provides one fixture
(see each class)::

    from ragkit.testing import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: MyStore(str(tmp_path / "index"))

ragkit's own ``tests/conformance/`` runs these classes on every registered plugin and on the embedded store.
This package imports pytest; ``import ragkit`` never imports it.
"""

from ragkit.testing.chunkers import ChunkerConformance
from ragkit.testing.generators import GeneratorConformance
from ragkit.testing.index_parts import IndexPartConformance
from ragkit.testing.loaders import LoaderConformance
from ragkit.testing.plugins import PluginContract
from ragkit.testing.processors import HitProcessorConformance
from ragkit.testing.store import StoreConformance

__all__ = ["StoreConformance", "PluginContract", "LoaderConformance", "ChunkerConformance",
           "HitProcessorConformance", "GeneratorConformance", "IndexPartConformance"]
