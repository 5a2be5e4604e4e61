"""The vector-store seam: one space's vectors by chunk id, whatever holds them.

A backend implements `VectorStore` (a handful of methods) and registers a factory under
a name in `vector_stores` (built-ins here, plugins through the `anyfind.vector_stores`
entry-point group); the index config's `vector_store` key picks it (default "faiss").
Every backend passes the same contract suite (tests/store/test_vector_store_contract.py) with
the NumPy exact search as its oracle.

The metadata store stays the truth for SQLite indexes: a backend is caught up from it
(`catch_up`, by the space's generation) and may persist itself as a cache (`persist`).
Chunk ids are never reused, so an upsert of an id seen before is harmless.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..registry import Registry

VECTOR_DIR = "vectors"  # inside an index directory: file-based backends keep their files here


class VectorSource(Protocol):
    """What a vector store is caught up from: the metadata store (or a snapshot of it)."""

    def generation(self, space: str) -> int: ...

    def vector_ids(self, space: str) -> np.ndarray: ...

    def vectors(self, space: str, ids: Any = None, dim: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]: ...


class VectorStore(ABC):
    """One embedding space's vectors: cosine similarity as inner product on unit vectors."""

    space: str
    dim: int
    generation: int  # the store generation these vectors reflect (-1: none yet)
    files = False  # True: a cache in files of the index, which `check` inspects itself
    # True: a service many processes share. Only writers change it (`catch_up`, from the
    # store's outbox); a searching process uses it as it is.
    shared = False
    # The item fields (store/filter_fields.py) the backend keeps beside each vector; a
    # backend that has them takes `where=`, a filter expression in its own language, in
    # `search` (search/filter_milvus.py), instead of a list of allowed ids.
    filter_fields: set[str] = frozenset()  # type: ignore[assignment]
    # The URI schemes that name this backend in a config's `vector_store`
    # (milvus://HOST:PORT): a plugin's class claims its own.
    schemes: tuple[str, ...] = ()

    @classmethod
    def options_of(cls, uri: str) -> dict[str, str]:
        """The options a vector-store URI carries in its query (`?prefix=...`), read with
        the login grammar of masking.py (a password may hold a "?")."""
        from ..masking import query_params

        return query_params(uri)[1]

    @abstractmethod
    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert these vectors under these chunk ids, replacing any held under them."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Delete these chunk ids (absent ones are ignored); how many went."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query, best first; `allowed` restricts to those ids.
        Fewer than k columns when fewer vectors qualify; an approximate index may find
        fewer than that for some queries, marked by id -1."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every chunk id held."""

    def count(self) -> int:
        return len(self.ids())

    def fetch(self, ids: Any, consistency: str | None = None) -> dict[int, np.ndarray]:
        """chunk id -> vector, for those of these ids held here. Only a backend that can be
        the one holder of the vectors (a service: the store lets go of applied vectors,
        store/outbox.py) needs it; one whose source keeps every vector returns {}."""
        return {}

    @abstractmethod
    def catch_up(self, source: VectorSource) -> bool:
        """Make this store hold exactly `source`'s vectors of the space; True if it changed."""

    def reconcile(self, source: VectorSource) -> bool:
        """Compare whole id sets with `source` and fix every difference (`check --repair`:
        the one full scan, where `catch_up` may follow a log of changes)."""
        return self.catch_up(source)

    @abstractmethod
    def persist(self) -> None:
        """Make what is held durable (a file-based cache writes its files)."""

    def persisted(self) -> bool:
        """Whether a persisted copy exists (a writer persists an empty store once)."""
        return True

    def load(self, mmap: bool = False) -> bool:
        """Open what a previous process persisted; False when there is nothing usable."""
        return False

    def snapshot(self) -> VectorStore:
        """An independent copy that can be changed while this one is searched (servers
        catch up copy-on-write). Backends whose searches never see a change in progress
        return themselves."""
        return self

    def describe(self) -> str:
        return type(self).__name__

    def drop(self) -> None:
        """Forget every vector of this space where they live (a reindex with another
        model). Backends whose vectors are files of the index: the index removes them."""
        return None


vector_stores: Registry[Any] = Registry("vector store", "anyfind.vector_stores")
vector_stores.register("faiss", "anyfind.store.faiss_store:FaissVectorStore")
vector_stores.register("milvus", "anyfind.store.milvus_store:MilvusVectorStore")


def parse_vector_store(spec: str) -> tuple[str, dict[str, Any]]:
    """A config's `vector_store`: a backend name ("faiss", "milvus"), or a URI that names
    both the backend and where it is (milvus://HOST:PORT, milvus+https://...,
    milvus-lite:///ABS/PATH.db; `${ENV}` references are read now)."""
    kind = backend_of(spec)
    if "://" not in spec:
        return kind, {}
    from ..secrets import expand_env

    return kind, {"uri": expand_env(spec) if "${" in spec else spec}


# The built-ins' schemes, so that naming one imports no backend (each class declares them
# too, in `schemes`; a plugin's are found by importing it).
_BUILT_IN_SCHEMES = {"milvus": "milvus", "milvus+https": "milvus", "milvus-lite": "milvus"}


def backend_of(spec: str) -> str:
    """The backend a config's `vector_store` names (nothing expanded or contacted)."""
    if "://" not in spec:
        return spec
    scheme = spec.split("://", 1)[0]
    if scheme in _BUILT_IN_SCHEMES:
        return _BUILT_IN_SCHEMES[scheme]
    for name in vector_stores.names():
        if name not in _BUILT_IN_SCHEMES.values() and name != "faiss" and \
                scheme in getattr(vector_stores.get(name), "schemes", ()):
            return name
    from ..errors import ConfigError

    raise ConfigError(f"unknown vector store {spec!r} (faiss, milvus://HOST:PORT, "
                      "milvus-lite:///ABS/PATH.db)")


def open_vector_store(index_dir: Path, space: str, dim: int, *, kind: str = "faiss",
                      factory: str = "auto", load: bool = True, mmap: bool = False,
                      **options: Any) -> VectorStore:
    """The one place a vector store is made: the backend `kind` for one space of the
    index at `index_dir`, with what it persisted loaded (`mmap`: mapped, where it can;
    load=False: not yet, for `anyfind check`, which judges the files itself)."""
    kind, found = parse_vector_store(kind)
    cls = vector_stores.get(kind)
    store = cls(Path(index_dir) / VECTOR_DIR, space, dim, factory, **{**found, **options})
    if load:
        store.load(mmap=mmap)
    return store
