"""``StoreConformance``: the executable contract of :mod:`ragkit.index.store`. Every store passes it.

Subclass it in a test module and give it a ``store_factory`` fixture: a function that returns a new, empty store
each time it is called::

    from ragkit.testing import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: MyStore(f"mystore://{tmp_path.name}")

The tests write a small corpus (three sources, seven chunks) with deterministic 8-dimensional unit vectors, so no
embedding model runs. ``index_settings`` and ``other_settings`` (two different sets of index settings) and
``reopen`` (a second handle on the same store, as another process would open it) can be overridden too.
"""

from __future__ import annotations

import copy
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from ragkit.errors import ConfigError, IndexConfigMismatch, IndexLockedError
from ragkit.filter_expr import to_filter
from ragkit.index.store import Candidates, DocRecord, FileRecord, Store, StoreReader, StoreWriter, search_both
from ragkit.plugins import QueryBundle
from ragkit.types import Chunk

DIM = 8
MODEL_ID = "conformance-vectors"
ALL = 100  # a k larger than any test corpus


def vector(text: str) -> np.ndarray:
    """A unit vector determined by the text alone (so a chunk's vector can be recomputed from its text)."""
    v = np.random.default_rng(zlib.crc32(text.encode("utf-8"))).normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


@dataclass(frozen=True)
class Source:
    """One source file holding one document; each chunk text starts with a word no other chunk has."""

    source: str
    title: str
    metadata: dict[str, Any]
    texts: tuple[str, ...]

    @property
    def doc_id(self) -> str:
        return self.source

    def chunk_ids(self) -> set[str]:
        return {f"{self.doc_id}#{i}" for i in range(len(self.texts))}

    def chunks(self) -> list[Chunk]:
        meta = {**self.metadata, "title": self.title}
        return [Chunk(f"{self.doc_id}#{i}", self.doc_id, t, i, dict(meta)) for i, t in enumerate(self.texts)]

    def record(self) -> DocRecord:
        return DocRecord(self.doc_id, self.source, self.title, dict(self.metadata))

    def file(self) -> FileRecord:
        return FileRecord(self.source, f"{zlib.crc32(''.join(self.texts).encode()):08x}" * 8,
                          sum(map(len, self.texts)), 1700000000.0, [self.doc_id])

    def words(self) -> list[str]:
        return [t.split(":")[0] for t in self.texts]


KEYS = Source("cloud/keys.md", "Rotating keys",
              {"product": "cloud", "year": 2024, "tags": ["security", "keys"], "status": "current",
               "date": "2024-05-01", "version": 3},
              ("zorblat: rotate the api key in the settings page",
               "quintavo: the previous key keeps working for one day",
               "mirelith: every key has a scope, ingest or read or admin"))
SELFHOSTED = Source("selfhosted/keys.md", "Keys on your server",
                    {"product": "selfhosted", "year": 2023, "tags": ["keys"], "date": "2024-03-01",
                     "version": "3.1"},
                    ("drovank: run the rotate command on the server",
                     "plessum: a flag disables the grace period"))
RETENTION = Source("cloud/retention.txt", "Retention",
                   {"product": "cloud", "year": 2022, "tags": ["ops"], "status": None, "date": "2022-01-15",
                    "version": "beta"},
                   ("yarrowin: logs are kept for thirty days",
                    "fenwickel: metrics are kept for thirteen months"))
KEYS_V2 = Source(KEYS.source, "Rotating keys, revised", KEYS.metadata,
                 ("brintosk: rotate a token from the console",
                  "caldremu: old tokens stop working at once"))
CORPUS = (KEYS, SELFHOSTED, RETENTION)
WORDS = " ".join(w for s in (*CORPUS, KEYS_V2) for w in s.words())  # matches every chunk ever written

