"""The Engine: a facade over one index (a ``Store``) and the configured plugins.

    ingest:  ingest/pipeline.py   walk -> load -> chunk -> embed (cached) -> store writer -> atomic commit
    query:   retrieve/pipeline.py pre-filter -> transforms -> bm25 | dense -> fusion -> rerankers -> filters
             -> generator

The stage logic lives in those two modules; the Engine builds the plugins from the config, keeps the read view
of the index current (a newer commit by another process is picked up on the next call), and hands both to
the pipelines. The server and ``ragkit ablate`` call the same methods.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.config import Config, PluginSpec, load_config
from ragkit.embedding.cache import EmbeddingCache, embed_with_cache
from ragkit.embedding.query_cache import QueryVectorCache
from ragkit.errors import ConfigError
from ragkit.filter_expr import Filter, to_filter
from ragkit.generate.sql import SqlTool
from ragkit.index import open_store
from ragkit.index import settings as index_settings
from ragkit.index.store import StoreReader
from ragkit.ingest.pipeline import IngestReport, IngestRun, Progress
from ragkit.llm.resolve import LazyLLM
from ragkit.plugins import Plugin, Resources, registry
from ragkit.retrieve import pipeline
from ragkit.retrieve.pipeline import Retrieval, TableRoute
from ragkit.retrieve.router import Router
from ragkit.types import Answer, Chunk

__all__ = ["Engine", "AnswerStream", "IngestReport", "Retrieval"]

DEFAULT_INDEX = ".ragkit"  # the index when neither the caller nor [store] url names one


class Engine:
    def __init__(self, index: str | Path | None, config: Config, *, embedding_cache: str | Path | None = None,
                 query_cache: QueryVectorCache | None = None) -> None:
        """``embedding_cache``: an embedding-cache file to use instead of the index's own (ablations share one
        across indexes). ``query_cache``: query vectors memoised across engines (see QueryVectorCache)."""
        self.store = open_store(index if index is not None else config.store.url or DEFAULT_INDEX)
        self.config = config
        self.query_cache = query_cache
        # replaces the embedder's embed_query for queries when set (the server's micro-batcher)
        self.query_encoder: Callable[[str], np.ndarray] | None = None
        self._cache_path = Path(embedding_cache) if embedding_cache is not None else None
        self._cache: EmbeddingCache | None = None
        self._lock = threading.RLock()
        self._reader: StoreReader | None = None
        self._version: str | None = None
        self._wanted = index_settings.wanted(config)
        stored = self.store.settings()
        self._mismatch = index_settings.mismatch(stored, self._wanted, config.model_fields_set)
        self._index_config = dict(stored) if stored else dict(self._wanted)
        self.embedder = self._make_embedder(self._index_config["embedder"])
        self.resources = Resources(embedder=self.embedder, embed_cached=self.embed_cached,
                                   neighbours=self._neighbours, llm=self._llm, sparse_search=self._sparse_search,
                                   analyze=self._analyze)
        self.fusion = self._make("fusion", config.fusion)
        self.transforms = [self._make("transform", s) for s in config.transforms]
        self.rerankers = [self._make("reranker", s) for s in config.rerankers]
        self.filters = [self._make("filter", s) for s in config.filters]
        self.generator = self._make("generator", config.generator)
        self.router: Router | None = None
        self.sql_tool: SqlTool | None = None
        if config.router.enabled:
            if not config.sql.llm and not hasattr(type(self.generator), "llm"):
                raise ConfigError(f"router.enabled: the SQL tool needs an LLM, and generator "
                                  f"{config.generator.name!r} has none: set sql.llm (e.g. 'local:qwen1.5b') or an "
                                  "LLM generator (llama-cpp, openai, cohere)")
            sql_llm = LazyLLM("sql", config.sql.llm or None)
            sql_llm.bind(self.resources)
            self.router, self.sql_tool = Router(config.router, sql_llm.get), SqlTool(config.sql, sql_llm.get)

    @classmethod
    def open(cls, index: str | Path | None = None, config: str | Path | dict | Config | None = None,
             overrides: list[str] | dict[str, Any] | None = None, *, embedding_cache: str | Path | None = None,
             query_cache: QueryVectorCache | None = None) -> "Engine":
        """Open (or prepare to create) the index at ``index``: a directory path (the embedded store) or a URL
        of a registered store (``postgresql://...``); without one, the config's ``[store] url``, else
        ``.ragkit``. ``config`` is a ragkit.toml path, a dict or a Config; without one, defaults apply
        for the query stages and the index's own stored settings for the index-shaping ones. ``overrides`` are
        ``key.path=value`` strings or a dict."""
        return cls(index, load_config(config, overrides), embedding_cache=embedding_cache, query_cache=query_cache)

    def _make(self, stage: str, spec: PluginSpec) -> Plugin:
        plugin = registry.create(stage, spec.as_dict())
        plugin.bind(self.resources)
        return plugin

    @property
    def processors(self) -> list[Plugin]:
        """The post stage, in order: rerankers, then filters."""
        return [*self.rerankers, *self.filters]

    # --- index settings ----------------------------------------------------------------------------------------

    def _settings_for(self, rebuild: bool) -> index_settings.Settings:
        if rebuild:
            return dict(self._wanted)
        if self._mismatch:
            raise self._mismatch.error(self.store.location)
        return self._index_config

    def _make_embedder(self, spec: dict[str, Any]) -> Plugin:
        """The index's embedder, with the config's runtime parameters (precision) that the index does not stamp."""
        return registry.create("embedder", index_settings.with_runtime("embedder", spec, self.config))

    def _use_settings(self, settings: index_settings.Settings) -> None:
        if settings.get("embedder") != self._index_config.get("embedder"):
            self.embedder = self._make_embedder(settings["embedder"])
            self.resources.embedder = self.embedder
        self._index_config = settings

    # --- shared resources --------------------------------------------------------------------------------------

    @property
    def cache(self) -> EmbeddingCache | None:
        """The embedding cache (None until the index exists: querying a missing index creates nothing)."""
        if self._cache is None:
            path = self._cache_path or self.store.embedding_cache_path()
            if path is not None:
                self._cache = EmbeddingCache(path)
        return self._cache

    def embed_cached(self, texts: Sequence[str]) -> np.ndarray:
        vecs, _ = embed_with_cache(texts, self.embedder.model_id, self.embedder.embed, self.cache, self.embedder.dim)
        return vecs

    def embed_query(self, text: str) -> np.ndarray:
        encode = self.query_encoder or self.embedder.embed_query
        if self.query_cache is None:
            return encode(text)
        return self.query_cache.get(self.embedder.model_id, text, encode)

    def _llm(self):
        llm = getattr(getattr(self, "generator", None), "llm", None)
        if llm is None:
            raise ConfigError(f"this step needs an LLM, and generator {self.config.generator.name!r} has none: "
                              "configure an LLM generator ([generator] name = 'llama-cpp' | 'openai' | 'cohere')")
        return llm

    def _sparse_search(self, text: str, k: int) -> list[tuple[Chunk, float]]:
        r = self.reader()
        return pipeline.SearchScope(r).sparse_search(text, k) if r is not None else []

    def _analyze(self, text: str) -> list[str]:
        r = self.reader()
        return r.analyze(text) if r is not None else re.findall(r"\w+", text.lower())

    def _neighbours(self, doc_id: str, positions: Sequence[int]) -> dict[int, Chunk]:
        r = self.reader()
        return r.neighbours(doc_id, positions) if r is not None else {}

    # --- reading -----------------------------------------------------------------------------------------------

    def reader(self) -> StoreReader | None:
        """The committed version's read view, reopened when another process has committed a newer one."""
        with self._lock:
            version = self.store.version()
            if version != self._version:
                self._settings_for(rebuild=False)
                # The replaced view is not closed here: requests in other threads may still be reading it (a
                # server finishes in-flight requests on the version they started with). It is freed when the
                # last of them drops its reference; Engine.close() closes the current one.
                self._reader = self.store.reader() if version is not None else None
                if self._reader is not None:
                    self._use_settings(self._reader.settings)
                self._version = self._reader.name if self._reader is not None else None
            return self._reader

    def warm_up(self, *, post: bool = True, generator: bool = True, mode: str | None = None) -> "Engine":
        """Load the models and the committed index now instead of on the first query (``post``: the rerankers
        and filters too; ``generator``: the generator too). The embedder loads only when ``mode`` (default:
        retrieval.mode) has a dense branch or a plugin that is warmed needs it: a BM25-only retrieval loads
        no model."""
        if pipeline.check_mode(mode or self.config.retrieval.mode) != "bm25":
            # what query embedding needs (an embedder without a separate query path loads its model)
            getattr(self.embedder, "warm_up_queries", self.embedder.warm_up)()
        reader = self.reader()
        if reader is not None:
            reader.warm_up()
        for plugin in [self.fusion, *self.transforms, *(self.processors if post else []),
                       *([self.generator] if generator else [])]:
            plugin.warm_up()
        return self

    def stats(self) -> dict[str, Any]:
        r = self.reader()
        named = getattr(self.store, "where", self.store.location)  # a URL without its password
        store = self.store.describe() if hasattr(self.store, "describe") else {}
        if r is None:
            return {"index": named, "store": store, "generation": None, "documents": 0, "chunks": 0}
        return {"index": named, "store": store, "generation": r.name, "documents": r.n_documents,
                "chunks": r.n_chunks, "embedding_model": r.model_id, "dim": r.dim, "config": r.settings,
                "created": r.created}

    def tables(self, filter: Any = None) -> list[Any]:
        """The SQL tables of the committed version (catalog entries: name, columns, source document, metadata),
        those whose document passes ``filter`` only; [] when the store keeps no tables."""
        view = pipeline.table_view(self.reader())
        return [] if view is None else pipeline.visible_tables(view, filter)

    # --- ingest ------------------------------------------------------------------------------------------------

    def ingest(self, paths: Iterable[str | Path], *, sync: bool = False, rebuild: bool = False,
               progress: Progress | None = None) -> IngestReport:
        settings = self._settings_for(rebuild)
        same = settings.get("embedder") == self._index_config.get("embedder")
        model_id = (self.embedder if same else self._make_embedder(settings["embedder"])).model_id
        with self.store.writer(settings, rebuild=rebuild, model_id=model_id) as writer:
            self._mismatch = None  # from here on the index is (re)built with these settings
            self._use_settings(settings)
            report = IngestRun(writer, self.embedder, self.cache, self.config.ingest, progress).run(paths, sync=sync)
            if not report.committed and writer.current is not None:
                self._use_settings(writer.current.settings)  # a failed --rebuild leaves the old settings
        return report

    # --- query -------------------------------------------------------------------------------------------------

    def first_stage(self, query: str, *, k: int | None = None, filter: Any = None, mode: str | None = None,
                    depth: int | None = None) -> Retrieval:
        """Candidates before rerankers and filters: ``depth`` hits (default: the candidate depth when a post
        stage follows, else ``k``)."""
        cfg = self.config.retrieval
        k = k or cfg.k
        mode = pipeline.check_mode(mode or cfg.mode)
        cand = max(cfg.candidates, k)
        depth = depth or (cand if self.processors else k)
        return pipeline.first_stage(self.reader(), query, mode=mode, depth=depth, candidates=cand,
                                    transforms=self.transforms, fusion=self.fusion, embed_query=self.embed_query,
                                    filter=filter)

    def post_stage(self, query: str, first: Retrieval, k: int | None = None) -> Retrieval:
        """Rerankers then filters on first-stage hits; the top ``k`` remain."""
        if not first.hits:
            return first
        return pipeline.post_stage(query, first, self.processors, k or self.config.retrieval.k)

    def retrieve(self, query: str, *, k: int | None = None, filter: Any = None, mode: str | None = None) -> Retrieval:
        return self.post_stage(query, self.first_stage(query, k=k, filter=filter, mode=mode), k)

    def table_route(self) -> TableRoute | None:
        """What routed answers need (None while ``router.enabled`` is off): the router, the SQL tool, the read
        view, and a search for table description chunks."""
        if self.router is None or self.sql_tool is None:
            return None

        def search(query: str, flt: Filter) -> list:
            """Table description chunks inside ``flt``, through the rerankers (not the filters: those shape the
            passages a generator reads), so a rule that demotes a deprecated page demotes its tables too."""
            only_tables = to_filter(flt) & Filter.parse("table?")
            k = self.config.sql.max_tables
            if not self.rerankers:
                return self.first_stage(query, k=k, filter=only_tables, depth=k).hits
            first = self.first_stage(query, k=k, filter=only_tables, depth=max(self.config.retrieval.candidates, k))
            return pipeline.post_stage(query, first, self.rerankers, k).hits if first.hits else []

        return TableRoute(self.router, self.sql_tool, self.reader(), search)

    def answer(self, query: str, retrieval: Retrieval, started: float | None = None) -> Answer:
        """The generator's answer on already retrieved hits (timings and trace merged in); with the router on, a
        numeric question may be answered by the SQL tool instead."""
        return pipeline.generate(self.generator, query, retrieval, started, route=self.table_route())

    def answer_stream(self, query: str, retrieval: Retrieval, started: float | None = None) -> Iterator[str | Answer]:
        """Text deltas on already retrieved hits, then the checked Answer."""
        return pipeline.generate_stream(self.generator, query, retrieval, started, route=self.table_route())

    def query(self, query: str, *, k: int | None = None, filter: Any = None, mode: str | None = None) -> Answer:
        t0 = time.perf_counter()
        return self.answer(query, self.retrieve(query, k=k, filter=filter, mode=mode), t0)

    def query_stream(self, query: str, *, k: int | None = None, filter: Any = None,
                     mode: str | None = None) -> "AnswerStream":
        """Like :meth:`query`, but iterate the answer's text as it is generated; ``.answer`` holds the checked
        Answer (citations, sources, timings) once the iteration has finished."""
        return AnswerStream(self, query, k=k, filter=filter, mode=mode)

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader, self._version = None, None
            if self._cache is not None:
                self._cache.close()
                self._cache = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AnswerStream:
    """Iterator of text deltas; ``answer`` is set when it is exhausted."""

    def __init__(self, engine: Engine, query: str, **kw: Any) -> None:
        self._engine, self._query, self._kw = engine, query, kw
        self.answer: Answer | None = None
        self.retrieval: Retrieval | None = None

    def __iter__(self) -> Iterator[str]:
        t0 = time.perf_counter()
        self.retrieval = self._engine.retrieve(self._query, **self._kw)
        for item in self._engine.answer_stream(self._query, self.retrieval, t0):
            if isinstance(item, Answer):
                self.answer = item
            else:
                yield item
