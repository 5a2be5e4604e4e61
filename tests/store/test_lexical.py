"""The lexical index: kept in step with chunks on every sync, migrated into old stores,
safe against query syntax, and the same API on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from postgres_fixtures import postgres_server, postgres_url  # noqa: F401 (fixtures)
from sqlalchemy import insert, text

from anyfind import Index
from anyfind.search.terms import query_terms
from anyfind.store.metadata import ChunkRecord, ItemRecord, MetadataStore, make_engine
from anyfind.store.migrations import LATEST, MIGRATIONS, current_version
from anyfind.store.schema import Chunk, Item, Meta, Source


def lexical_paths(index: Index, words: str) -> set[str]:
    hits = index.store.lexical.search(query_terms(words), 100)
    rows = index.store.chunk_rows([cid for cid, _ in hits])
    return {os.path.basename(r["path"]) for r in rows.values()}


def assert_fts_consistent(store: MetadataStore) -> None:
    """FTS5's own check: the index matches the chunks table exactly."""
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)"))
        n_fts = conn.execute(text("SELECT count(*) FROM chunks_fts")).scalar_one()
        n_chunks = conn.execute(text("SELECT count(*) FROM chunks")).scalar_one()
    assert n_fts == n_chunks


def assert_filter_after_match(store: MetadataStore, allowed) -> None:
    """SQLite must apply a filter to the rows FTS5's MATCH found, not hand FTS5 the allowed
    ids as rowid lookups (one full-text query per id: seconds at 100k chunks). Checked on
    the statement FullTextSQL really runs, through SQLite's own query plan."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "MATCH" in statement:
            seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        store.lexical.search(["moon"], 10, allowed)
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
    (statement, parameters), = seen
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
    fts = [row[-1] for row in plan if "chunks_fts VIRTUAL TABLE" in row[-1]]
    assert fts and all(":=" not in detail for detail in fts), plan


def test_lexical_index_follows_every_sync(tmp_path, corpus):
    with Index.open(tmp_path / "idx") as index:
        index.add([corpus])
        assert_fts_consistent(index.store)
        assert lexical_paths(index, "semiconductor chips") == {"report.pdf"}
        assert lexical_paths(index, "tomato") == {"tomatoes.md"}  # stemmed: tomatoes

        (corpus / "astro" / "moon.txt").write_text("Titan has a thick orange atmosphere.")
        index.add([corpus])
        assert lexical_paths(index, "tidally locked") == set()
        assert lexical_paths(index, "titan atmosphere") == {"moon.txt"}

        (corpus / "code" / "fib.py").unlink()
        index.add([corpus])
        assert lexical_paths(index, "fibonacci") == set()

        shutil.move(corpus / "garden" / "tomatoes.md", corpus / "garden" / "tomato-care.md")
        shutil.copy(corpus / "office" / "report.pdf", corpus / "report-copy.pdf")
        index.add([corpus])
        assert lexical_paths(index, "tomato") == {"tomato-care.md"}
        assert lexical_paths(index, "semiconductor") == {"report.pdf", "report-copy.pdf"}
        assert_fts_consistent(index.store)

        index.remove([corpus / "office"])
        assert lexical_paths(index, "semiconductor") == {"report-copy.pdf"}
        index.reindex()  # re-reads the source folder: the office files come back
        assert lexical_paths(index, "semiconductor") == {"report.pdf", "report-copy.pdf"}
        assert_fts_consistent(index.store)


def test_sqlite_filters_apply_to_the_rows_match_found(tmp_path, corpus):
    from anyfind.search.filter_sql import condition
    from anyfind.search.filters import parse_filters

    with Index.open(tmp_path / "idx") as index:
        index.add([corpus])
        allowed = index.store.allowed_chunks(condition(parse_filters("ext:md,txt").clauses, "sqlite"))
        found = index.store.lexical.search(query_terms("moon tomatoes semiconductor"), 10, allowed)
        rows = index.store.chunk_rows([cid for cid, _ in found])
        assert {os.path.basename(r["path"]) for r in rows.values()} == {"moon.txt", "tomatoes.md"}
        assert_filter_after_match(index.store, allowed)


def test_migration_v2_backfills_a_v1_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:  # a store as the first release left it
        MIGRATIONS[0](conn)
        conn.execute(insert(Meta).values(key="schema_version", value="1"))
        sid = conn.execute(insert(Source).values(name="s", kind="filesystem", uri="/s", options={},
                                                 created_at=0.0, state={})).inserted_primary_key[0]
        iid = conn.execute(insert(Item).values(
            source_id=sid, uri="file:///s/a.txt", path="/s/a.txt", status="ok", meta={},
            indexed_at=0.0, fingerprint="f")).inserted_primary_key[0]
        conn.execute(insert(Chunk).values(item_id=iid, ordinal=0, modality="text",
                                          text="Old notes about lighthouses and fog horns."))
    engine.dispose()
    store = MetadataStore(url)
    with store.engine.connect() as conn:
        assert current_version(conn) == LATEST >= 2
    assert [cid for cid, _ in store.lexical.search(["lighthouse"], 10)] == [1]
    assert_fts_consistent(store)
    store.close()


@pytest.mark.parametrize("query", [
    'NEAR(a b)', '"unbalanced', 'a*', 'col:val', 'AND OR NOT', '^start', '(((', "it's",
    'x" OR "y', '\\', '{a b}', 'a + b - c', "NEAR/3",
])
def test_query_syntax_is_never_parsed(tmp_path, query):
    store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    sid = store.ensure_source("s", "filesystem", "/s")
    store.write_items([(ItemRecord(sid, "u", "/s/u", "text", "text/plain", 1, 1.0, "f", None),
                        [ChunkRecord(0, "text", "a b c near and or not col val start it s y x unbalanced")],
                        None)])
    terms = query_terms(query)
    hits = store.lexical.search(terms, 10)  # no exception, whatever the characters
    assert hits == ([(1, hits[0][1])] if terms else [])
    store.close()


def test_stop_words_only_query_still_matches(tmp_path):
    store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    sid = store.ensure_source("s", "filesystem", "/s")
    store.write_items([(ItemRecord(sid, "u", "/s/u", "text", "text/plain", 1, 1.0, "f", None),
                        [ChunkRecord(0, "text", "To be or not to be")], None)])
    assert query_terms("to be or not to be") == ["to", "be", "or", "not", "to", "be"]
    assert len(store.lexical.search(query_terms("to be or not to be"), 10)) == 1
    assert query_terms("the late penalty") == ["late", "penalty"]
    store.close()


def test_postgres_full_text_search(postgres_url):  # noqa: F811 (a fixture)
    store = MetadataStore(postgres_url)
    try:
        sid = store.ensure_source(f"s{time.time_ns()}", "filesystem", "/s")
        texts = ["Tomatoes need eight hours of sunlight.", "The Moon raises the tides.",
                 "NEAR quotes: * and \"stars\" (AND) OR"]
        ids, _ = store.write_items([(ItemRecord(sid, f"u{i}", f"/s/{i}.txt", "text", "text/plain",
                                                1, 1.0, "f", None), [ChunkRecord(0, "text", t)],
                                     None) for i, t in enumerate(texts)])
        chunk = {i: store.chunks_of_item(i)[0]["id"] for i in ids}
        found = store.lexical.search(query_terms("tomato sunlight"), 10)
        assert [c for c, _ in found] == [chunk[ids[0]]]
        assert [c for c, _ in store.lexical.search(query_terms('"star*" NEAR/2 (and)'), 10)] == [
            chunk[ids[2]]]
        assert store.lexical.search(query_terms("the of and"), 10) == []  # only stop words
        # filters push down as a SQL restriction on the same query
        from anyfind.search.filter_sql import condition
        from anyfind.search.filters import parse_filters

        allowed = store.allowed_chunks(condition(parse_filters("path:/s/1.txt").clauses, "postgresql"))
        assert sorted(store.chunk_ids(allowed)) == [chunk[ids[1]]]
        assert [c for c, _ in store.lexical.search(["moon", "tomatoes"], 10, allowed)] == [
            chunk[ids[1]]]
        store.delete_items(ids[:1])
        assert store.lexical.search(["tomato"], 10) == []
    finally:
        store.close()


def test_postgres_index_end_to_end(postgres_url, tmp_path, corpus):  # noqa: F811 (a fixture)
    """The whole search path on a PostgreSQL store: lexical, hybrid, JSON-based filters."""
    html = corpus / "web" / "lang.html"
    html.write_text('<html lang="de"><body><p>Die Katze schläft. The cat sleeps.</p></body></html>')
    os.utime(corpus / "astro" / "moon.txt", (1e9, 1e9))  # 2001
    with Index.open(tmp_path / "idx", store_url=postgres_url) as index:
        index.add([corpus])
        assert index.search("semiconductor shortage", k=1, mode="lexical")[0].path.endswith(
            "report.pdf")
        hit = index.search("chip shortage delaying deliveries", k=1)[0]
        assert hit.path.endswith("report.pdf") and set(hit.spaces) == {"text", "lexical"}
        assert [hit.text[a:b] for a, b in hit.highlights] == [
            "shortage", "chips", "delaying", "deliveries"]
        # ts_rank_cd read against the query's own words as a chunk: every term matched is
        # a lexical match (0.5 or more); a chunk holding one word of four is not.
        assert index.opened.lexical.reference(["shortage", "chip"]) > 0
        assert hit.signals["lexical"]["score"] >= 0.5 and hit.score >= 0.5
        one_word = index.search("semiconductor tomato sunlight eclipse", k=10, mode="lexical")
        assert one_word and all(0 < r.score < 1 for r in one_word)
        assert {os.path.basename(r.path) for r in index.search("cat lang:de", k=5)} == {
            "lang.html"}
        assert {os.path.basename(r.path) for r in index.search("moon before:2001-12-31", k=5)
                } == {"moon.txt"}
        index.add_documents("photos", [{"id": "p", "text": "A cat on a sofa.",
                                        "meta": {"taken": 1.6e9}}])  # 2020-09
        assert [r.path for r in index.search("cat date:2020", k=5)] == ["photos/p"]
