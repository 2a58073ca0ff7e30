"""The Engine composes the configured plugins into the pipeline

    walk -> load -> chunk -> embed (cached) -> index (sparse + dense + docstore, one atomic commit)
    query -> transforms -> sparse | dense (pre-filtered) -> fusion -> rerankers -> filters -> generator

It holds no stage logic of its own: each arrow is one plugin call.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.config import INDEX_SECTIONS, Config, PluginSpec, load_config
from ragkit.embedding.cache import EmbeddingCache, embed_with_cache
from ragkit.errors import IndexConfigMismatch, IndexCorruptError, LoadError, RagkitError
from ragkit.filter_expr import to_filter
from ragkit.index.docstore import DocRecord, DocStore, FileRecord, write_docstore
from ragkit.index.store import IndexDir, Manifest, now
from ragkit.ingest.walk import SourceFile, walk
from ragkit.plugins import BRANCHES, Plugin, QueryBundle, QueryVariant, Resources, registry
from ragkit.types import Answer, Chunk, Document, Hit, LoadIssue

Progress = Callable[[str, int, int], None]

# the metadata pre-filter mask of the query being served, for transforms that run a first retrieval pass
_ALLOWED: contextvars.ContextVar[np.ndarray | None] = contextvars.ContextVar("ragkit_allowed", default=None)


@dataclass
class IngestReport:
    files_seen: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    documents_added: int = 0
    documents_updated: int = 0
    documents_removed: int = 0
    documents_total: int = 0
    chunks_total: int = 0
    chunks_embedded: int = 0
    generation: str | None = None
    committed: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for key in ("skipped", "failed", "warnings"):
            d[key] = [{"path": p, "reason": r} for p, r in d[key]]
        return d


@dataclass
class Retrieval:
    hits: list[Hit]
    timings: dict[str, float]
    trace: list[str]


class Generation:
    """One committed generation, opened read-only: docstore + sparse + dense parts."""

    def __init__(self, path: Path, sparse: Plugin, dense: Plugin) -> None:
        self.path = path
        self.name = path.name  # a generation is named by its directory (it is staged before it has a name)
        try:
            self.manifest = Manifest.read(path / "manifest.json")
            self.docstore = DocStore(path / "docstore.sqlite")
            sparse.load(path / "sparse")
            dense.load(path / "dense")
        except RagkitError:
            raise
        except Exception as exc:
            raise IndexCorruptError(f"{path}: cannot open index generation: {exc}") from None
        self.sparse, self.dense = sparse, dense
        sizes = {"manifest": self.manifest.n_chunks, "docstore": self.docstore.n_chunks,
                 "sparse": len(sparse), "dense": len(dense)}
        if len(set(sizes.values())) != 1:
            raise IndexCorruptError(f"{path}: index parts disagree on the number of chunks: {sizes}")

    def close(self) -> None:
        self.docstore.close()


def _canonical(stage: str, spec: PluginSpec) -> dict[str, Any]:
    return registry.create(stage, spec.as_dict()).spec()


class Engine:
    def __init__(self, index_path: str | Path, config: Config, *, embedding_cache: str | Path | None = None) -> None:
        """``embedding_cache``: the SQLite embedding cache to use instead of the index's own (ablations share
        one across indexes, so a text is embedded once whatever index it goes into)."""
        self.dir = IndexDir(index_path)
        self._cache_path = Path(embedding_cache) if embedding_cache is not None else None
        self.dir.validate()
        self.config = config
        self._lock = threading.RLock()
        self._gen: Generation | None = None
        self._gen_name: str | None = None
        self._cache: EmbeddingCache | None = None
        self._index_config = self._resolve_index_config()
        self.embedder = registry.create("embedder", self._index_config["embedder"])
        self.resources = Resources(embedder=self.embedder, embed_cached=self.embed_cached,
                                   neighbours=self._neighbours, llm=self._llm, sparse_search=self._sparse_search,
                                   analyze=self._analyze)
        self.fusion = self._make("fusion", config.fusion)
        self.transforms = [self._make("transform", s) for s in config.transforms]
        self.rerankers = [self._make("reranker", s) for s in config.rerankers]
        self.filters = [self._make("filter", s) for s in config.filters]
        self.generator = self._make("generator", config.generator)

    # --- construction --------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path = ".ragkit", config: str | Path | dict | Config | None = None,
             overrides: list[str] | dict[str, Any] | None = None, *,
             embedding_cache: str | Path | None = None) -> "Engine":
        """Open (or prepare to create) the index at ``path``. ``config`` is a ragkit.toml path, a dict or a
        Config; without one, defaults apply for the query stages and the index's own stored settings for the
        index-shaping ones. ``overrides`` are ``key.path=value`` strings or a dict. ``embedding_cache`` is an
        embedding-cache file shared with other indexes (default: the index's own)."""
        return cls(path, load_config(config, overrides), embedding_cache=embedding_cache)

    def _make(self, stage: str, spec: PluginSpec) -> Plugin:
        plugin = registry.create(stage, spec.as_dict())
        plugin.bind(self.resources)
        return plugin

    def _resolve_index_config(self) -> dict[str, dict[str, Any]]:
        """What the index is built with: the committed generation's settings, else the config's.

        When the config explicitly sets an index-shaping section that differs from the committed one, the
        difference is remembered and reported by ``_settings_for`` (an error unless rebuilding)."""
        self._wanted = {s: _canonical(s, getattr(self.config, s)) for s in INDEX_SECTIONS}
        self._mismatch: tuple[str, Any, Any] | None = None
        current = self.dir.current() if self.dir.is_index() else None
        if current is None:
            return dict(self._wanted)
        stored = Manifest.read(self.dir.generation_path(current) / "manifest.json").config
        for section in INDEX_SECTIONS:
            if section in self.config.model_fields_set and stored.get(section) != self._wanted[section]:
                self._mismatch = (section, stored.get(section), self._wanted[section])
                break
        return dict(stored)

    def _settings_for(self, rebuild: bool) -> dict[str, dict[str, Any]]:
        if rebuild:
            return dict(self._wanted)
        if self._mismatch:
            section, have, want = self._mismatch
            raise IndexConfigMismatch(
                f"{self.dir.path}: index was built with {section} {_short(have)}, config asks for {_short(want)}; "
                "re-run ingest with --rebuild to rebuild the index")
        return self._index_config

    def _use_settings(self, settings: dict[str, dict[str, Any]]) -> None:
        if settings.get("embedder") != self._index_config.get("embedder") or self.embedder is None:
            self.embedder = registry.create("embedder", settings["embedder"])
            self.resources.embedder = self.embedder
        self._index_config = settings

    # --- shared resources ----------------------------------------------------------------------------------

    @property
    def cache(self) -> EmbeddingCache:
        if self._cache is None:
            self._cache = EmbeddingCache(self._cache_path or self.dir.cache_path)
        return self._cache

    def embed_cached(self, texts: Sequence[str]) -> np.ndarray:
        cache = self.cache if self.dir.path.exists() else None
        vecs, _ = embed_with_cache(texts, self.embedder.model_id, self.embedder.embed, cache, self.embedder.dim)
        return vecs

    def _llm(self):
        llm = getattr(getattr(self, "generator", None), "llm", None)
        if llm is None:
            from ragkit.errors import ConfigError

            raise ConfigError(f"this step needs an LLM, and generator {self.config.generator.name!r} has none: "
                              "configure an LLM generator ([generator] name = 'llama-cpp' | 'openai' | 'cohere')")
        return llm

    def _sparse_search(self, text: str, k: int) -> list[tuple[Chunk, float]]:
        gen = self.generation()
        if gen is None or not text.strip():
            return []
        rows, scores = gen.sparse.search(QueryBundle(text), k, _ALLOWED.get())
        return list(zip(gen.docstore.chunks(rows), (float(s) for s in scores)))

    def _analyze(self, text: str) -> list[str]:
        gen = self.generation()
        analyzer = getattr(gen.sparse, "analyzer", None) if gen else None
        return list(analyzer(text)) if analyzer else re.findall(r"\w+", text.lower())

    def _neighbours(self, doc_id: str, positions: Sequence[int]) -> dict[int, Chunk]:
        gen = self.generation()
        return gen.docstore.neighbours(doc_id, positions) if gen else {}

    # --- reading -------------------------------------------------------------------------------------------

    def generation(self) -> Generation | None:
        """The committed generation, reopened when another process has committed a newer one."""
        with self._lock:
            name = self.dir.current() if self.dir.is_index() else None
            if name != self._gen_name:
                self._settings_for(rebuild=False)
                # The replaced generation is not closed here: requests in other threads may still be reading
                # it (a server finishes in-flight requests on the generation they started with). It is freed
                # when the last of them drops its reference; Engine.close() closes the current one.
                if name is None:
                    self._gen = None
                else:
                    path = self.dir.generation_path(name)
                    self._use_settings(Manifest.read(path / "manifest.json").config)
                    cfg = self._index_config
                    self._gen = Generation(path,
                                           registry.create("sparse", cfg["sparse"]),
                                           registry.create("dense", cfg["dense"]))
                self._gen_name = name
            return self._gen

    def warm_up(self) -> "Engine":
        """Load the models and the committed generation now instead of on the first query."""
        self.embedder.warm_up()
        self.generation()
        for plugin in [self.fusion, *self.transforms, *self.rerankers, *self.filters, self.generator]:
            plugin.warm_up()
        return self

    def stats(self) -> dict[str, Any]:
        gen = self.generation()
        if gen is None:
            return {"index": str(self.dir.path), "generation": None, "documents": 0, "chunks": 0}
        m = gen.manifest
        return {"index": str(self.dir.path), "generation": gen.name, "documents": m.n_documents,
                "chunks": m.n_chunks, "embedding_model": m.model_id, "dim": m.dim, "config": m.config,
                "created": m.created}

    # --- ingest --------------------------------------------------------------------------------------------

    def ingest(self, paths: Iterable[str | Path], *, sync: bool = False, rebuild: bool = False,
               progress: Progress | None = None) -> IngestReport:
        t0 = time.perf_counter()
        report = IngestReport()
        paths = list(paths)
        with self.dir.write_lock():
            index_cfg = self._settings_for(rebuild)
            self._mismatch = None  # from here on the index is (re)built with these settings
            current = self.generation()
            prev = None if rebuild else current
            self._use_settings(index_cfg)
            prev_files = prev.docstore.files() if prev else {}
            files, missing = walk(paths, self.config.ingest.include, self.config.ingest.exclude)
            report.failed.extend((m, "no such file or directory") for m in missing)
            report.files_seen = len(files)

            # 1. decide per file: unchanged / to load / skipped / failed
            to_load: list[tuple[SourceFile, str, Plugin]] = []
            seen_sources = set()
            loaders = _loaders_by_extension()
            max_bytes = int(self.config.ingest.max_file_mb * 1024 * 1024)
            for sf in files:
                seen_sources.add(sf.key)
                loader = _pick_loader(sf.path.name, loaders)
                if loader is None:
                    report.skipped.append((str(sf.path), f"unsupported file type {_ext(sf.path.name) or '(none)'}"))
                    continue
                try:
                    size = sf.path.stat().st_size
                    if size > max_bytes:
                        raise LoadError(f"file too large ({size / 2**20:.1f} MB > max_file_mb "
                                        f"{self.config.ingest.max_file_mb:g})")
                    digest = sha256_file(sf.path)
                except LoadError as exc:
                    report.failed.append((str(sf.path), str(exc)))
                    continue
                old = prev_files.get(sf.key)
                if old is not None and old.sha256 == digest:
                    report.files_unchanged += 1
                    continue
                to_load.append((sf, digest, loader))

            removed_sources = set()
            if sync and prev_files:
                roots = [Path(p).resolve() for p in paths]
                for source in prev_files:
                    if source not in seen_sources and any(_under(Path(source), r) for r in roots):
                        removed_sources.add(source)

            if not to_load and not removed_sources and prev is not None:
                return _nothing_committed(report, prev, t0)

            # 2. load + chunk changed files; a failing file keeps its previously indexed version
            t = time.perf_counter()
            budget = self.embedder.token_budget()
            chunker = registry.create("chunker", index_cfg["chunker"])
            new_docs: dict[str, tuple[str, list[DocRecord], list[Chunk]]] = {}
            reloading = {sf.key for sf, _, _ in to_load} | removed_sources
            owner = {d: src for src, rec in prev_files.items() if src not in reloading for d in rec.doc_ids}
            new_file_records: dict[str, FileRecord] = {}
            for i, (sf, digest, loader) in enumerate(to_load):
                if progress:
                    progress("load", i, len(to_load))
                try:
                    docs, chunks, issues = self._load_one(sf, loader, chunker, budget, digest)
                except LoadError as exc:
                    report.failed.append((str(sf.path), str(exc)))
                    continue
                report.warnings.extend(issues)
                clash = next((d.doc_id for d in docs if owner.get(d.doc_id, sf.key) != sf.key), None)
                if clash is None and len({d.doc_id for d in docs}) < len(docs):
                    clash = next(d.doc_id for i, d in enumerate(docs) if d.doc_id in {x.doc_id for x in docs[:i]})
                if clash is not None:
                    report.failed.append((str(sf.path), f"duplicate document id {clash!r} "
                                                        f"(also from {owner.get(clash, sf.path.name)})"))
                    continue
                owner.update((d.doc_id, sf.key) for d in docs)
                report.files_read += 1
                new_docs[sf.key] = (sf.key, docs, chunks)
                st = sf.path.stat()
                new_file_records[sf.key] = FileRecord(sf.key, digest, st.st_size, st.st_mtime,
                                                      [d.doc_id for d in docs])
            if progress:
                progress("load", len(to_load), len(to_load))
            report.timings["load_chunk"] = time.perf_counter() - t

            # 3. assemble the next generation's content: kept (old) + new, in a stable order
            replaced = set(new_docs) | removed_sources
            keep_docs, keep_chunks, keep_files = [], [], []
            if prev is not None:
                kept_ids = {d for src, rec in prev_files.items() if src not in replaced for d in rec.doc_ids}
                keep_docs = [d for d in prev.docstore.documents() if d.doc_id in kept_ids]
                keep_chunks = [c for c in prev.docstore.iter_chunks() if c.doc_id in kept_ids]
                keep_files = [rec for src, rec in prev_files.items() if src not in replaced]
            prev_doc_ids = {d for rec in prev_files.values() for d in rec.doc_ids}
            for _, docs, _ in new_docs.values():
                for d in docs:
                    if d.doc_id in prev_doc_ids:
                        report.documents_updated += 1
                    else:
                        report.documents_added += 1
            report.documents_removed = sum(len(prev_files[s].doc_ids) for s in removed_sources)
            all_docs = keep_docs + [d for _, docs, _ in new_docs.values() for d in docs]
            all_chunks = keep_chunks + [c for _, _, chunks in new_docs.values() for c in chunks]
            all_files = keep_files + list(new_file_records.values())

            if current is not None and not new_docs and not removed_sources:
                # every changed file failed (or, with --rebuild, every file): nothing to commit, the index
                # stays exactly as it was
                self._use_settings(current.manifest.config)  # a failed --rebuild leaves the old settings
                return _nothing_committed(report, current, t0)

            # 4. embed what the cache does not know, build both branches, write and commit
            t = time.perf_counter()
            texts = [c.text for c in all_chunks]
            vectors, n_embedded = embed_with_cache(
                texts, self.embedder.model_id,
                lambda batch: self.embedder.embed(batch, self.config.ingest.embed_batch_size),
                self.cache, self.embedder.dim,
                progress=(lambda d, n: progress("embed", d, n)) if progress else None)
            report.chunks_embedded = n_embedded
            report.timings["embed"] = time.perf_counter() - t

            t = time.perf_counter()
            staging = self.dir.new_staging()
            sparse = registry.create("sparse", index_cfg["sparse"])
            dense = registry.create("dense", index_cfg["dense"])
            if progress:
                progress("index", 0, 2)
            sparse.build(texts, None)
            sparse.save(staging / "sparse")
            dense.build(texts, vectors)
            dense.save(staging / "dense")
            write_docstore(staging / "docstore.sqlite", all_docs, all_chunks, all_files)
            Manifest(created=now(), config=index_cfg, model_id=self.embedder.model_id,
                     dim=int(self.embedder.dim), n_documents=len(all_docs),
                     n_chunks=len(all_chunks)).write(staging / "manifest.json")
            if progress:
                progress("index", 2, 2)
            _crash_point("before-commit")
            name = self.dir.commit(staging)
            report.timings["index_commit"] = time.perf_counter() - t
            report.generation, report.committed = name, True
            report.documents_total, report.chunks_total = len(all_docs), len(all_chunks)
        report.seconds = time.perf_counter() - t0
        return report

    def _load_one(self, sf: SourceFile, loader: Plugin, chunker: Plugin, budget, digest: str):
        docs: list[Document] = []
        issues: list[tuple[str, str]] = []
        try:
            for item in loader.load(sf.path, sf.rel):
                if isinstance(item, LoadIssue):
                    issues.append((f"{sf.path}:{item.location.split(':')[-1]}", item.reason))
                else:
                    docs.append(item)
        except LoadError:
            raise
        except Exception as exc:  # a loader bug or an unexpected format quirk: report it, do not crash ingest
            raise LoadError(f"{type(exc).__name__}: {exc}") from None
        if not docs:
            raise LoadError("no documents")
        mtime = sf.path.stat().st_mtime
        records, chunks = [], []
        for doc in docs:
            doc.metadata.update({"source": str(sf.path), "mtime": mtime, "sha256": digest,
                                 "format": loader.name, "doc_id": doc.doc_id})
            records.append(DocRecord(doc.doc_id, str(sf.path), doc.title, doc.metadata))
            chunks.extend(chunker.split(doc, budget))
        return records, chunks, issues

    # --- query ---------------------------------------------------------------------------------------------

    def retrieve(self, query: str, *, k: int | None = None, filter: Any = None, mode: str | None = None) -> Retrieval:
        cfg = self.config.retrieval
        k = k or cfg.k
        mode = mode or cfg.mode
        if mode not in ("bm25", "dense", "hybrid"):
            raise RagkitError(f"unknown retrieval mode {mode!r} (bm25, dense, hybrid)")
        timings: dict[str, float] = {}
        trace: list[str] = []
        gen = self.generation()
        if gen is None or not query.strip():
            return Retrieval([], timings, ["empty index" if gen is None else "empty query"])
        flt = to_filter(filter)
        t = time.perf_counter()
        allowed = gen.docstore.mask(flt) if flt else None
        if flt:
            timings["filter_mask"] = time.perf_counter() - t
            trace.append(f"pre-filter: {int(allowed.sum())}/{len(allowed)} chunks pass")
        active = {"bm25": mode in ("bm25", "hybrid"), "dense": mode in ("dense", "hybrid")}
        variants = [QueryVariant(query)]
        token = _ALLOWED.set(allowed)  # the transforms' first passes (PRF) see the same pre-filter
        try:
            for tr in self.transforms:
                t = time.perf_counter()
                variants = _apply_transform(tr, variants)
                timings[f"transform:{tr.name}"] = time.perf_counter() - t
                trace.append(f"transform {tr.name}: " + " | ".join(
                    f"{'+'.join(v.branches)}: {v.text[:60]!r}" for v in variants))
        finally:
            _ALLOWED.reset(token)
        cand = max(cfg.candidates, k)
        rankings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for qi, v in enumerate(variants):
            bundle = QueryBundle(v.text, self.embedder.embed_query)
            v_allowed = allowed
            if v.filter:
                extra = gen.docstore.mask(to_filter(list(v.filter)))
                v_allowed = extra if allowed is None else (allowed & extra)
            for branch in v.branches:
                if not active.get(branch):
                    continue
                name = branch
                if name in rankings:
                    name = f"{branch}#{v.label or qi}"
                    if name in rankings:
                        name = f"{name}.{qi}"
                part = gen.sparse if branch == "bm25" else gen.dense
                t = time.perf_counter()
                rankings[name] = part.search(bundle, cand, v_allowed)
                timings[branch] = timings.get(branch, 0) + time.perf_counter() - t
        if not rankings:
            return Retrieval([], timings, trace + [f"no query variant targets the {mode} branch"])
        t = time.perf_counter()
        if len(rankings) == 1:
            (stage, (rows, scores)), = rankings.items()
        else:
            stage = self.fusion.name
            rows, scores = self.fusion.fuse(rankings, cand)
            timings["fusion"] = time.perf_counter() - t
        trace.append(" + ".join(rankings) + (f" -> fusion {stage}" if len(rankings) > 1 else ""))
        depth = cand if (self.rerankers or self.filters) else k
        rows, scores = rows[:depth], scores[:depth]
        per_branch = {name: {int(r): (i + 1, float(s)) for i, (r, s) in enumerate(zip(*rk))}
                      for name, rk in rankings.items()}
        hits = []
        for rank, (chunk, score) in enumerate(zip(gen.docstore.chunks(rows), scores), start=1):
            h = Hit(chunk=chunk, score=float(score))
            row = int(rows[rank - 1])
            for name, table in per_branch.items():
                if row in table:
                    h.ranks[name], h.scores[name] = table[row]
            if len(rankings) > 1:
                h.scores[stage], h.ranks[stage] = float(score), rank
            hits.append(h)
        for stage_plugin in [*self.rerankers, *self.filters]:
            t = time.perf_counter()
            hits = stage_plugin.process(query, hits)
            timings[f"{stage_plugin.stage}:{stage_plugin.name}"] = time.perf_counter() - t
            trace.append(f"{stage_plugin.stage} {stage_plugin.name}")
        return Retrieval(hits[:k], timings, trace)

    def query(self, query: str, *, k: int | None = None, filter: Any = None, mode: str | None = None) -> Answer:
        t0 = time.perf_counter()
        r = self.retrieve(query, k=k, filter=filter, mode=mode)
        t = time.perf_counter()
        answer = self.generator.answer(query, r.hits)
        r.timings["generate"] = time.perf_counter() - t
        r.timings["total"] = time.perf_counter() - t0
        answer.timings.update(r.timings)
        answer.trace = r.trace + [f"generator {self.generator.name}"] + answer.trace
        return answer

    def query_stream(self, query: str, *, k: int | None = None, filter: Any = None,
                     mode: str | None = None) -> "AnswerStream":
        """Like :meth:`query`, but iterate the answer's text as it is generated; ``.answer`` holds the checked
        Answer (citations, sources, timings) once the iteration has finished."""
        return AnswerStream(self, query, k=k, filter=filter, mode=mode)

    def close(self) -> None:
        with self._lock:
            if self._gen is not None:
                self._gen.close()
                self._gen, self._gen_name = None, None
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

    def __iter__(self):
        t0 = time.perf_counter()
        self.retrieval = r = self._engine.retrieve(self._query, **self._kw)
        t = time.perf_counter()
        first = None
        for item in self._engine.generator.stream(self._query, r.hits):
            if isinstance(item, Answer):
                self.answer = item
            else:
                if first is None:
                    first = time.perf_counter() - t
                yield item
        if self.answer is None:
            raise RagkitError(f"generator {self._engine.generator.name!r} ended its stream without an answer")
        r.timings["generate"] = time.perf_counter() - t
        if first is not None:
            r.timings["first_token"] = first
        r.timings["total"] = time.perf_counter() - t0
        self.answer.timings.update(r.timings)
        self.answer.trace = r.trace + [f"generator {self._engine.generator.name}"] + self.answer.trace


# --- helpers ---------------------------------------------------------------------------------------------------

def _apply_transform(tr: Plugin, variants: list[QueryVariant]) -> list[QueryVariant]:
    """Run one transform on every variant; a variant's outputs run only on branches both allow."""
    out: list[QueryVariant] = []
    for v in variants:
        for item in tr.transform(v.text):
            item = item if isinstance(item, QueryVariant) else QueryVariant(str(item))
            unknown = set(item.branches) - set(BRANCHES)
            if unknown:
                raise RagkitError(f"transform {tr.name!r}: unknown branch {sorted(unknown)[0]!r} "
                                  f"(branches: {', '.join(BRANCHES)})")
            branches = tuple(b for b in item.branches if b in v.branches)
            flt = (item.filter,) if isinstance(item.filter, str) else tuple(item.filter)
            if branches and item.text.strip():
                out.append(QueryVariant(item.text, branches, item.label or v.label, v.filter + flt))
    return out


def _nothing_committed(report: IngestReport, prev: Generation, t0: float) -> IngestReport:
    report.generation = prev.name
    report.documents_total = prev.manifest.n_documents
    report.chunks_total = prev.manifest.n_chunks
    report.seconds = time.perf_counter() - t0
    return report


def _short(spec: Any) -> str:
    if not isinstance(spec, dict):
        return repr(spec)
    return "{" + ", ".join(f"{k}={v!r}" for k, v in spec.items()) + "}"


def _ext(name: str) -> str:
    lower = name.lower()
    return ".jsonl.gz" if lower.endswith(".jsonl.gz") else os.path.splitext(lower)[1]


def _loaders_by_extension() -> dict[str, Plugin]:
    table: dict[str, Plugin] = {}
    for name in registry.names("loader"):
        cls = registry.get("loader", name)
        for ext in getattr(cls, "extensions", ()):
            table.setdefault(ext.lower(), cls())
    return table


def _pick_loader(filename: str, loaders: dict[str, Plugin]) -> Plugin | None:
    lower = filename.lower()
    best = None
    for ext, loader in loaders.items():
        if lower.endswith(ext) and (best is None or len(ext) > len(best[0])):
            best = (ext, loader)
    return best[1] if best else None


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content, read in 1 MiB blocks (ingest's change detection, dataset and model
    fingerprints); an unreadable file is a LoadError saying why."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except PermissionError:
        raise LoadError("permission denied") from None
    except OSError as exc:
        raise LoadError(f"unreadable: {exc.strerror or exc}") from None
    return h.hexdigest()


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _crash_point(name: str) -> None:
    """Test hook: RAGKIT_CRASH_AT=<name> kills this process with SIGKILL here (crash-safety tests)."""
    if os.environ.get("RAGKIT_CRASH_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
