"""One ingest run, as named phases over a store writer:

    decide (per file: unchanged / to load / skipped / failed)
      -> load + chunk (changed files; a failing file keeps its previously indexed version)
      -> assemble (what the next version keeps, replaces and removes; the report's counts)
      -> embed (only text the cache does not know) + write + commit (atomic)

Nothing is committed when nothing changed or every changed file failed: the index stays exactly as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragkit.config import IngestConfig
from ragkit.embedding.cache import EmbeddingCache, embed_with_cache
from ragkit.errors import LoadError
from ragkit.index.store import DocRecord, FileRecord, StoreReader, StoreWriter
from ragkit.index.tables import TABLE_POSITION
from ragkit.ingest._read import one_line
from ragkit.ingest.files import extension, is_under, loaders_by_extension, pick_loader, sha256_file
from ragkit.ingest.tables import describe, table_name
from ragkit.ingest.walk import SourceFile, walk
from ragkit.ingest.worker import ParseWorker
from ragkit.plugins import Plugin, registry
from ragkit.types import Chunk, Document, LoadIssue, Table

Progress = Callable[[str, int, int], None]


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
    tables_added: int = 0
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
class Loaded:
    """One changed file, loaded and chunked."""

    file: FileRecord
    documents: list[DocRecord]
    chunks: list[Chunk]
    tables: list[Table] = field(default_factory=list)


class IngestRun:
    """Ingest ``paths`` through ``writer``; ``run()`` returns the report."""

    def __init__(self, writer: StoreWriter, embedder: Any, cache: EmbeddingCache | None, cfg: IngestConfig,
                 progress: Progress | None = None) -> None:
        self.writer, self.embedder, self.cache, self.cfg = writer, embedder, cache, cfg
        self.progress = progress or (lambda stage, done, total: None)
        self.report = IngestReport()
        self.prev_files = writer.previous.files() if writer.previous is not None else {}
        self.unreadable: list[Path] = []  # set by decide()
        prev_tables = getattr(writer.previous, "tables", None)
        # table name -> the source whose document owns it (names stay unique across the index)
        self.table_owner: dict[str, str] = {}
        if prev_tables is not None:
            by_doc = {d: src for src, rec in self.prev_files.items() for d in rec.doc_ids}
            self.table_owner = {t.name: by_doc.get(t.doc_id, "") for t in prev_tables().tables()}

    def run(self, paths: Iterable[str | Path], *, sync: bool = False) -> IngestReport:
        t0 = time.perf_counter()
        paths = list(paths)
        to_load, seen = self.decide(paths)
        removed = self.removed_sources(paths, seen) if sync else set()
        prev = self.writer.previous
        if not to_load and not removed and prev is not None:
            return self.nothing_committed(prev, t0)
        loaded = self.load(to_load)
        if self.writer.current is not None and not loaded and not removed:
            # every changed file failed (or, with --rebuild, every file): the index stays as it was
            return self.nothing_committed(self.writer.current, t0)
        self.assemble(loaded, removed)
        self.commit(loaded)
        self.report.seconds = time.perf_counter() - t0
        return self.report

    # --- phases ---

    def decide(self, paths: list[str | Path]) -> tuple[list[tuple[SourceFile, str, Plugin]], set[str]]:
        """Walk the paths; per file: unsupported (skipped), unreadable or too large (failed), unchanged, or to
        load. Returns the files to load (with their hash and loader) and every source seen."""
        r = self.report
        found = walk(paths, self.cfg.include, self.cfg.exclude)
        files = found.files
        r.failed.extend((m, "no such file or directory") for m in found.missing)
        r.skipped.extend(found.skipped)
        self.unreadable = [Path(u) for u in found.unreadable]  # still there: --sync keeps what was indexed of them
        r.files_seen = len(files) + len(found.skipped)
        loaders = configured_loaders(self.cfg)
        max_bytes = int(self.cfg.max_file_mb * 1024 * 1024)
        to_load, seen = [], set()
        for sf in files:
            seen.add(sf.key)
            loader = pick_loader(sf.path.name, loaders)
            if loader is None:
                r.skipped.append((str(sf.path), f"unsupported file type {extension(sf.path.name) or '(none)'}"))
                continue
            try:
                size = sf.path.stat().st_size
                if size > max_bytes:
                    raise LoadError(f"file too large ({size / 2**20:.1f} MB > max_file_mb {self.cfg.max_file_mb:g})")
                digest = sha256_file(sf.path)
            except LoadError as exc:
                r.failed.append((str(sf.path), str(exc)))
                continue
            except OSError as exc:  # gone or changed since the walk
                r.failed.append((str(sf.path), f"unreadable: {exc.strerror or exc}"))
                continue
            old = self.prev_files.get(sf.key)
            if old is not None and old.sha256 == digest:
                r.files_unchanged += 1
                continue
            to_load.append((sf, digest, loader))
        return to_load, seen

    def removed_sources(self, paths: list[str | Path], seen: set[str]) -> set[str]:
        """``--sync``: indexed files under the given roots that no longer exist there (a file or folder that exists
        but cannot be read now keeps what was indexed of it)."""
        roots = [Path(p).resolve() for p in paths]
        return {s for s in self.prev_files if s not in seen and any(is_under(Path(s), r) for r in roots)
                and not any(is_under(Path(s), u) for u in self.unreadable)}

    def load(self, to_load: list[tuple[SourceFile, str, Plugin]]) -> dict[str, Loaded]:
        t = time.perf_counter()
        r = self.report
        budget = self.embedder.token_budget()
        chunker = registry.create("chunker", self.writer.settings["chunker"])
        reloading = {sf.key for sf, _, _ in to_load}
        # document id -> the source that owns it (files not being reloaded keep theirs)
        owner = {d: src for src, rec in self.prev_files.items() if src not in reloading for d in rec.doc_ids}
        loaded: dict[str, Loaded] = {}

        def parse(i: int) -> tuple[list[DocRecord], list[Chunk], list[tuple[str, str]], list[Table]]:
            sf, digest, loader = to_load[i]
            return load_file(sf, loader, chunker, budget, digest, tables=self.cfg.tables)

        with ParseWorker(parse, self.cfg.max_parse_seconds, self.cfg.max_parse_memory_mb) as worker:
            for i, (sf, digest, loader) in enumerate(to_load):
                self.progress("load", i, len(to_load))
                try:
                    docs, chunks, issues, tables = worker.run(i)
                except LoadError as exc:
                    r.failed.append((str(sf.path), str(exc)))
                    continue
                self.keep(loaded, owner, sf, digest, docs, chunks, issues, tables, reloading)
        self.progress("load", len(to_load), len(to_load))
        r.timings["load_chunk"] = time.perf_counter() - t
        return loaded

    def keep(self, loaded: dict[str, Loaded], owner: dict[str, str], sf: SourceFile, digest: str,
             docs: list[DocRecord], chunks: list[Chunk], issues: list[tuple[str, str]], tables: list[Table],
             reloading: set[str]) -> None:
        """Add one parsed file to ``loaded`` unless its document ids clash or it vanished meanwhile; its tables
        get names unique in the index and description chunks."""
        r = self.report
        r.warnings.extend(issues)
        clash = duplicate_id(docs, sf.key, owner)
        if clash is not None:
            r.failed.append((str(sf.path), f"duplicate document id {clash!r} "
                                            f"(also from {owner.get(clash, sf.path.name)})"))
            return
        try:
            st = sf.path.stat()
        except OSError as exc:  # removed while it was loading
            r.failed.append((str(sf.path), f"unreadable: {exc.strerror or exc}"))
            return
        owner.update((d.doc_id, sf.key) for d in docs)
        taken = {n for n, src in self.table_owner.items() if src not in reloading or src in loaded}
        chunks = chunks + table_chunks(tables, sf.path.stem, taken)
        self.table_owner = {n: s for n, s in self.table_owner.items() if s != sf.key}
        self.table_owner.update((t.name, sf.key) for t in tables)
        r.files_read += 1
        loaded[sf.key] = Loaded(FileRecord(sf.key, digest, st.st_size, st.st_mtime, [d.doc_id for d in docs]),
                                docs, chunks, tables)

    def assemble(self, loaded: dict[str, Loaded], removed: set[str]) -> None:
        """Tell the writer which sources the next version drops, and count documents added / updated / removed."""
        r = self.report
        self.writer.remove(set(loaded) | removed)
        prev_doc_ids = {d for rec in self.prev_files.values() for d in rec.doc_ids}
        for item in loaded.values():
            for d in item.documents:
                if d.doc_id in prev_doc_ids:
                    r.documents_updated += 1
                else:
                    r.documents_added += 1
        r.documents_removed = sum(len(self.prev_files[s].doc_ids) for s in removed)

    def commit(self, loaded: dict[str, Loaded]) -> None:
        r = self.report
        t = time.perf_counter()
        items = list(loaded.values())
        chunks = [c for item in items for c in item.chunks]
        vectors, r.chunks_embedded = embed_with_cache(
            [c.text for c in chunks], self.embedder.model_id,
            lambda batch: self.embedder.embed(batch, self.cfg.embed_batch_size),
            self.cache, self.embedder.dim, progress=lambda d, n: self.progress("embed", d, n))
        r.timings["embed"] = time.perf_counter() - t
        t = time.perf_counter()
        self.progress("index", 0, 2)
        self.writer.add([d for item in items for d in item.documents], chunks, vectors,
                        [item.file for item in items])
        tables = [t for item in items for t in item.tables]
        if tables:
            if hasattr(self.writer, "add_tables"):
                self.writer.add_tables(tables)
                r.tables_added = len(tables)
            else:
                r.warnings.append(("tables", f"{len(tables)} tables not stored: this index store keeps no tables"))
        r.generation = self.writer.commit()
        self.progress("index", 2, 2)
        r.timings["index_commit"] = time.perf_counter() - t
        r.committed = True
        r.documents_total, r.chunks_total = self.writer.n_documents, self.writer.n_chunks

    def nothing_committed(self, reader: StoreReader, t0: float) -> IngestReport:
        r = self.report
        r.generation = reader.name
        r.documents_total, r.chunks_total = reader.n_documents, reader.n_chunks
        r.seconds = time.perf_counter() - t0
        return r


def configured_loaders(cfg: IngestConfig) -> dict[str, Plugin]:
    """Every loader by extension; the built-in loaders get the limits of the ingest config (line length, expanded
    size, HTML depth and elements, PDF pages)."""
    lines = {"max_line_chars": cfg.max_line_chars}
    params = {"html": {"max_depth": cfg.max_html_depth, "max_elements": cfg.max_html_elements, **lines},
              "pdf": {"max_pages": cfg.max_pdf_pages}, "text": lines, "markdown": lines, "table": lines,
              "beir": {**lines, "max_expanded_mb": cfg.max_expanded_mb},
              "docx": {"max_expanded_mb": cfg.max_expanded_mb}}
    table, made = loaders_by_extension(), {}
    for ext, loader in table.items():
        if loader.name in params:
            if loader.name not in made:
                made[loader.name] = type(loader)(**params[loader.name])
            table[ext] = made[loader.name]
    return table


# --- one file ------------------------------------------------------------------------------------------------

def load_file(sf: SourceFile, loader: Plugin, chunker: Plugin, budget: Any, digest: str, *,
              tables: bool = False) -> tuple[list[DocRecord], list[Chunk], list[tuple[str, str]], list[Table]]:
    """Load one file into document records, chunks and tables (not yet named); per-record problems come back as
    warnings. Tables are kept from table files (CSV, XLSX) always, from other documents when ``tables`` is true."""
    docs: list[Document] = []
    issues: list[tuple[str, str]] = []
    try:
        for item in loader.load(sf.path, sf.rel):
            if isinstance(item, LoadIssue):
                issues.append((f"{sf.path}:{item.location.split(':')[-1]}", item.reason))
            else:
                docs.append(item)
    except (LoadError, MemoryError):  # a MemoryError is the parse worker's to name (its memory cap)
        raise
    except Exception as exc:  # a loader bug or an unexpected format quirk: report it, do not crash ingest
        raise LoadError(f"{type(exc).__name__}: {one_line(exc)}") from None
    if not docs:
        raise LoadError("no documents")
    try:
        mtime = sf.path.stat().st_mtime
    except OSError as exc:
        raise LoadError(f"unreadable: {exc.strerror or exc}") from None
    records, chunks, found = [], [], []
    for doc in docs:
        doc.metadata.update({"source": str(sf.path), "mtime": mtime, "sha256": digest,
                             "format": loader.name, "doc_id": doc.doc_id})
        records.append(DocRecord(doc.doc_id, str(sf.path), doc.title, doc.metadata))
        chunks.extend(chunker.split(doc, budget))
        if doc.tables and (tables or loader.name == "table"):
            for t in doc.tables:
                t.doc_id, t.source, t.metadata = doc.doc_id, str(sf.path), dict(doc.metadata)
                t.title = t.title or doc.title
                found.append(t)
    return records, chunks, issues, found


def table_chunks(tables: list[Table], stem: str, taken: set[str]) -> list[Chunk]:
    """Name each table (unique in ``taken``, which grows) and make the chunk that describes it, at the
    document's table positions (after its text chunks)."""
    out, index = [], {}
    for t in tables:
        i = index[t.doc_id] = index.get(t.doc_id, -1) + 1
        t.name = table_name(stem, t, taken)
        pos = TABLE_POSITION + i
        meta = {**t.metadata, "title": t.title, "table": t.name, "position": pos}
        out.append(Chunk(chunk_id=f"{t.doc_id}#table-{i}", doc_id=t.doc_id, text=describe(t), position=pos,
                         metadata=meta))
    return out


def duplicate_id(docs: list[DocRecord], source: str, owner: dict[str, str]) -> str | None:
    """A document id this file shares with another file, or twice within itself (None: all unique)."""
    clash = next((d.doc_id for d in docs if owner.get(d.doc_id, source) != source), None)
    if clash is None:
        seen: set[str] = set()
        for d in docs:
            if d.doc_id in seen:
                return d.doc_id
            seen.add(d.doc_id)
    return clash
