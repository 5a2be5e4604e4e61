"""The lexical-store seam: BM25 (or another word ranking) over chunk text, whatever holds it.

A backend implements `LexicalStore` and registers a factory under a name in
`lexical_stores` (built-ins here, plugins through the `anyfind.lexical_stores` entry-point
group). It declares the one filter form it takes (`filter_form`): a SQL select of chunk
ids, the allowed ids themselves, or a boolean expression over item fields; a query's
`Allowed` (search/allowed.py) hands each backend its own form. Every backend passes the
same contract suite (tests/store/test_lexical_store_contract.py) with plain BM25 in NumPy
as its oracle.

`LexicalSearch` is the one place that chooses which backend answers: the first of the
index's chain (store/deployment.py) that is ready and can take the query's filters. A
derived cache that fails hands the query to the next one, which answers the same query.
Search code calls `LexicalSearch` and never names a backend.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..registry import Registry

log = logging.getLogger("anyfind.index")

Hits = list[tuple[int, float]]  # (chunk id, score), best first

# The filter forms a backend can take (see `LexicalStore.filter_form`).
SELECT, IDS, EXPRESSION = "select", "ids", "expression"


class LexicalSource(Protocol):
    """What a lexical store is caught up from and checked against: the metadata store (a
    MetadataStore; a SQLiteReader for the tantivy cache; checks pass a snapshot)."""

    def chunk_stamp(self) -> tuple[int, int]: ...

    def chunk_ids(self) -> np.ndarray: ...

    def chunk_texts(self, chunk_ids: Sequence[int]) -> list[tuple[int, str | None]]: ...


@dataclass
class LexicalPlace:
    """Where an index's lexical backends are opened from (each backend's `open(place)`
    takes what it needs)."""

    index_dir: Path
    reader: Any  # the fast reader (SQLiteReader) or the MetadataStore: unfiltered reads
    store: Callable[[], Any]  # the MetadataStore (SQLAlchemy), opened when a filter needs it
    service_uri: str | None = None  # a vector service that may keep BM25 (Milvus)
    owner: str = ""  # the index id a service's collections carry


class LexicalStore(ABC):
    """Full-text search over the chunks' text: any of the query's terms, ranked."""

    name = ""  # its name in `lexical_stores`
    filter_form = SELECT  # what `search(..., allowed=)` takes: SELECT, IDS or EXPRESSION
    # How scores are made, for those who read them (the contract suite's oracle):
    # "bm25" (idf = ln(1 + (N - n + .5) / (n + .5))), "bm25-fts5" (FTS5's idf,
    # ln((N - n + .5) / (n + .5)), at least 1e-6) or "cover-density" (PostgreSQL's
    # ts_rank_cd: no document frequencies at all).
    ranking = "bm25"
    # False: scores approximate the ranking's formula (Milvus Lite's BM25 is within ~10%
    # of textbook BM25: its own length statistics); the contract suite then asks for the
    # same matches and close scores, not equal ones.
    exact_scores = True
    # True: a cache derived from the store. When it fails, the next backend of the chain
    # answers the same query (never a different one: a service's failure is the query's).
    derived = False
    check_code = "lexical-cache"  # what `anyfind check` calls a problem `check` finds
    available = True  # False: this database has no full text (a query says so)

    def ready(self) -> bool:
        """Whether it answers now as the store says (a cache is current, a service is
        filled). A backend that is not ready is skipped, never asked."""
        return True

    @abstractmethod
    def search(self, terms: Sequence[str], depth: int, allowed: Any = None) -> Hits:
        """Top `depth` (chunk id, score) for chunks holding any of the terms, best first,
        ties by chunk id; a repeated term weighs once per repetition. `allowed`: the
        query's filters in this backend's `filter_form` (None: no filter)."""

    @abstractmethod
    def reference(self, terms: Sequence[str]) -> float | None:
        """The score of an average-length chunk holding each term once (the sum of the
        terms' idf for BM25): what a lexical score is saturated against
        (search/relevance.py). None when unknown."""

    @abstractmethod
    def describe(self) -> str:
        """One line for `anyfind status`."""

    def catch_up(self, source: LexicalSource, checkpoint: bool = False) -> str:
        """Make it hold `source`'s chunks (writers only, under the index's lock): "current",
        "updated", "rebuilt" or (a checkpoint in the middle of a sync) "deferred". A
        backend kept by the database in the chunks' own transaction is always current."""
        return "current"

    def reconcile(self, source: LexicalSource) -> str:
        """Compare it whole with `source` and fix every difference (`check --repair`:
        the one full scan, where `catch_up` may follow a log of changes)."""
        return self.catch_up(source)

    def check(self, source: LexicalSource) -> str | None:
        """What is wrong between it and `source` (one clause), or None. `anyfind check`
        reports it as `check_code` (a warning: the store's full text answers meanwhile);
        `--repair` calls `reconcile`."""
        return None

    def close(self) -> None:
        return None


lexical_stores: Registry[Any] = Registry("lexical store", "anyfind.lexical_stores")
lexical_stores.register("tantivy", "anyfind.store.lexical_cache:TantivyLexical")
lexical_stores.register("fts5", "anyfind.store.fulltext:Fts5Lexical")
lexical_stores.register("postgres", "anyfind.store.fulltext:PostgresLexical")
lexical_stores.register("milvus", "anyfind.store.milvus_lexical:MilvusLexical")


