"""Files of an index kept in its metadata store, for indexes whose store is a server
(PostgreSQL): the score calibration and the thumbnails. Any machine with the index config
then has them, so an `anyfind serve` replica needs no copy of the index folder; the folder
keeps copies as a cache, each with the stored copy's time as its mtime, so a newer one
(a sync refitted the calibration) replaces it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from pathlib import Path

from sqlalchemy import Engine, delete, insert, select

from ..fsutil import atomic_write_bytes
from .schema import IndexFile

log = logging.getLogger("anyfind.index")


class IndexFiles:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._polled: dict[str, float] = {}  # name -> when `follow` last compared it

    def follow(self, name: str, target: Path, every: float = 30.0) -> None:
        """Keep the cached copy `target` current with the stored one, comparing at most
        every `every` seconds (a replica sees its writer's new calibration within that).
        A store that does not answer leaves the cached copy as it is, with a warning."""
        now = time.monotonic()
        if now < self._polled.get(name, -math.inf) + every:
            return
        self._polled[name] = now
        try:
            self.fetch(name, target, if_newer=True)
        except Exception as exc:  # noqa: BLE001 (the cached copy answers meanwhile)
            from ..errors import one_line

            log.warning("%s in the store was not read: %s", name, one_line(exc))

    def put(self, name: str, content: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(IndexFile).where(IndexFile.name == name))
            conn.execute(insert(IndexFile).values(name=name, content=content,
                                                  updated_at=time.time()))

    def stamp(self, name: str) -> float | None:
        with self.engine.connect() as conn:
            return conn.execute(select(IndexFile.updated_at)
                                .where(IndexFile.name == name)).scalar()

    def get(self, name: str) -> tuple[bytes, float] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(IndexFile.content, IndexFile.updated_at)
                               .where(IndexFile.name == name)).first()
        return (bytes(row[0]), float(row[1])) if row else None

    def fetch(self, name: str, target: Path, *, if_newer: bool = False) -> bool:
        """Write the stored copy to `target` (a cache); if_newer: only when the stored
        copy is newer than the cached one. True when `target` was written."""
        if if_newer:
            stamp = self.stamp(name)
            try:
                cached = target.stat().st_mtime
            except OSError:
                cached = None
            if stamp is None or (cached is not None and cached >= stamp):
                return False
        found = self.get(name)
        if found is None:
            return False
        content, stamp = found
        with contextlib.suppress(OSError):  # a cache that cannot be written: read again later
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, content)
            os.utime(target, (stamp, stamp))
            return True
        return False
