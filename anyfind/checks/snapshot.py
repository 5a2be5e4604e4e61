"""A read-only, consistent snapshot of the metadata store for the checks.

pysqlite starts no transaction for SELECTs, so each query would see a different state
while a writer commits. The checks open their own engine that issues BEGIN itself, so
every query of one check reads the same committed state (WAL readers never block the
writer)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy import Connection, create_engine, event, func, select
from sqlalchemy.pool import NullPool

from ..store.held import matrix_of
from ..store.schema import Chunk, Embedding, Space


@contextlib.contextmanager
def snapshot(url) -> Iterator[Connection]:
    engine = create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # we say BEGIN ourselves
            dbapi_conn.execute("PRAGMA busy_timeout=30000")

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            conn.exec_driver_sql("BEGIN")

        options: dict = {}
    else:
        options = {"isolation_level": "REPEATABLE READ"}
    try:
        with engine.connect().execution_options(**options) as conn, conn.begin() as tx:
            yield conn
            tx.rollback()
    finally:
        engine.dispose()


class SnapshotChunks:
    """What a lexical backend's `check` reads of the store (store/lexical_store.py), from
    one snapshot."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def chunk_stamp(self) -> tuple[int, int]:
        from ..store.metadata import chunk_stamp_of

        return chunk_stamp_of(self.conn)

    def text_chunk_count(self) -> int:
        return int(self.conn.execute(select(func.count()).where(Chunk.text != "")).scalar_one())

    def outbox_pending(self, space: str, after: int) -> int:
        from ..store import outbox

        return outbox.pending(self.conn, space, after)


class SnapshotVectors:
    """The three MetadataStore methods FaissVectorStore.catch_up uses, read from one snapshot."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def generation(self, space: str) -> int:
        row = self.conn.execute(select(Space.generation).where(Space.name == space)).first()
        return int(row[0]) if row else 0

    def vector_count(self, space: str) -> int:
        return int(self.conn.execute(select(func.count()).select_from(Embedding).where(
            Embedding.space == space)).scalar_one())

    def sample_vector_ids(self, space: str, n: int, runs: int = 100) -> np.ndarray:
        """Up to n chunk ids with a vector in `space`: `runs` runs of consecutive ids from
        random starting points. Index range scans only: sorting a 10^9-row table at
        random (ORDER BY random()) is the full scan this sample is there to avoid."""
        in_space = Embedding.space == space
        lo, hi = self.conn.execute(select(func.min(Embedding.chunk_id),
                                          func.max(Embedding.chunk_id)).where(in_space)).one()
        if lo is None:
            return np.zeros(0, dtype=np.int64)
        if int(hi) - int(lo) < n:  # every id fits in the sample
            return np.asarray(self.conn.execute(select(Embedding.chunk_id).where(
                in_space).order_by(Embedding.chunk_id)).scalars().all(), dtype=np.int64)
        rng = np.random.default_rng()
        per_run = max(1, -(-n // runs))
        found: set[int] = set()
        for start in rng.integers(int(lo), int(hi) + 1, size=min(runs, n)):
            found.update(self.conn.execute(
                select(Embedding.chunk_id).where(in_space, Embedding.chunk_id >= int(start))
                .order_by(Embedding.chunk_id).limit(per_run)).scalars())
        return np.asarray(sorted(found)[:n], dtype=np.int64)

    def outbox_pending(self, space: str, after: int | None) -> int:
        from ..store import outbox

        return outbox.pending(self.conn, space, after or 0)

    def vector_ids(self, space: str) -> np.ndarray:
        ids = self.conn.execute(
            select(Embedding.chunk_id).where(Embedding.space == space)).scalars().all()
        return np.asarray(ids, dtype=np.int64)

    def vectors(self, space: str, ids: Sequence[int] | None = None, dim: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        q = select(Embedding.chunk_id, Embedding.vector).where(Embedding.space == space)
        wanted = None if ids is None else {int(i) for i in ids}
        rows = self.conn.execute(q.order_by(Embedding.chunk_id))
        return matrix_of(((cid, blob) for cid, blob in rows
                          if wanted is None or cid in wanted), dim)
