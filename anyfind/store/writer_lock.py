"""One writer per index across machines: a lock held in the metadata database itself.

The index folder's flock (anyfind/lock.py) excludes writers on one machine through one
folder. A cluster index is reached through several folders (a writer's, each replica's
copy of config.json, another machine's): two of them syncing at once would insert the
same items (`uq_items_source_uri`) and interleave their outbox rows. So a writer of a
PostgreSQL-held index also takes a session-level advisory lock keyed by the index's
schema (one index per database or schema, store/ownership.py), on a connection of its
own that it keeps for as long as it writes. PostgreSQL drops the lock when that session
ends (the writer exits or dies, its machine goes away): like the flock, never stale.
The connection's application_name says who holds it, so the refusal can name them.

A SQLite store outside the index folder (`--store-url sqlite:////shared/meta.db`) is
reached the same way by several folders: its writer takes an flock on the database file
(SQLite's own locks are fcntl ones, independent of flock on Linux)."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import Protocol

from ..errors import IndexLocked
from ..secrets import mask_uri

# pg_try_advisory_lock(int4, int4): a class of its own for anyfind's writer lock, and the
# schema the index lives in (two indexes in two schemas of one database both write).
LOCK_CLASS = 0x616E79  # "any"
HOLDER_PREFIX = "anyfind writer"


class DatabaseLock(Protocol):
    def acquire(self) -> None: ...
    def release(self) -> None: ...


def holder_name(index_dir: Path) -> str:
    """What a holder says of itself: the machine, the process, the folder it writes from.
    PostgreSQL keeps at most 63 bytes of an application_name: the folder's tail goes."""
    return f"{HOLDER_PREFIX} {socket.gethostname()} pid {os.getpid()} {index_dir}"[:63]


class PostgresWriterLock:
    def __init__(self, url: str, index_dir: Path):
        self.url, self.index_dir = url, Path(index_dir)
        self._engine = None
        self._conn = None

    def acquire(self) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        # A connection of its own, never returned to a pool: the lock lives with it.
        from .db_errors import unreachable

        engine = create_engine(self.url, poolclass=NullPool, future=True)
        try:
            conn = engine.connect()
        except Exception as exc:
            engine.dispose()
            said = unreachable(exc, self.url)
            if said is None:
                raise
            raise said from None
        try:
            conn.execute(text("SELECT set_config('application_name', :name, false)"),
                         {"name": holder_name(self.index_dir)})
            got = conn.execute(text(
                "SELECT pg_try_advisory_lock(:cls, hashtext(current_schema()))"),
                {"cls": LOCK_CLASS}).scalar()
            conn.commit()
            if not got:
                holder = self._holder(conn)
                raise IndexLocked(
                    f"the index in {mask_uri(self.url)} is being written by another "
                    f"process ({holder}); one writer at a time for every folder of a "
                    "cluster index: wait for it to finish or stop it")
        except BaseException:
            conn.close()
            engine.dispose()
            raise
        self._engine, self._conn = engine, conn

    @staticmethod
    def _holder(conn) -> str:
        from sqlalchemy import text

        try:
            row = conn.execute(text(
                "SELECT a.application_name, a.client_addr::text FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.granted AND l.classid = :cls "
                "AND l.objid = hashtext(current_schema())::oid AND l.pid <> pg_backend_pid()"),
                {"cls": LOCK_CLASS}).first()
        except Exception:  # noqa: BLE001 (who holds it is for the message only)
            return "holder unknown"
        if row is None:
            return "holder unknown"
        name, addr = row
        name = (name or "").removeprefix(HOLDER_PREFIX).strip() or "another client"
        return f"{name}, connected from {addr}" if addr else name

    def release(self) -> None:
        conn, engine = self._conn, self._engine
        self._conn = self._engine = None
        if conn is None:
            return
        try:
            conn.close()  # the session ends: PostgreSQL drops its advisory locks
        finally:
            engine.dispose()


class SQLiteFileLock:
    def __init__(self, database: Path):
        self.database = Path(database)
        self._fd: int | None = None

    def acquire(self) -> None:
        # An empty file is an empty SQLite database: creating it here is what the store's
        # first open would do, and gives two first writers one file to contend for.
        fd = os.open(self.database, os.O_RDONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise IndexLocked(
                f"the index in {self.database} is being written by another process "
                "(through another index folder); wait for it to finish or stop it") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def database_lock(url: str, index_dir: Path) -> DatabaseLock | None:
    """The lock a writer of this store takes besides the folder's, or None where the
    folder's lock is enough (the store is the folder's own meta.db)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresWriterLock(url, index_dir)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        database = Path(parsed.database).resolve()
        if database.parent != Path(index_dir).resolve():
            return SQLiteFileLock(database)
    return None
