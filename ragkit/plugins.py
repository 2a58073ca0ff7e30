"""Stage interfaces and the plugin registry.

The component contract (every plugin, built-in or third-party):

1. A plugin is a class with ``stage`` and ``name`` class attributes and a nested pydantic model ``Params``
   (``extra="forbid"``) that declares every parameter with its default. Its constructor takes only those
   parameters (``Plugin.__init__`` validates them) and is cheap: no model, file or network access.
2. Heavy state (models, index files) loads once, lazily, in ``warm_up()`` or on first use.
3. Each stage has one call, typed below by a Protocol. Every implementation passes the conformance kit shipped
   in :mod:`ragkit.testing`: a plugin package subclasses ``PluginContract`` and the class for its stage
   (``LoaderConformance``, ``ChunkerConformance``, ``IndexPartConformance``, ``HitProcessorConformance``,
   ``GeneratorConformance``) in its own tests and provides one fixture; a store subclasses ``StoreConformance``.
   ragkit's ``tests/conformance/`` runs the same classes on every registered plugin.
4. Plugins that need shared resources (the embedder, the embedding cache) receive them through
   ``bind(resources)`` right after construction; they must not build their own.

Registration: plugins are found through the entry-point group ``ragkit.plugins``; each entry is
``"<stage>.<name>" = "package.module:Class"``. ragkit's built-ins are declared the same way in its
``pyproject.toml``. ``register()`` adds a class at run time (tests, notebooks). Entry points are imported
only when their plugin is asked for, so start-up stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from ragkit.errors import ConfigError, PluginError
from ragkit.types import Answer, Chunk, Document, Hit, LoadIssue

ENTRY_POINT_GROUP = "ragkit.plugins"

STAGES: dict[str, str] = {
    "loader": "turns a file into documents",
    "chunker": "splits a document into chunks",
    "embedder": "turns text into normalized vectors",
    "sparse": "lexical index part (BM25)",
    "dense": "vector index part",
    "fusion": "merges the rankings of the retrieval branches",
    "transform": "rewrites or expands the query (seam: query-transforms issue)",
    "reranker": "re-scores fused candidates (seam: reranking issue)",
    "filter": "drops or reorders hits after retrieval (seam: filters issue)",
    "generator": "writes the answer with citations",
}


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Plugin:
    """Shared plumbing: parameter validation, a no-op warm_up and bind. Not a deep hierarchy: one level."""

    stage: ClassVar[str] = ""
    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    # parameters of an index-shaping plugin that do not change what the index stores (left out of its stamp)
    runtime_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        try:
            self.params = self.Params(**params)
        except ValidationError as exc:
            raise ConfigError(_params_error(self.stage, self.name, self.Params, exc)) from None

    def warm_up(self) -> None:
        """Load heavy state. Called once before first use; must be idempotent."""

    def bind(self, resources: "Resources") -> None:
        """Receive shared resources (embedder, caches). Default: needs none."""

    def spec(self) -> dict[str, Any]:
        """The serialisable description of this plugin: name + every parameter, defaults filled in."""
        return {"name": self.name, **self.params.model_dump(mode="json")}


class Resources:
    """What the engine shares with plugins that ask for it in ``bind``."""

    def __init__(self, embedder: "Embedder | None" = None, embed_cached: Any = None, neighbours: Any = None,
                 llm: Any = None, sparse_search: Any = None, analyze: Any = None) -> None:
        self.embedder = embedder
        # embed_cached(texts) -> np.ndarray: embeds through the on-disk cache (never re-embeds known text)
        self.embed_cached = embed_cached
        # neighbours(doc_id, positions) -> {position: Chunk}: chunks of the committed generation by position
        self.neighbours = neighbours
        # llm() -> ragkit.llm.LLM: the configured generator's language model; raises ConfigError naming what to
        # configure when the generator is not LLM-backed. Call it only when the LLM is actually needed.
        self.llm = llm
        # sparse_search(text, k) -> list[(Chunk, score)]: a BM25 pass over the whole committed index. A transform
        # serving a query searches the ``scope`` it is given instead (that honours the query's pre-filter)
        self.sparse_search = sparse_search
        # analyze(text) -> list[str]: the sparse index's analyzer (tokens exactly as BM25 indexes them)
        self.analyze = analyze


def warm_embedder(resources: "Resources | None") -> None:
    """Load the bound embedder's model now: for the ``warm_up`` of a plugin whose calls embed (nothing when the
    plugin is not bound)."""
    warm = getattr(getattr(resources, "embedder", None), "warm_up", None)
    if callable(warm):
        warm()


# --- stage protocols -------------------------------------------------------------------------------------------

@runtime_checkable
class Loader(Protocol):
    extensions: ClassVar[tuple[str, ...]]

    def load(self, path: Path, doc_id: str) -> Iterable[Document | LoadIssue]:
        """Yield documents (and per-record issues). Raise LoadError when the whole file is unusable."""


class TokenBudget(Protocol):
    max_tokens: int

    def count(self, text: str) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


@runtime_checkable
class Chunker(Protocol):
    def split(self, doc: Document, budget: TokenBudget) -> list[Chunk]:
        """Split into chunks of at most ``budget.max_tokens`` tokens (unless the chunker documents otherwise)."""


@runtime_checkable
class Embedder(Protocol):
    model_id: str

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Return float32, L2-normalized vectors, one row per text."""

    def embed_query(self, text: str) -> np.ndarray: ...

    def token_budget(self) -> TokenBudget: ...


