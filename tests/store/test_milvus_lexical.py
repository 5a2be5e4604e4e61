"""BM25 in Milvus as the lexical half of a cluster index (store/milvus_lexical.py): a
PostgreSQL + Milvus index keeps its chunk texts in a BM25 collection written from the
store's outbox (deletes and moves follow, no id listing), searched with the filters as
Milvus expressions; an engine without BM25 (the 2.3 server) keeps PostgreSQL's full text
and says so. Milvus Lite has BM25 (its analyzer does not stem), so it stands in for a
2.5+ server here."""

from __future__ import annotations

import shutil
import uuid

import pytest
from postgres_fixtures import postgres_server, postgres_url  # noqa: F401 (fixtures, by name)

from anyfind import Index
from anyfind.store.milvus_lexical import bm25_support
from anyfind.store.outbox import LEXICAL

pytest.importorskip("pymilvus")
pytestmark = pytest.mark.timeout(600)


def test_bm25_is_used_from_milvus_2_5_and_in_milvus_lite():
    assert bm25_support("milvus_lite-3.2.2") is None
    assert bm25_support("v2.5.4") is None and bm25_support("v2.6.0-rc1") is None
    assert bm25_support("v2.3.21") == "Milvus 2.3.21 has no BM25 (2.5+)"
    assert "no version" in bm25_support("unknown")


def _texts(idx) -> int:
    from sqlalchemy import func, select

    from anyfind.store.schema import Chunk

    with idx.store.engine.connect() as conn:
        return conn.execute(select(func.count()).where(Chunk.text != "")).scalar_one()


def test_a_cluster_index_searches_words_with_bm25_in_milvus(
        tmp_path, corpus, postgres_url, monkeypatch):  # noqa: F811 (a fixture)
    uri = f"milvus-lite://{tmp_path / 'milvus.db'}"
    with Index.open(tmp_path / "idx", store_url=postgres_url, vector_store=uri, tagger=False,
                    transcriber=None) as idx:
        idx.add([corpus])
        service = idx.opened.lexical_service()
        assert service is not None and service.count() == _texts(idx) > 0
        assert idx.status()["lexical"].startswith("Milvus BM25 (milvus-lite://")
        assert idx.store.outbox_pending(LEXICAL, 0) == 0  # applied and pruned

        def no_postgres(*_a, **_k):
            raise AssertionError("PostgreSQL's full text answered")

        monkeypatch.setattr(idx.store.lexical, "search", no_postgres)
        (moon,) = idx.search("ocean tides gravity", mode="lexical", k=1)
        assert moon.path == str(corpus / "astro" / "moon.txt") and moon.score > 0
        assert [r.path for r in idx.search("moon ext:md", mode="lexical")] == []
        filtered = idx.search("plant water sunlight ext:md", mode="lexical")
        assert [r.path for r in filtered] == [str(corpus / "garden" / "tomatoes.md")]
        assert idx.search("tides and the moon", k=1)[0].path == moon.path  # hybrid fuses it

        (corpus / "astro" / "moon.txt").unlink()
        shutil.move(corpus / "garden", corpus / "allotment")
        (corpus / "tides.txt").write_text("Spring tides follow the new and the full moon.")
        report = idx.sync()
        assert (report.removed, report.renamed, report.added) == (1, 1, 1)
        assert service.count() == _texts(idx)
        assert [r.path for r in idx.search("ocean gravity moon", mode="lexical")] == [
            str(corpus / "tides.txt")]
        moved = idx.search(f"sunlight path:{corpus / 'allotment'}", mode="lexical")
        assert [r.path for r in moved] == [str(corpus / "allotment" / "tomatoes.md")]
        monkeypatch.undo()  # a filter no expression says (a glob): PostgreSQL answers it
        globbed = idx.search(f'sunlight path:"{corpus}/allot*/*.md"', mode="lexical")
        assert [r.path for r in globbed] == [str(corpus / "allotment" / "tomatoes.md")]
        assert idx.check().ok
        service.client.delete(service.collection, ids=[moved[0].chunk_id])  # lost, by hand
        assert "lexical-service-mismatch" in idx.check().codes()
        repaired = idx.check(repair=True)
        assert not repaired.codes() and service.count() == _texts(idx)
        assert [r.path for r in idx.search("sunlight", mode="lexical")] == [moved[0].path]


def test_an_engine_without_bm25_keeps_postgresql_full_text(
        tmp_path, corpus, postgres_url, milvus_server):  # noqa: F811 (fixtures)
    uri = f"{milvus_server}&prefix=x{uuid.uuid4().hex[:12]}_"
    with Index.open(tmp_path / "idx", store_url=postgres_url, vector_store=uri, tagger=False,
                    transcriber=None) as idx:
        idx.add([corpus])
        assert idx.opened.lexical_service() is None
        assert idx.status()["lexical"].startswith("PostgreSQL full text (Milvus 2.3")
        assert idx.store.outbox_pending(LEXICAL, 0) == 0  # not left to pile up
        (moon,) = idx.search("ocean tides gravity", mode="lexical", k=1)
        assert moon.path == str(corpus / "astro" / "moon.txt")


def test_lexical_postgres_in_the_uri_keeps_postgresql_full_text(
        tmp_path, postgres_url):  # noqa: F811 (a fixture)
    from anyfind.errors import ConfigError

    base = f"milvus-lite://{tmp_path / 'milvus.db'}"
    with Index.open(tmp_path / "a", store_url=postgres_url, tagger=False, transcriber=None,
                    vector_store=base + "?lexical=postgres") as idx:
        assert not idx.opened.bm25_in_service and not idx.store.lexical_outbox
        assert idx.status()["lexical"] == "PostgreSQL full text"
    with Index.open(tmp_path / "b", vector_store=base, tagger=False, transcriber=None) as idx:
        assert not idx.opened.bm25_in_service  # SQLite keeps its tantivy BM25
    with pytest.raises(ConfigError, match="bm25 .* or postgres"), Index.open(
            tmp_path / "c", store_url=postgres_url, vector_store=base + "?lexical=solr",
            tagger=False, transcriber=None) as idx:
        idx.status()
