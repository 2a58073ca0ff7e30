"""ragkit: a RAG engine with pluggable, measurable retrieval optimizations.

    from ragkit import Engine
    eng = Engine.open(".ragkit")
    eng.ingest(["docs/"])
    print(eng.query("how do I rotate the API key?").text)
"""

from ragkit.config import Config, load_config
from ragkit.engine import Engine
from ragkit.ingest.pipeline import IngestReport
from ragkit.errors import RagkitError
from ragkit.filter_expr import Filter

__version__ = "0.1.0"
__all__ = ["Engine", "Config", "load_config", "IngestReport", "Filter", "RagkitError", "__version__"]