@runtime_checkable
class IndexPart(Protocol):
    """A retrieval branch that owns its files (sparse or dense). Rows are the docstore's chunk rows."""

    def build(self, texts: Sequence[str], vectors: np.ndarray | None) -> None: ...

    def save(self, directory: Path) -> None: ...

    def load(self, directory: Path) -> None: ...

    def __len__(self) -> int: ...

    def search(self, query: "QueryBundle", k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (rows, scores), best first, considering only rows where ``allowed`` is True (pre-filter)."""


class QueryBundle:
    """A query as the retrieval branches see it; the dense vector is computed once, on first use."""

    def __init__(self, text: str, embed_query: Any = None) -> None:
        self.text = text
        self._embed_query = embed_query
        self._vector: np.ndarray | None = None

    @property
    def vector(self) -> np.ndarray:
        if self._vector is None:
            if self._embed_query is None:
                raise PluginError("dense retrieval needs an embedder, none is bound")
            self._vector = self._embed_query(self.text)
        return self._vector


@runtime_checkable
class Fusion(Protocol):
    def fuse(self, rankings: dict[str, tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Merge per-branch (rows, scores) rankings into one (rows, fused scores), best first."""


BRANCHES = ("bm25", "dense")


@dataclass
class QueryVariant:
    """One query a transform asks the retrieval branches to run.

    ``branches`` names the branches that run it (a PRF expansion is for BM25 only, a HyDE passage for the dense
    branch only); ``label`` names its ranking in ``--explain`` (``bm25#prf``, ``dense#hyde``); ``filter`` is a
    metadata filter expression (or a list of them, all must hold) applied as a pre-filter to this variant only, on
    top of the query's own filter (how ``classify`` routes a question). A plain ``str`` returned by a transform
    means ``QueryVariant(text)``: both branches, no extra filter.
    """

    text: str
    branches: tuple[str, ...] = BRANCHES
    label: str = ""
    filter: tuple[str, ...] = ()


@runtime_checkable
class QueryTransform(Protocol):
    def transform(self, query: str, scope: Any = None) -> "list[str | QueryVariant]":
        """Return the queries to retrieve with (the first is the main one); each a str (both branches) or a
        :class:`QueryVariant` restricted to some branches. ``scope`` (``retrieve.pipeline.SearchScope``) is the
        query's read view inside its metadata pre-filter, for transforms that run a first retrieval pass."""


@runtime_checkable
class HitProcessor(Protocol):
    """Rerankers and filters share one call."""

    def process(self, query: str, hits: list[Hit]) -> list[Hit]: ...


@runtime_checkable
class Generator(Protocol):
    def answer(self, query: str, hits: list[Hit]) -> Answer: ...

    def stream(self, query: str, hits: list[Hit]) -> Iterator["str | Answer"]:
        """Yield the answer's text as deltas (str), then the final, checked :class:`Answer` as the last item."""


# --- registry --------------------------------------------------------------------------------------------------

class Registry:
    def __init__(self) -> None:
        self._classes: dict[tuple[str, str], type[Plugin]] = {}
        self._lazy: dict[tuple[str, str], str] = {}
        self._loaded_entry_points = False

    def _ensure_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            stage, _, name = ep.name.partition(".")
            if stage not in STAGES or not name:
                continue  # reported by `ragkit plugins --check`; never fatal for other plugins
            self._lazy.setdefault((stage, name), ep.value)
        if not self._lazy:
            raise PluginError(
                "no plugins registered: ragkit must be installed (pip install -e .) so its entry points exist")

    def register(self, cls: type[Plugin]) -> type[Plugin]:
        if cls.stage not in STAGES:
            raise PluginError(f"plugin {cls.__name__}: unknown stage {cls.stage!r} (stages: {', '.join(STAGES)})")
        self._classes[(cls.stage, cls.name)] = cls
        return cls

    def unregister(self, stage: str, name: str) -> None:
        """Forget a class added with ``register`` (tests, notebooks); unknown names are ignored."""
        self._classes.pop((stage, name), None)

    def names(self, stage: str) -> list[str]:
        self._ensure_entry_points()
        return sorted({n for s, n in [*self._lazy, *self._classes] if s == stage})

    def get(self, stage: str, name: str) -> type[Plugin]:
        self._ensure_entry_points()
        if stage not in STAGES:
            raise PluginError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
        key = (stage, name)
        if key not in self._classes:
            target = self._lazy.get(key)
            if target is None:
                known = ", ".join(self.names(stage)) or "none"
                raise PluginError(f"unknown {stage} plugin {name!r} (available: {known})")
            module_name, _, attr = target.partition(":")
            try:
                cls = getattr(importlib.import_module(module_name), attr)
            except Exception as exc:  # a broken third-party plugin must name itself
                raise PluginError(f"{stage} plugin {name!r} failed to import from {target}: {exc}") from exc
            if getattr(cls, "stage", None) != stage or getattr(cls, "name", None) != name:
                raise PluginError(f"{target} is registered as {stage}.{name} but declares "
                                  f"{getattr(cls, 'stage', None)}.{getattr(cls, 'name', None)}")
            self._classes[key] = cls
        return self._classes[key]

    def create(self, stage: str, spec: dict[str, Any] | str) -> Plugin:
        if isinstance(spec, str):
            spec = {"name": spec}
        params = dict(spec)
        name = params.pop("name", None)
        if not name:
            raise ConfigError(f"{stage}: missing plugin 'name' (available: {', '.join(self.names(stage))})")
        return self.get(stage, name)(**params)

    def all(self) -> Iterator[type[Plugin]]:
        self._ensure_entry_points()
        for stage in STAGES:
            for name in self.names(stage):
                yield self.get(stage, name)


def _params_error(stage: str, name: str, model: type[BaseModel], exc: ValidationError) -> str:
    known = ", ".join(model.model_fields) or "none"
    parts = []
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # unknown names first
    for err in errors:
        field = ".".join(str(p) for p in err["loc"]) or "?"
        if err["type"] == "extra_forbidden":
            # the list of known names is only meaningful for top-level parameters
            parts.append(f"unknown parameter {field!r}" + (f" (known: {known})" if len(err["loc"]) == 1 else ""))
        else:
            parts.append(f"parameter {field!r}: {err['msg']}")
    return f"{stage} plugin {name!r}: " + "; ".join(parts)


def describe_params(cls: type[Plugin]) -> list[dict[str, Any]]:
    out = []
    for fname, f in cls.Params.model_fields.items():
        default = f.get_default(call_default_factory=True)
        out.append({"name": fname, "type": getattr(f.annotation, "__name__", str(f.annotation)),
                    "default": default, "help": f.description or ""})
    return out


registry = Registry()