K, S, R = KEYS.doc_id, SELFHOSTED.doc_id, RETENTION.doc_id
# (filter as the user writes it, documents whose chunks pass). KEYS has status "current", SELFHOSTED has no
# status field, RETENTION has status None (present but null counts as missing). ``version`` mixes an int, a
# numeric string and a text.
FILTER_CASES: list[tuple[Any, set[str]]] = [
    ("product=cloud", {K, R}), ("product==cloud", {K, R}), ("product!=cloud", {S}),
    ("year>2023", {K}), ("year>=2023", {K, S}), ("year<2023", {R}), ("year<=2023", {S, R}),
    ("year=2023.0", {S}), ("year>2022.5", {K, S}),
    ("date>=2024-01-01", {K, S}), ("date<2024-05-01", {S, R}),
    ("product in selfhosted,onprem", {S}), ("product not in selfhosted", {K, R}),
    ("tags=keys", {K, S}), ("tags!=keys", {R}), ("tags in ops,security", {K, R}), ("tags not in keys", {R}),
    ("status?", {K}), ("!status", {S, R}), ("status=current", {K}), ("status!=current", {S, R}),
    ("nosuchfield=x", set()), ("nosuchfield!=x", {K, S, R}), ("nosuchfield>1", set()), ("nosuchfield?", set()),
    ("!nosuchfield", {K, S, R}), ("nosuchfield not in a,b", {K, S, R}),
    ("version=3", {K}), ("version=3.1", {S}), ("version=beta", {R}), ("version in 3,beta", {K, R}),
    ("year>abc", set()),  # a text bound on a numeric field compares as text: "2024" < "abc"
    (f"doc_id={S}", {S}),
    ({"year": {"gte": 2023, "lt": 2024}}, {S}), ({"product": ["cloud"]}, {K, R}),
    ({"status": {"exists": False}}, {S, R}), ({"status": {"exists": True}}, {K}),
    ({"year": {"$in": [2022, 2024]}}, {K, R}), ({"year": {"nin": [2022]}}, {K, S}), ({"title": "Retention"}, {R}),
    (["product=cloud", "year>=2023"], {K}), (["product=cloud", "product=selfhosted"], set()),
]


def _case_id(case: tuple[Any, set[str]]) -> str:
    return str(case[0]).replace(" ", "")


def query(text: str, vec: np.ndarray | None = None) -> QueryBundle:
    """A query for the branches: ``text`` for BM25, ``vec`` (default: the text's own vector) for dense search."""
    v = vector(text) if vec is None else vec
    return QueryBundle(text, lambda _: v)


