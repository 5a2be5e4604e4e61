"""A vector the vector service holds and the store does not: one sentinel, one reader.

With a vector service (Milvus) the writer empties an embeddings row's blob once the
service holds its vector (store/outbox.py): at 10^9 chunks the vectors live in one place.
Every reader of the store's vectors skips those rows the same way, here: the SQL a raw
sqlite3 reader adds, the test a Python reader makes, and the matrix they build. No
SQLAlchemy (the cold search path reads through sqlite3 alone)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

HELD = b""  # an embeddings row's blob once the vector service holds the vector
STORED_SQL = "length(vector) > 0"  # a raw-SQL condition: the store itself has it


def is_held(blob: bytes) -> bool:
    return len(blob) == 0


def matrix_of(rows: Iterable[tuple[int, bytes]], dim: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 matrix) of (chunk id, blob) rows, the held ones left out."""
    ids, blobs = [], []
    for cid, blob in rows:
        if not is_held(blob):
            ids.append(int(cid))
            blobs.append(blob)
    if not blobs:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim or 0), dtype=np.float32)
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
    return np.asarray(ids, dtype=np.int64), matrix


def with_held(ids: np.ndarray, matrix: np.ndarray, held: dict[int, np.ndarray], dim: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """The store's (ids, matrix) with the vectors only the service holds (`held`, read
    back with its `fetch`) merged in, in id order."""
    if not held:
        return ids, matrix
    every = {**dict(zip(ids.tolist(), matrix, strict=True)), **held}
    order = sorted(every)
    return (np.asarray(order, np.int64),
            np.asarray([every[i] for i in order], np.float32).reshape(len(order), dim))