class LexicalSearch:
    """What a search calls: the first backend of the chain that is ready and takes the
    query's filters. `service()` is a cluster index's BM25 collection, looked up on each
    query (it can come and go: store/milvus_lexical.py), with why it is not there."""

    def __init__(self, chain: Sequence[LexicalStore],
                 service: Callable[[], tuple[LexicalStore | None, str | None]] | None = None,
                 why_alone: str | None = None):
        if not chain:
            raise ValueError("a lexical search needs at least one backend")
        self.chain = list(chain)
        self._service = service
        self.why_alone = why_alone  # why the store's full text has no cache in front of it

    @property
    def store_backend(self) -> LexicalStore:
        """The store's own full text: the last of the chain, always ready."""
        return self.chain[-1]

    @property
    def available(self) -> bool:
        return self.store_backend.available

    def backends(self) -> list[LexicalStore]:
        """Every backend that could answer now, in order."""
        service = self.service()
        return ([service] if service is not None else []) + self.chain

    def service(self) -> LexicalStore | None:
        if self._service is None:
            return None
        found, _ = self._service()
        return found if found is not None and found.ready() else None

    def answering(self) -> LexicalStore:
        """The backend that answers an unfiltered query now."""
        return next(b for b in self.backends() if b is self.store_backend or b.ready())

    def backend(self) -> str:
        """The name of the backend that answers an unfiltered query now."""
        return self.answering().name

    def search(self, terms: Sequence[str], depth: int, allowed: Any = None) -> Hits:
        """Top `depth` (chunk id, score). `allowed`: the query's filters (search/allowed.py:
        `for_lexical` gives each backend its form; None where a backend cannot take them)."""
        for backend in self.backends():
            last = backend is self.store_backend
            if not last and not backend.ready():
                continue
            form = None if allowed is None else allowed.for_lexical(backend.filter_form)
            if allowed is not None and form is None:
                continue  # filters this backend cannot say: the next one takes them
            if not backend.derived or last:
                return backend.search(terms, depth, form)
            try:
                return backend.search(terms, depth, form)
            except Exception as exc:  # noqa: BLE001 (the next backend answers the same query)
                warn_once(f"the lexical {backend.describe()} cache failed "
                          f"({type(exc).__name__}: {exc}); searching "
                          f"{self.store_backend.describe()} instead")
        raise RuntimeError("no lexical backend took the query")  # the store's always does

    def reference(self, terms: Sequence[str]) -> float | None:
        """The reference score (`LexicalStore.reference`) on the scale of the backend that
        answers an unfiltered query now; None when it fails (scores then saturate at a
        fixed level)."""
        if not terms:
            return None
        try:
            return self.answering().reference(terms)
        except Exception as exc:  # noqa: BLE001 (scores fall back to a fixed saturation)
            warn_once(f"the lexical reference failed ({type(exc).__name__}: {exc})")
            return None

    def describe(self) -> str:
        """One line for `anyfind status`: what answers lexical queries, and why."""
        store = self.store_backend
        if self._service is not None:
            found = self.service()
            if found is not None:
                return found.describe()
            why = self._service()[1] or "the BM25 collection is filled by the next sync"
            return f"{store.describe()} ({why})"
        cache = self.chain[0] if len(self.chain) > 1 else None  # the one in front of it
        if cache is not None and cache.ready():
            return f"{cache.describe()} (current)"
        if cache is not None:
            return (f"{store.describe()} (the {cache.describe()} cache is stale or missing: "
                    "rebuilt by the next sync)")
        return f"{store.describe()} ({self.why_alone})" if self.why_alone else store.describe()

    def close(self) -> None:
        for backend in self.chain:
            backend.close()


class ServiceLookup:
    """A lexical service looked up when asked: (it, None) or (None, why not). A lookup
    that raised (the service unreachable) is tried again after `retry_after` seconds; an
    answer that stands (this engine has no BM25) is kept."""

    def __init__(self, open_service: Callable[[], tuple[LexicalStore | None, str | None]],
                 what: str, retry_after: float = 60.0):
        self._open = open_service
        self.what = what
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._found: tuple[LexicalStore | None, str | None] | None = None
        self._retry_at = math.inf

    def __call__(self) -> tuple[LexicalStore | None, str | None]:
        found = self._found
        if found is None or time.monotonic() >= self._retry_at:
            with self._lock:
                if self._found is None or time.monotonic() >= self._retry_at:
                    self._found = self._look()  # sets when to look again
                found = self._found
        return found

    def _look(self) -> tuple[LexicalStore | None, str | None]:
        from ..errors import one_line

        try:
            found = self._open()
        except Exception as exc:  # noqa: BLE001 (words are then searched in the store)
            why = one_line(exc)
            log.warning("%s is not used: %s", self.what, why)
            self._retry_at = time.monotonic() + self.retry_after
            return None, why
        self._retry_at = math.inf
        return found

    @property
    def settled(self) -> bool:
        """The last answer stands (not a lookup that failed and will be tried again)."""
        return self._found is not None and self._retry_at == math.inf

    def forget(self) -> None:
        with self._lock:
            self._found, self._retry_at = None, math.inf


_warned: set[str] = set()


def warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"anyfind: {message}", file=sys.stderr, flush=True)
