"""Where an index's parts live, decided in one place from its configured services.

An index is a metadata store (a SQLite file in its folder, or a database server), a
vector store per space (files in the folder, or a service many processes share) and a
lexical search (the store's full text, with the tantivy cache in front of a SQLite file,
or BM25 in the vector service). Which combination an index has decides: whether writes
go through the outbox (vectors shared by a service), where BM25 is, whether the index's
files (calibration, thumbnails) are kept in the store, and whether the writer lock is
held in the database. `OpenIndex` asks this object and opens what it answers; each
backend declares what it is (a vector store's `shared`, its URI `schemes`, a lexical
store's filter form), so a plugin backend takes part without a rule here naming it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .lexical_store import LexicalPlace, LexicalSearch, LexicalStore, lexical_stores
from .vector_store import backend_of, vector_stores

SQLITE = "sqlite"


@dataclass(frozen=True)
class Deployment:
    # As configured (credentials masked or `${ENV}` references left as they are): only
    # schemes and options are read here, nothing is contacted.
    store_url: str  # the metadata store's URL
    vector_store: str  # the vector store: a backend name or its URI
    store_configured: bool = False  # a store URL in the config (not the folder's meta.db)

    @property
    def store_in_file(self) -> bool:
        """A SQLite file: one machine, the folder's lock is enough, files stay in folders."""
        return self.store_url.startswith(SQLITE)

    @functools.cached_property
    def vector_backend(self) -> str:
        return backend_of(self.vector_store or "faiss")

    @functools.cached_property
    def shares_vectors(self) -> bool:
        """Vectors in a service that processes share (Milvus): only writers change them,
        from the store's outbox, and searches use them as they are."""
        return bool(getattr(vector_stores.get(self.vector_backend), "shared", False))

    @property
    def outbox(self) -> bool:
        """Writes record what the vector service must apply (store/outbox.py)."""
        return self.shares_vectors

    @property
    def database_lock(self) -> bool:
        """The writer lock is held in the store too: several folders reach one index."""
        return self.store_configured

    @property
    def files_in_store(self) -> bool:
        """The index's files (calibration, thumbnails) are kept in a server store, so a
        machine with only the config can serve it (store/index_files.py)."""
        return not self.store_in_file

    @functools.cached_property
    def bm25_in_service(self) -> bool:
        """Words searched with BM25 in the vector service (Milvus 2.5+): an index whose
        vectors a service shares over a server store, whose own ranking has no BM25 (a
        SQLite store keeps its tantivy BM25, which stems: docs/SCALE.md).
        `?lexical=postgres` in the vector-store URI keeps the store's full text."""
        if not self.shares_vectors or self.store_in_file:
            return False
        from ..errors import ConfigError

        backend = vector_stores.get(self.vector_backend)
        choice = backend.options_of(self.vector_store or "").get("lexical", "bm25")
        if choice not in ("bm25", "postgres"):
            raise ConfigError(f"?lexical={choice}: bm25 (words in Milvus) or postgres")
        return choice == "bm25" and self.vector_backend in lexical_stores.names()

    def lexical_chain(self, place: LexicalPlace, dialect: str) -> tuple[list[LexicalStore],
                                                                         str | None]:
        """The backends that answer words, in order of preference, the store's own full
        text last; and why the store's stands alone, if it does. A service's BM25 is not
        in the chain: it is looked up per query (`LexicalSearch`'s `service`)."""
        from .fulltext import NoFullText

        store = {"sqlite": "fts5", "postgresql": "postgres"}.get(dialect)
        if store is None:
            return [NoFullText(dialect)], None
        chain: list[LexicalStore] = []
        why = None
        if dialect == SQLITE and self.store_in_file and _reads_file(place.reader):
            from .lexical_cache import wanted

            why = wanted()
            if why is None:
                chain.append(lexical_stores.get("tantivy").open(place))
        chain.append(lexical_stores.get(store).open(place))
        return chain, why if not self.bm25_in_service else None

    def lexical_search(self, place: LexicalPlace, dialect: str, service=None) -> LexicalSearch:
        chain, why = self.lexical_chain(place, dialect)
        return LexicalSearch(chain, service if self.bm25_in_service else None, why)


def _reads_file(reader) -> bool:
    """The tantivy cache is kept beside a SQLite file read by the fast reader (its stamp
    is read there on every query)."""
    from .reader import SQLiteReader

    return isinstance(reader, SQLiteReader)