class StoreConformance:
    """Reusable tests for a :class:`ragkit.index.store.Store` implementation (see the module docstring)."""

    # --- fixtures a subclass provides or may override ---------------------------------------------------------

    @pytest.fixture
    def store_factory(self) -> Callable[[], Store]:
        raise NotImplementedError("subclass StoreConformance and define a `store_factory` fixture returning a "
                                  "function that makes a new, empty store")

    @pytest.fixture
    def index_settings(self) -> dict[str, dict[str, Any]]:
        """The index settings stamped on every test write: ragkit's defaults, canonical."""
        from ragkit.config import Config
        from ragkit.index.settings import wanted

        return wanted(Config())

    @pytest.fixture
    def other_settings(self, index_settings) -> dict[str, dict[str, Any]]:
        """Settings that differ from ``index_settings`` (another chunk size)."""
        other = copy.deepcopy(index_settings)
        other["chunker"]["chunk_size"] = int(other["chunker"].get("chunk_size", 200)) + 50
        return other

    def reopen(self, store: Store) -> Store:
        """A second handle on the same store, as another process would open it."""
        return type(store)(store.location)

    # --- helpers ----------------------------------------------------------------------------------------------

    @pytest.fixture
    def store(self, store_factory) -> Store:
        return store_factory()

    @pytest.fixture
    def filled(self, store, index_settings) -> Store:
        """A store with the three-source corpus committed."""
        self.write(store, index_settings, CORPUS)
        return store

    def write(self, store: Store, settings: dict, sources: Iterable[Source], remove: Iterable[str] = (),
              rebuild: bool = False) -> str:
        with store.writer(settings, rebuild=rebuild, model_id=MODEL_ID) as w:
            self.stage(w, sources, remove)
            return w.commit()

    @staticmethod
    def stage(writer: StoreWriter, sources: Iterable[Source], remove: Iterable[str] = ()) -> None:
        sources = list(sources)
        writer.remove(list(remove))
        chunks = [c for s in sources for c in s.chunks()]
        vectors = np.stack([vector(c.text) for c in chunks]) if chunks else np.zeros((0, DIM), np.float32)
        writer.add([s.record() for s in sources], chunks, vectors, [s.file() for s in sources])

    @staticmethod
    def ids(reader: StoreReader, ranking: tuple[np.ndarray, np.ndarray]) -> list[str]:
        rows, scores = ranking
        assert len(rows) == len(scores) and len(set(map(int, rows))) == len(rows), "rows must be distinct"
        assert np.all(np.diff(np.asarray(scores, dtype=np.float64)) <= 1e-6), "a ranking is best first"
        return [c.chunk_id for c in reader.chunks([int(r) for r in rows])]

    def assert_holds_exactly(self, reader: StoreReader, sources: Iterable[Source]) -> None:
        """The view holds these sources' chunks and nothing else, in the docstore and in both branches."""
        sources = list(sources)
        live = {cid for s in sources for cid in s.chunk_ids()}
        assert {c.chunk_id for c in reader.iter_chunks()} == live
        assert reader.n_chunks == len(live) and reader.n_documents == len(sources)
        assert {d.doc_id for d in reader.documents()} == {s.doc_id for s in sources}
        assert set(reader.files()) == {s.source for s in sources}
        assert set(self.ids(reader, reader.sparse_search(query(WORDS), ALL, None))) == live, "sparse branch"
        assert set(self.ids(reader, reader.dense_search(query("any"), ALL, None))) == live, "dense branch"

    # --- the contract -----------------------------------------------------------------------------------------

    def test_a_new_store_is_empty(self, store):
        assert isinstance(store, Store)
        assert store.version() is None and store.settings() is None and store.reader() is None

    def test_write_and_count(self, store, index_settings):
        with store.writer(index_settings, model_id=MODEL_ID) as w:
            assert isinstance(w, StoreWriter) and w.current is None and w.previous is None
            self.stage(w, CORPUS)
            name = w.commit()
            assert (w.n_documents, w.n_chunks) == (3, 7)
        assert store.version() == name
        assert store.settings() == index_settings
        reader = store.reader()
        try:
            assert isinstance(reader, StoreReader)
            assert reader.name == name and reader.settings == index_settings
            assert (reader.n_documents, reader.n_chunks, reader.dim, reader.model_id) == (3, 7, DIM, MODEL_ID)
            assert reader.created > 0
            self.assert_holds_exactly(reader, CORPUS)
        finally:
            reader.close()

    def test_read_back(self, filled):
        reader = filled.reader()
        try:
            assert sorted(reader.documents(), key=lambda d: d.doc_id) == sorted(
                (s.record() for s in CORPUS), key=lambda d: d.doc_id)
            assert reader.files() == {s.source: s.file() for s in CORPUS}
            every = reader.iter_chunks()
            assert sorted(every, key=lambda c: c.chunk_id) == sorted(
                (c for s in CORPUS for c in s.chunks()), key=lambda c: c.chunk_id)
            rows = [4, 0, 6, 0]
            assert reader.chunks(rows) == [every[r] for r in rows]  # in the order asked, repeats kept
            assert reader.chunks([]) == []
            assert all(isinstance(t, str) for t in reader.analyze("Rotate the keys"))
            reader.warm_up()
        finally:
            reader.close()

    def test_neighbours_of_a_chunk(self, filled):
        reader = filled.reader()
        try:
            got = reader.neighbours(KEYS.doc_id, [-1, 0, 2, 3])
            assert sorted(got) == [0, 2]
            assert got[0].text == KEYS.texts[0] and got[2].text == KEYS.texts[2] and got[2].position == 2
            assert got[2].doc_id == KEYS.doc_id and got[2].chunk_id == f"{KEYS.doc_id}#2"
            assert reader.neighbours("no/such/doc", [0, 1]) == {} and reader.neighbours(KEYS.doc_id, []) == {}
        finally:
            reader.close()

    def test_delete_documents_by_source(self, filled, index_settings):
        with filled.writer(index_settings, model_id=MODEL_ID) as w:
            assert w.current is not None and w.previous is not None
            w.remove([RETENTION.source])
            w.commit()
            assert (w.n_documents, w.n_chunks) == (2, 5)
        reader = filled.reader()
        try:
            self.assert_holds_exactly(reader, [KEYS, SELFHOSTED])
            for text in RETENTION.texts:  # neither branch can bring a deleted chunk back
                assert self.ids(reader, reader.sparse_search(query(text.split(":")[0]), ALL, None)) == []
                assert not set(self.ids(reader, reader.dense_search(query(text), ALL, None))) & \
                    RETENTION.chunk_ids()
        finally:
            reader.close()

    def test_upsert_replaces_a_sources_chunks(self, filled, index_settings):
        self.write(filled, index_settings, [KEYS_V2], remove=[KEYS.source])
        reader = filled.reader()
        try:
            self.assert_holds_exactly(reader, [KEYS_V2, SELFHOSTED, RETENTION])
            texts = {c.chunk_id: c.text for c in reader.iter_chunks()}
            assert [texts[f"{KEYS.doc_id}#{i}"] for i in range(2)] == list(KEYS_V2.texts)
            assert f"{KEYS.doc_id}#2" not in texts  # the old third chunk is gone, not left behind
            assert [d.title for d in reader.documents() if d.doc_id == KEYS.doc_id] == [KEYS_V2.title]
            for old in KEYS.texts:
                assert self.ids(reader, reader.sparse_search(query(old.split(":")[0]), ALL, None)) == []
                top = self.ids(reader, reader.dense_search(query(old), 1, None))
                assert texts[top[0]] != old
            assert self.ids(reader, reader.sparse_search(query(KEYS_V2.words()[1]), 5, None)) == [
                f"{KEYS.doc_id}#1"]
            assert self.ids(reader, reader.dense_search(query(KEYS_V2.texts[0]), 1, None)) == [f"{KEYS.doc_id}#0"]
        finally:
            reader.close()

    def test_deleting_everything_leaves_an_empty_version(self, filled, index_settings):
        self.write(filled, index_settings, [], remove=[s.source for s in CORPUS])
        reader = filled.reader()
        try:
            self.assert_holds_exactly(reader, [])
        finally:
            reader.close()

    @pytest.mark.parametrize("case", FILTER_CASES, ids=[_case_id(c) for c in FILTER_CASES])
    def test_filter_operator(self, filled, case):
        spec, docs = case
        expected = {cid for s in CORPUS if s.doc_id in docs for cid in s.chunk_ids()}
        reader = filled.reader()
        try:
            cands = reader.candidates(to_filter(spec))
            assert isinstance(cands, Candidates)
            assert (cands.count, cands.total) == (len(expected), 7), cands.describe()
            assert set(self.ids(reader, reader.sparse_search(query(WORDS), ALL, cands))) == expected
            assert set(self.ids(reader, reader.dense_search(query("any"), ALL, cands))) == expected
        finally:
            reader.close()

    @pytest.mark.parametrize("bad", ["year>>3", "product", "=cloud", {"year": {"near": 3}}, {"year": {"in": 5}}],
                             ids=str)
    def test_a_malformed_filter_is_one_clear_error(self, bad):
        with pytest.raises(ConfigError) as exc:
            to_filter(bad)
        assert str(exc.value) and "\n" not in str(exc.value)

    def test_the_filter_applies_inside_both_branches(self, filled):
        """A pre-filter, not a post-filter: with k=1 the best *passing* chunk comes back, not nothing."""
        reader = filled.reader()
        try:
            selfhosted = reader.candidates(to_filter("product=selfhosted"))
            best = KEYS.words()[0]  # only KEYS matches this word
            assert self.ids(reader, reader.sparse_search(query(best), 1, None)) == [f"{K}#0"]
            assert self.ids(reader, reader.sparse_search(query(best), 1, selfhosted)) == []
            both = f"{best} {SELFHOSTED.words()[1]}"
            assert self.ids(reader, reader.sparse_search(query(both), 1, selfhosted)) == [f"{S}#1"]
            assert self.ids(reader, reader.dense_search(query(KEYS.texts[0]), 1, None)) == [f"{K}#0"]
            top = self.ids(reader, reader.dense_search(query(KEYS.texts[0]), 1, selfhosted))
            assert len(top) == 1 and top[0] in SELFHOSTED.chunk_ids()
            near = query(KEYS.texts[0], vector(SELFHOSTED.texts[1]))
            assert self.ids(reader, reader.dense_search(near, 1, selfhosted)) == [f"{S}#1"]
            nothing = reader.candidates(to_filter("product=onprem"))
            assert nothing.count == 0
            assert self.ids(reader, reader.sparse_search(query(WORDS), ALL, nothing)) == []
            assert self.ids(reader, reader.dense_search(query("any"), ALL, nothing)) == []
        finally:
            reader.close()

    def test_both_branches_at_once_equal_each_alone(self, filled):
        """``search_both`` (a store's ``hybrid_search`` where it has one) returns exactly the two branches' own
        rankings, with and without a filter, also when nothing passes."""
        reader = filled.reader()
        try:
            for flt in (None, "product=selfhosted", "product=onprem"):
                cands = reader.candidates(to_filter(flt)) if flt else None
                for text in (WORDS, KEYS.texts[0], "zzzz-no-such-word"):
                    q = query(text)
                    got = search_both(reader, q, 3, cands)
                    alone = reader.sparse_search(q, 3, cands), reader.dense_search(q, 3, cands)
                    for (g_rows, g_scores), (a_rows, a_scores) in zip(got, alone):
                        assert list(g_rows) == list(a_rows), (flt, text)
                        assert np.allclose(g_scores, a_scores, atol=1e-6), (flt, text)
        finally:
            reader.close()

    def test_a_failed_write_leaves_the_previous_version(self, filled, index_settings):
        before = filled.version()
        with pytest.raises(RuntimeError, match="ingest failed"):
            with filled.writer(index_settings, model_id=MODEL_ID) as w:
                self.stage(w, [KEYS_V2], remove=[KEYS.source, RETENTION.source])
                raise RuntimeError("ingest failed")
        with filled.writer(index_settings, model_id=MODEL_ID) as w:  # the lock was released; leave uncommitted
            self.stage(w, [], remove=[SELFHOSTED.source])
        assert filled.version() == before
        reader = filled.reader()
        try:
            self.assert_holds_exactly(reader, CORPUS)
        finally:
            reader.close()

    def test_an_open_reader_keeps_its_version(self, filled, index_settings):
        old = filled.reader()
        try:
            self.write(filled, index_settings, [KEYS_V2], remove=[KEYS.source])
            self.write(filled, index_settings, [], remove=[SELFHOSTED.source])
            self.write(filled, index_settings, [], remove=[RETENTION.source])
            assert filled.version() != old.name
            self.assert_holds_exactly(old, CORPUS)
            assert old.neighbours(KEYS.doc_id, [2])[2].text == KEYS.texts[2]
            assert self.ids(old, old.dense_search(query(KEYS.texts[1]), 1, None)) == [f"{K}#1"]
            assert old.candidates(to_filter("product=selfhosted")).count == 2
        finally:
            old.close()
        new = filled.reader()
        try:
            self.assert_holds_exactly(new, [KEYS_V2])
        finally:
            new.close()

    def test_readers_see_the_old_or_the_new_version_never_a_mix(self, store, index_settings):
        def tagged(i: int) -> list[Source]:
            return [Source(s.source, f"{s.title} v{i}", s.metadata, tuple(f"{t} v{i}" for t in s.texts))
                    for s in CORPUS]

        self.write(store, index_settings, tagged(0))
        other = self.reopen(store)
        stop, seen, errors = threading.Event(), set(), []

        def read() -> None:
            try:
                while not stop.is_set():
                    reader = other.reader()
                    try:
                        tags = {c.text.rsplit(" ", 1)[1] for c in reader.iter_chunks()}
                        tags |= {d.title.rsplit(" ", 1)[1] for d in reader.documents()}
                        assert len(tags) == 1 and reader.n_chunks == 7, f"{reader.name} mixes {sorted(tags)}"
                        seen.update(tags)
                    finally:
                        reader.close()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        try:
            for i in range(1, 9):  # more commits than the store may keep old versions
                self.write(store, index_settings, tagged(i), remove=[s.source for s in CORPUS])
        finally:
            stop.set()
            thread.join(60)
        assert not errors, errors[0]
        assert seen and seen <= {f"v{i}" for i in range(9)}

    def test_different_settings_are_refused_without_rebuild(self, filled, index_settings, other_settings):
        assert other_settings != index_settings
        before = filled.version()
        with pytest.raises(IndexConfigMismatch) as exc:
            with filled.writer(other_settings, model_id=MODEL_ID):
                pass
        message = str(exc.value)
        assert "\n" not in message and "rebuild" in message
        assert filled.version() == before and filled.settings() == index_settings
        with filled.writer(other_settings, rebuild=True, model_id=MODEL_ID) as w:
            assert w.previous is None and w.current is not None
            self.stage(w, [SELFHOSTED])
            w.commit()
        assert filled.settings() == other_settings
        reader = filled.reader()
        try:
            assert reader.settings == other_settings
            self.assert_holds_exactly(reader, [SELFHOSTED])  # a rebuild starts from nothing
        finally:
            reader.close()

    def test_a_second_writer_is_refused(self, filled, index_settings):
        with filled.writer(index_settings, model_id=MODEL_ID) as w:
            with pytest.raises(IndexLockedError) as exc:
                with self.reopen(filled).writer(index_settings, model_id=MODEL_ID):
                    pass
            assert "\n" not in str(exc.value)
            self.stage(w, [], remove=[RETENTION.source])
            w.commit()
        with self.reopen(filled).writer(index_settings, model_id=MODEL_ID) as w:  # free again
            self.stage(w, [RETENTION])
            w.commit()
        reader = filled.reader()
        try:
            self.assert_holds_exactly(reader, CORPUS)
        finally:
            reader.close()
