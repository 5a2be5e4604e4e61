"""The cold search path's reads: the sqlite3 reader against the SQLAlchemy store, and
FAISS files mapped instead of read, while writers replace them."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest
import test_vectors
from sqlalchemy import insert, update
from vector_data import DIM, SPACE, uniform

from anyfind.errors import ConfigError
from anyfind.store.faiss_store import FaissVectorStore, exact_search
from anyfind.store.metadata import MetadataStore, make_engine
from anyfind.store.migrations import LATEST, MIGRATIONS
from anyfind.store.reader import STORE_SCHEMA, SQLiteReader, sqlite_path
from anyfind.store.schema import Chunk, Item, Meta, Source

store = test_vectors.store  # the same fixtures as the vector tests
writer = test_vectors.writer


def test_reader_knows_the_latest_schema():
    assert STORE_SCHEMA == LATEST


def test_sqlite_path_only_for_plain_sqlite_files(tmp_path):
    assert sqlite_path(f"sqlite:///{tmp_path}/meta.db") == tmp_path / "meta.db"
    assert sqlite_path("sqlite:///:memory:?cache=shared") is None
    assert sqlite_path("postgresql+psycopg://u@h/db") is None
    assert SQLiteReader.open(f"sqlite:///{tmp_path}/absent.db") is None


def test_reader_answers_as_the_store(store, writer):
    writer.write(120)
    store.delete_items(writer.item_ids()[::7])  # gaps in the ids, a bumped generation
    with_meta, child = writer.item_ids()[:2]
    store.touch_item(with_meta, 10, 1.0, "f", meta={"tags": [{"label": "cat", "prob": 0.9}]})
    with store.engine.begin() as conn:  # an attachment-like child: rows name its parent
        conn.execute(update(Item).where(Item.id == child).values(parent_id=with_meta))
    reader = SQLiteReader.open(store.url)
    assert reader is not None
    try:
        assert reader.generation(SPACE) == store.generation(SPACE) > 1
        np.testing.assert_array_equal(np.sort(reader.vector_ids(SPACE)),
                                      np.sort(store.vector_ids(SPACE)))
        for ids in (None, store.vector_ids(SPACE)[::3].tolist(), [10**9]):
            r_ids, r_vecs = reader.vectors(SPACE, ids, dim=DIM)
            s_ids, s_vecs = store.vectors(SPACE, ids, dim=DIM)
            np.testing.assert_array_equal(r_ids, s_ids)
            np.testing.assert_array_equal(r_vecs, s_vecs)
        wanted = [*store.vector_ids(SPACE)[:40].tolist(), 10**9]  # and one that is gone
        assert reader.chunk_rows(wanted) == store.chunk_rows(wanted)
        assert reader.chunk_facts(wanted) == store.chunk_facts(wanted)
        assert len(reader.chunk_facts(wanted)) == 40
        rows = reader.chunk_rows(store.vector_ids(SPACE).tolist())
        assert {r["meta"].get("tags", [{}])[0].get("label") for r in rows.values()
                if r["item_id"] == with_meta} == {"cat"}
        assert {(r["parent_id"], r["parent_path"]) for r in rows.values()
                if r["item_id"] == child} == {(with_meta, f"/data/{with_meta}.txt")}
        assert reader.sources() == store.sources()
        keys = reader.chunk_content_keys()
        assert sorted(keys) == sorted(store.chunk_content_keys())
        assert len(keys) == len(store.chunk_ids()) and len(set(dict(keys).values())) > 1
        from anyfind.core.calibration import row_key  # the calibration keys rows alike
        assert {c: row_key(r) for c, r in rows.items()} == {c: k for c, k in keys if c in rows}
        for terms in (["chunk"], ["chunk", "12"], ["absent"], []):
            assert reader.lexical.search(terms, 25) == store.lexical.search(terms, 25)
        assert reader.generation("no-such-space") == 0
    finally:
        reader.close()


def _v1_store(url: str) -> None:
    """A store as the first release left it (schema v1, no lexical index)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        MIGRATIONS[0](conn)
        conn.execute(insert(Meta).values(key="schema_version", value="1"))
        sid = conn.execute(insert(Source).values(name="s", kind="filesystem", uri="/s",
                                                 options={}, created_at=0.0, state={})
                           ).inserted_primary_key[0]
        iid = conn.execute(insert(Item).values(
            source_id=sid, uri="file:///s/a.txt", path="/s/a.txt", status="ok", meta={},
            indexed_at=0.0, fingerprint="f", modality="text")).inserted_primary_key[0]
        conn.execute(insert(Chunk).values(item_id=iid, ordinal=0, modality="text",
                                          text="Old notes about lighthouses and fog horns."))
    engine.dispose()


def test_reader_opens_only_the_current_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    _v1_store(url)
    assert SQLiteReader.open(url) is None  # the MetadataStore migrates it first
    MetadataStore(url).close()
    reader = SQLiteReader.open(url)
    assert reader is not None and reader.schema_version() == LATEST
    reader.close()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(Meta).where(Meta.key == "schema_version").values(value="99"))
    engine.dispose()
    assert SQLiteReader.open(url) is None
    with pytest.raises(ConfigError, match="newer"):
        MetadataStore(url)


@pytest.fixture
def lexical_index(tmp_path):
    """An index whose store is written by hand (lexical search needs no model)."""
    from anyfind import Index

    idx = Index.open(tmp_path / "idx")
    yield idx
    idx.close()


