"""A query's filters as each signal needs them, worked out only when one asks.

Filters are SQL over the metadata store (filter_sql.py). Each backend declares the form it
takes: the store's full-text search takes that select as it is; FAISS and the tantivy
cache need the allowed chunk ids, read once per query; a vector service that keeps the item fields takes the filters as its own
boolean expression (filter_milvus.py), so a filtered search of a Milvus index reads no
id list at all.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..store.lexical_store import EXPRESSION, IDS, SELECT
from .filters import Filters


class Allowed:
    def __init__(self, store, filters: Filters):
        from .filter_sql import condition  # SQLAlchemy only when a filter is used

        self.filters = filters
        self.store = store
        self.sql = store.allowed_chunks(condition(filters.clauses, store.engine.dialect.name,
                                                     getattr(store, "fold_collation", None)))
        self._ids: np.ndarray | None = None
        self._expression: str | None | bool = False  # False: not worked out yet
        self._lock = threading.Lock()

    def ids(self) -> np.ndarray:
        """The allowed chunk ids (read from the store once)."""
        with self._lock:
            if self._ids is None:
                self._ids = self.store.chunk_ids(self.sql)
            return self._ids

    @property
    def known_empty(self) -> bool:
        return self._ids is not None and not len(self._ids)

    def expression(self) -> str | None:
        if self._expression is False:
            from .filter_milvus import expression

            self._expression = expression(self.filters.clauses)
        return self._expression  # type: ignore[return-value]

    def for_lexical(self, form: str) -> Any:
        """These filters in a lexical backend's form (store/lexical_store.py): the select,
        the ids, or the expression; None when that backend cannot say them."""
        if form == SELECT:
            return self.sql
        if form == IDS:
            return self.ids()
        if form == EXPRESSION:
            return self.expression()
        return None

    def for_vectors(self, vs) -> dict[str, Any]:
        """The keyword a vector store's `search` takes for these filters."""
        if vs.filter_fields:
            where = self.expression()
            if where is not None:
                return {"where": where}
        return {"allowed": self.ids()}
