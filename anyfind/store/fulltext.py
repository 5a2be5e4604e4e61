"""The lexical backends over the store's own full text (store/fulltext_sql.py has their
queries): FTS5's BM25 in a SQLite store, PostgreSQL's ts_rank_cd in a PostgreSQL one.
Both are kept by the database in the chunks' own transaction (triggers, a generated
column): always current, nothing to catch up. No SQLAlchemy here: an unfiltered SQLite
query runs on the cold path's sqlite3 reader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .lexical_store import SELECT, Hits, LexicalStore


class Fts5Lexical(LexicalStore):
    """FTS5's BM25 in a SQLite store: an unfiltered query through the fast sqlite3
    reader (no SQLAlchemy on the cold path), a filtered one through the MetadataStore, which
    runs the filter's select."""

    name = "fts5"
    filter_form = SELECT
    ranking = "bm25-fts5"

    def __init__(self, reader: Any, store: Any):
        self._reader = reader  # SQLiteReader or MetadataStore: both have `.lexical`
        self._store = store  # () -> the MetadataStore, opened when a filter needs it

    @classmethod
    def open(cls, place) -> Fts5Lexical:
        return cls(place.reader, place.store)

    def search(self, terms: Sequence[str], depth: int, allowed: Any = None) -> Hits:
        if allowed is None:
            return self._reader.lexical.search(terms, depth)
        return self._store().lexical.search(terms, depth, allowed)

    def reference(self, terms: Sequence[str]) -> float | None:
        return self._reader.lexical.reference(terms)

    def describe(self) -> str:
        return "FTS5"


class PostgresLexical(LexicalStore):
    """PostgreSQL's full text: the generated `tsv` column, ranked by ts_rank_cd (cover
    density: no document frequencies, hence BM25 in Milvus where there is one)."""

    name = "postgres"
    filter_form = SELECT
    ranking = "cover-density"

    def __init__(self, store: Any):
        self._store = store  # () -> the MetadataStore

    @classmethod
    def open(cls, place) -> PostgresLexical:
        return cls(place.store)

    def search(self, terms: Sequence[str], depth: int, allowed: Any = None) -> Hits:
        return self._store().lexical.search(terms, depth, allowed)

    def reference(self, terms: Sequence[str]) -> float | None:
        return self._store().lexical.reference(terms)

    def describe(self) -> str:
        return "PostgreSQL full text"


class NoFullText(LexicalStore):
    """A database anyfind has no full-text query for: lexical search is refused."""

    name = "none"
    available = False

    def __init__(self, dialect: str):
        self.dialect = dialect

    def search(self, terms: Sequence[str], depth: int, allowed: Any = None) -> Hits:
        return []

    def reference(self, terms: Sequence[str]) -> float | None:
        return None

    def describe(self) -> str:
        return f"none ({self.dialect})"