def test_search_of_an_older_store_migrates_it(lexical_index):
    _v1_store(lexical_index.opened.store_url())
    lexical_index.opened.config.index_id = ""  # its config, too, from before owner ids
    results = lexical_index.search("lighthouses", mode="lexical")
    assert [r.path for r in results] == ["/s/a.txt"]
    assert lexical_index.opened._store is not None  # the reader declined, the MetadataStore migrated


def test_search_of_a_newer_store_is_refused(lexical_index):
    _v1_store(lexical_index.opened.store_url())
    engine = make_engine(lexical_index.opened.store_url())
    with engine.begin() as conn:
        conn.execute(update(Meta).where(Meta.key == "schema_version").values(value=str(LATEST + 1)))
    engine.dispose()
    with pytest.raises(ConfigError, match="newer than this anyfind"):
        lexical_index.search("lighthouses", mode="lexical")


def test_search_reads_through_sqlite3_at_the_current_schema(lexical_index):
    _v1_store(lexical_index.opened.store_url())
    MetadataStore(lexical_index.opened.store_url()).close()  # migrated by an earlier writer
    results = lexical_index.search("fog horns", mode="lexical")
    assert [r.path for r in results] == ["/s/a.txt"]
    assert isinstance(lexical_index.reader, SQLiteReader) and lexical_index.opened._store is None


# -- FAISS files mapped ------------------------------------------------------------------

FACTORIES = ["Flat", "IVF16,Flat"]


def _saved(tmp_path, store, factory: str) -> FaissVectorStore:
    vi = FaissVectorStore(tmp_path / "vectors", SPACE, DIM, factory)
    vi.catch_up(store)
    vi.save()
    return vi


def _opened(tmp_path, factory: str, mmap: bool) -> FaissVectorStore:
    vi = FaissVectorStore(tmp_path / "vectors", SPACE, DIM, factory)
    assert vi.load(mmap=mmap)
    return vi


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("factory", [*FACTORIES, "IDMap,HNSW8"])
def test_mapped_index_answers_as_a_read_one(tmp_path, store, writer, factory):
    writer.write(400)
    _saved(tmp_path, store, factory)
    mapped, plain = _opened(tmp_path, factory, True), _opened(tmp_path, factory, False)
    assert mapped.mapped and not plain.mapped
    queries = uniform(np.random.default_rng(1), 20)
    allowed = store.vector_ids(SPACE)[::2]
    for sel in (None, allowed):
        m_scores, m_ids = mapped.search(queries, 10, allowed=sel)
        p_scores, p_ids = plain.search(queries, 10, allowed=sel)
        np.testing.assert_array_equal(m_ids, p_ids)
        np.testing.assert_allclose(m_scores, p_scores, rtol=0, atol=1e-6)
    if factory == "Flat":  # exact: the NumPy oracle too
        ids, matrix = store.vectors(SPACE, dim=DIM)
        _, truth = exact_search(matrix, ids, queries, 10)
        np.testing.assert_array_equal(mapped.search(queries, 10)[1], truth)


@pytest.mark.parametrize("factory", FACTORIES)
def test_mapped_reader_survives_rewrites_then_catches_up(tmp_path, store, writer, factory):
    writer.write(300)
    _saved(tmp_path, store, factory)
    reader = _opened(tmp_path, factory, True)
    before = set(reader.ids().tolist())
    queries = uniform(np.random.default_rng(2), 8)
    errors: list[BaseException] = []
    seen: set[int] = set()
    stop = threading.Event()

    def search_all_along() -> None:
        try:
            while not stop.is_set():
                seen.update(int(i) for i in reader.search(queries, 5)[1].ravel())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=search_all_along)
    thread.start()
    try:
        writer_vi = _opened(tmp_path, factory, False)
        for _ in range(4):  # a re-index: items replaced, the file rewritten (renamed in)
            store.delete_items(writer.item_ids()[:40])
            writer.write(60)
            writer_vi.catch_up(store)
            writer_vi.save()
    finally:
        stop.set()
        thread.join(60)
    assert not errors and seen and seen <= before  # the old snapshot, whole
    on_disk = _digest(reader.path)
    assert reader.catch_up(store)  # lags the store: read into memory, then caught up
    assert not reader.mapped
    from test_vectors import assert_mirrors

    assert_mirrors(reader, store)
    assert _digest(reader.path) == on_disk  # nothing was written through the mapping



def test_highlights_of_a_page_in_one_go():
    from anyfind.search.highlight import Highlighter

    texts = ["Running late, the runner ran.", "", "nothing here", "Café au lait \x01 run",
             "RUN"]
    h = Highlighter(["run", "cafe"])
    try:
        assert h.spans_of(texts) == [h.spans(t) for t in texts]
        assert h.spans_of(texts)[0] == [[0, 7]] and h.spans_of(texts)[2] == []
    finally:
        h.close()


def test_both_readers_implement_what_a_search_reads(store, tmp_path):
    """The sqlite3 reader and the MetadataStore answer the same reads (SearchReads), with
    the same parameters: a search takes either."""
    import inspect

    from anyfind.store.metadata import MetadataStore
    from anyfind.store.reader import SearchReads

    reader = SQLiteReader.open(store.url)
    try:
        assert isinstance(reader, SearchReads) and isinstance(store, SearchReads)
    finally:
        reader.close()
    for name, member in vars(SearchReads).items():
        if name.startswith("_") or not callable(member):
            continue
        want = list(inspect.signature(member).parameters)
        for cls in (SQLiteReader, MetadataStore):
            got = list(inspect.signature(getattr(cls, name)).parameters)
            assert got[:len(want)] == want, (cls.__name__, name, got)
