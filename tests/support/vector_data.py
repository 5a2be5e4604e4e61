"""Vectors and items for the vector-store tests: unit vectors, sparse ids, and a writer of
items with vectors through the metadata store."""

from __future__ import annotations

import numpy as np

from anyfind.store.metadata import ChunkRecord, ItemRecord, MetadataStore

DIM = 64
SPACE = "text"


def normalise(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def uniform(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    return normalise(rng.standard_normal((n, dim)))


def clustered(rng: np.random.Generator, n: int, dim: int = DIM, clusters: int = 100) -> np.ndarray:
    """Unit vectors around topic centres: the shape sentence embeddings have.

    (Uniform random vectors have no cluster structure at all, so any IVF index needs to
    probe most of its lists to reach a high recall on them; they are the wrong test.)"""
    centres = uniform(rng, clusters, dim)
    noise = rng.standard_normal((n, dim)) * (0.25 / np.sqrt(dim))
    return normalise(centres[rng.integers(0, clusters, n)] + noise)


def sparse_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct, non-contiguous, unordered ids (as chunk ids become after deletions)."""
    return rng.choice(10 * n, size=n, replace=False).astype(np.int64) + 1


class StoreWriter:
    """Writes items with 1-3 chunks each, every chunk with a vector, through MetadataStore.write_items."""

    def __init__(self, store: MetadataStore, rng: np.random.Generator):
        self.store, self.rng = store, rng
        self.source = store.ensure_source("src", "filesystem", "/data")
        store.ensure_space(SPACE, DIM)
        self.n = 0
        self.centres = uniform(rng, 12)

    def write(self, items: int) -> None:
        entries = []
        for _ in range(items):
            self.n += 1
            chunks = []
            for o in range(int(self.rng.integers(1, 4))):
                c = self.centres[self.rng.integers(0, len(self.centres))]
                vec = normalise((c + self.rng.standard_normal(DIM) * 0.05)[None, :])[0]
                chunks.append(ChunkRecord(ordinal=o, modality="text", text=f"chunk {self.n}.{o}",
                                          char_start=0, char_end=5, vectors={SPACE: vec}))
            record = ItemRecord(source_id=self.source, uri=f"file:///data/{self.n}.txt",
                                path=f"/data/{self.n}.txt", modality="text",
                                media_type="text/plain", size=10, mtime=1.0,
                                fingerprint=str(self.n), content_hash=f"h{self.n}")
            entries.append((record, chunks, None))
        self.store.write_items(entries)

    def item_ids(self) -> list[int]:
        return [row.id for row in self.store.items_of_source(self.source).values()]
