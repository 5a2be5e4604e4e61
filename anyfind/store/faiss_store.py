"""One FAISS index per embedding space: cosine as inner product on normalised vectors.

The metadata store holds every vector; the FAISS file is a derived cache written
atomically after each sync together with the store generation it reflects. Opening a
file whose generation lags the store catches it up by id sets (add what is missing,
remove what is gone), so a crash between a store commit and a file write is harmless.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..crashpoints import crash_point
from ..fsutil import atomic_write_bytes, atomic_write_with
from .vector_store import VectorStore

FLAT_MAX = 50_000  # below this an exact search is fast enough and perfectly accurate


def choose_factory(n: int, dim: int) -> str:
    """autofaiss-style choice by size: exact when small, IVF above FLAT_MAX."""
    if n <= FLAT_MAX:
        return "Flat"
    nlist = int(min(65536, max(256, 4 * math.sqrt(n))))
    return f"IVF{nlist},Flat"


_faiss_module = None


def _faiss():
    global _faiss_module
    if _faiss_module is None:  # import_module costs ~0.5 ms even when loaded: once
        from ..errors import require

        _faiss_module = require("faiss", "core")
    return _faiss_module


@contextlib.contextmanager
def omp_threads(faiss: Any, n: int) -> Iterator[None]:
    """Run the block with FAISS on `n` OpenMP threads, then restore the count. The count
    is an OpenMP per-thread setting (omp_set_num_threads sets the calling thread's
    nthreads-var), so no lock is needed: searches in other threads keep their own."""
    before = faiss.omp_get_max_threads()
    if before == n:
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def exact_search(matrix: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """NumPy brute force: the test oracle for every FAISS index type."""
    if len(ids) == 0:
        return (np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64))
    scores = queries @ matrix.T
    k = min(k, len(ids))
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, top, axis=1), ids[top]


def read_mapped(faiss, path: Path) -> tuple[Any, bool]:
    """(index, True) with its vectors mapped from the file when FAISS can map this index
    type (IO_FLAG_MMAP_IFC: the flat codes and the IVF lists stay in the page cache),
    else (index, False) read into memory."""
    flags = getattr(faiss, "IO_FLAG_MMAP_IFC", None)
    if flags is not None:
        try:
            return faiss.read_index(str(path), flags | faiss.IO_FLAG_READ_ONLY), True
        except RuntimeError:
            pass  # this type cannot be mapped
    return faiss.read_index(str(path)), False


class ReadWriteLock:
    """Any number of readers at once, or one writer; a waiting writer goes first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class FaissVectorStore(VectorStore):
    """A FAISS index for one space, with ids = chunk ids: the default vector store, a
    cache of the metadata store's vectors saved as files under <index>/vectors/."""

    files = True

    def __init__(self, directory: Path, space: str, dim: int, factory: str = "auto",
                 model: str = "", owner: str = ""):
        # `model`, `owner`: unused here: the files live in the index, whose config names
        # the model and whose store names its owner (store/ownership.py).
        self.directory = Path(directory)
        self.space = space
        self.dim = dim
        self.factory = factory
        self.index: Any = None
        self.mapped = False  # the index's storage is the file's pages, read-only (load(mmap=True))
        self.generation = -1
        self.built_factory = ""
        self.nprobe: int | None = None
        # FAISS indexes are not safe to change while another thread searches them:
        # searches share this lock, a catch-up takes it alone.
        self.lock = ReadWriteLock()

    @property
    def path(self) -> Path:
        return self.directory / f"{self.space}.faiss"

    @property
    def sidecar(self) -> Path:
        return self.directory / f"{self.space}.json"

    def __len__(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    # -- building ------------------------------------------------------------------------
    def _new_index(self, vectors: np.ndarray):
        faiss = _faiss()
        factory = self.factory if self.factory != "auto" else choose_factory(len(vectors), self.dim)
        if factory == "Flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        else:
            index = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
            if not index.is_trained:
                sample = vectors
                if len(sample) > 200_000:
                    rng = np.random.default_rng(0)
                    sample = vectors[rng.choice(len(vectors), 200_000, replace=False)]
                index.train(sample)
            ivf = faiss.try_extract_index_ivf(index)
            if ivf is not None:
                # ~3% of the lists: recall@10 near 0.95+ for sentence embeddings.
                ivf.nprobe = max(8, ivf.nlist // 32)
                # no direct map: an Array map refuses add_with_ids, a Hashtable one IDSelectorBatch
        self.built_factory = factory
        return index

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray, generation: int) -> None:
        self.index = self._new_index(vectors)
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                    np.ascontiguousarray(ids, dtype=np.int64))
        self.generation = generation

    def ids(self) -> np.ndarray:
        """The chunk ids present in the index."""
        faiss = _faiss()
        if self.index is None:
            return np.zeros(0, dtype=np.int64)
        if isinstance(self.index, faiss.IndexIDMap):
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        ivf = faiss.extract_index_ivf(self.index)
        invlists = ivf.invlists
        parts = []
        for lst in range(ivf.nlist):
            n = invlists.list_size(lst)
            if n:
                ptr = invlists.get_ids(lst)
                parts.append(faiss.rev_swig_ptr(ptr, n).copy())
                invlists.release_ids(lst, ptr)
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        if self.index is None:
            self.index = self._new_index(vectors)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                np.ascontiguousarray(ids, dtype=np.int64))

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        with self.lock.writing():
            self.remove(ids)
            self.add(ids, vectors)

    def count(self) -> int:
        return len(self)

    def persist(self) -> None:
        self.save()

    def persisted(self) -> bool:
        return self.path.exists()

    def describe(self) -> str:
        return f"faiss ({self.built_factory or self.factory})"

    def snapshot(self) -> FaissVectorStore:
        """An independent copy, safe to change while this one is searched."""
        copy = FaissVectorStore(self.directory, self.space, self.dim, self.factory)
        if self.index is not None:
            copy.index = _faiss().clone_index(self.index)
        copy.generation = self.generation
        copy.built_factory = self.built_factory
        copy.nprobe = self.nprobe
        return copy

    def remove(self, ids: np.ndarray) -> int:
        if self.index is None or len(ids) == 0:
            return 0
        faiss = _faiss()
        return int(self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

    def catch_up(self, store) -> bool:
        """Make the index equal the store's vectors for this space. True if it changed."""
        with self.lock.writing():
            return self._catch_up(store)

    def _catch_up(self, store) -> bool:
        gen = store.generation(self.space)
        if self.index is not None and gen == self.generation:
            return False
        if self.mapped:
            # A mapped index is never changed: read the file (as it is now) into memory,
            # then catch that copy up.
            self.index, self.mapped = None, False
            self.load()
            if self.index is not None and gen == self.generation:
                return True
        if self.index is None:
            ids, vecs = store.vectors(self.space, dim=self.dim)
            self.rebuild(ids, vecs, gen)
            return True
        want = store.vector_ids(self.space)
        have = self.ids()
        missing = np.setdiff1d(want, have, assume_unique=True)
        extra = np.setdiff1d(have, want, assume_unique=True)
        self.remove(extra)
        if len(missing):
            ids, vecs = store.vectors(self.space, missing, dim=self.dim)
            self.add(ids, vecs)
        self.generation = gen
        # An IVF trained on far fewer vectors than it now holds loses recall: retrain.
        if self.factory == "auto" and choose_factory(len(self), self.dim) != self.built_factory:
            grow = self.built_factory == "Flat" or len(self) > 4 * self._trained_size()
            if grow:
                ids, vecs = store.vectors(self.space, dim=self.dim)
                self.rebuild(ids, vecs, gen)
        return True

    def _trained_size(self) -> int:
        if self.built_factory.startswith("IVF"):
            nlist = int(self.built_factory[3:].split(",")[0])
            return int((nlist / 4) ** 2)
        return 0

    # -- persistence ---------------------------------------------------------------------
    def load(self, mmap: bool = False) -> bool:
        """Read the saved index; False if there is none (or it is unreadable).

        mmap: map the file instead of reading it, where the index type allows
        (see read_mapped), so that opening a large index costs no read of it. A
        writer replaces the file by rename, never in place, so the mapped pages stay
        those of the file as it was opened."""
        faiss = _faiss()
        try:
            meta = json.loads(self.sidecar.read_text())
            index, mapped = read_mapped(faiss, self.path) if mmap else (
                faiss.read_index(str(self.path)), False)
        except (OSError, ValueError, RuntimeError):
            return False
        if index.d != self.dim:
            return False
        self.index, self.mapped = index, mapped
        self.generation = int(meta.get("generation", -1))
        self.built_factory = meta.get("factory", "")
        return True

    def save(self) -> None:
        with self.lock.reading():
            self._save()

    def _save(self) -> None:
        if self.index is None:
            return
        faiss = _faiss()
        self.directory.mkdir(parents=True, exist_ok=True)
        # Index file first, then the sidecar: a sidecar is never ahead of its file.
        atomic_write_with(self.path, lambda tmp: faiss.write_index(self.index, tmp))
        crash_point("vectors.file_saved")
        meta = {"generation": self.generation, "factory": self.built_factory,
                "count": len(self), "dim": self.dim}
        atomic_write_bytes(self.sidecar, json.dumps(meta).encode())

    # -- search --------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query; `allowed` restricts to those chunk ids."""
        with self.lock.reading():
            return self._search(queries, k, allowed)

    def _search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.index is None or len(self) == 0 or k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        k = min(k, len(self) if allowed is None else min(len(self), len(allowed)))
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        faiss = _faiss()
        # One query is too little work to share: FAISS splits a search across queries, so
        # a second OpenMP thread only spins at the barrier (~1 ms became ~100 ms on a busy
        # 2-core machine). Batches keep every thread.
        with omp_threads(faiss, 1) if len(queries) == 1 else contextlib.nullcontext():
            if allowed is None:
                scores, ids = self.index.search(queries, k)
            else:
                sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
                params = faiss.SearchParametersIVF(sel=sel) if not isinstance(
                    self.index, faiss.IndexIDMap) else faiss.SearchParameters(sel=sel)
                if isinstance(params, faiss.SearchParametersIVF):
                    params.nprobe = faiss.extract_index_ivf(self.index).nprobe
                scores, ids = self.index.search(queries, k, params=params)
        keep = ids[0] >= 0 if len(ids) == 1 else slice(None)
        return scores[:, keep], ids[:, keep]


