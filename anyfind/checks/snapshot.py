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

from ..store.schema import Embedding, Space


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


class SnapshotVectors:
    """The three Store methods VectorIndex.catch_up uses, read from one snapshot."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def generation(self, space: str) -> int:
        row = self.conn.execute(select(Space.generation).where(Space.name == space)).first()
        return int(row[0]) if row else 0

    def vector_count(self, space: str) -> int:
        return int(self.conn.execute(select(func.count()).select_from(Embedding).where(
            Embedding.space == space)).scalar_one())

    def sample_vector_ids(self, space: str, n: int) -> np.ndarray:
        """Up to n chunk ids with a vector in `space`, drawn at random by the database."""
        ids = self.conn.execute(select(Embedding.chunk_id).where(Embedding.space == space)
                                .order_by(func.random()).limit(n)).scalars().all()
        return np.asarray(ids, dtype=np.int64)

    def vector_ids(self, space: str) -> np.ndarray:
        ids = self.conn.execute(
            select(Embedding.chunk_id).where(Embedding.space == space)).scalars().all()
        return np.asarray(ids, dtype=np.int64)

    def vectors(self, space: str, ids: Sequence[int] | None = None, dim: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        q = select(Embedding.chunk_id, Embedding.vector).where(Embedding.space == space)
        wanted = None if ids is None else {int(i) for i in ids}
        out_ids, blobs = [], []
        for cid, blob in self.conn.execute(q.order_by(Embedding.chunk_id)):
            if wanted is None or cid in wanted:
                out_ids.append(cid)
                blobs.append(blob)
        if not blobs:
            return np.zeros(0, dtype=np.int64), np.zeros((0, dim or 0), dtype=np.float32)
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
        return np.asarray(out_ids, dtype=np.int64), matrix
