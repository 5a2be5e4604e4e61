"""Opening a SQLite store that cannot be written: a full disk, a read-only file system,
a directory the user may not write.

A WAL database normally needs its -shm (and -wal) file beside it, created on open; when
that fails the index would not even be searchable. Searching needs no writes, so the
store is then opened read-only: first as a plain read-only connection (which works when
the -shm and -wal files are still there), else as an immutable file (when they are not,
the database file alone holds every committed transaction). Writes then fail, and the
write lock reports why in one sentence.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from .sqltext import fold_like_python


def sqlite_file(url: str) -> Path | None:
    """The database file of a sqlite:/// URL, if it is one that exists."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = Path(parsed.database)
    return path if path.is_file() else None


def _connect_args(dbapi_conn, _record) -> None:
    fold_like_python(dbapi_conn)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def read_only_engine(url: str) -> Engine | None:
    """A working read-only engine on the store at `url`, or None if there is none."""
    path = sqlite_file(url)
    if path is None:
        return None
    for options in ("mode=ro", "mode=ro&immutable=1"):
        engine = create_engine(f"sqlite:///file:{quote(str(path))}?{options}&uri=true",
                               future=True)
        event.listen(engine, "connect", _connect_args)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT count(*) FROM sqlite_master")).scalar_one()
        except Exception:
            engine.dispose()
            continue
        return engine
    return None
