"""The lexical (FTS5) index, when the store has one: `chunks_fts`, an external-content
table over `chunks` kept in step by triggers (migration v2). Checked with FTS5's own
integrity-check against its content table; repaired by rebuilding it from the chunks
(no model involved). PostgreSQL's lexical index is a generated column: nothing to check.
The tantivy cache beside a SQLite store is compared with the chunks it should hold."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from ..iofaults import storage_errno
from .report import ERROR, WARNING, CheckReport

TABLE = "chunks_fts"


def has_lexical(conn: Connection) -> bool:
    if conn.dialect.name != "sqlite":
        return False
    row = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n"),
                       {"n": TABLE}).first()
    return row is not None and "fts5" in (row[0] or "").lower()


def check_lexical(conn: Connection, engine: Engine, report: CheckReport) -> bool:
    """True when the lexical index needs a rebuild. `conn` is the checks' snapshot; FTS5's
    integrity-check is an INSERT, so it runs (and is rolled back) on its own connection."""
    if not has_lexical(conn):
        return False
    with engine.connect() as own:
        try:  # rank 1: also compare the index with its content table, the chunks
            own.execute(text(f'INSERT INTO "{TABLE}"("{TABLE}", rank) '
                             "VALUES ('integrity-check', 1)"))
            problem = None
        except Exception as exc:  # sqlite reports a damaged index as an error
            problem = " ".join(str(getattr(exc, "orig", exc)).split())[:200]
            if storage_errno(exc) is not None:
                # A read-only or full disk forbids the check (it is an INSERT), which
                # says nothing about the index itself: report it as not checked.
                own.rollback()
                report.add("lexical-index-unchecked", WARNING,
                           f"the lexical index could not be checked ({problem})")
                return False
        own.rollback()
    if problem:
        report.add("lexical-index", ERROR, f"the lexical index does not match the chunks "
                   f"({problem})", repair="rebuild it from the chunks")
    return problem is not None


def rebuild_lexical(conn: Connection) -> None:
    conn.execute(text(f'INSERT INTO "{TABLE}"("{TABLE}") VALUES (\'rebuild\')'))


def check_lexical_cache(conn: Connection, index_path, report: CheckReport) -> bool:
    """The tantivy cache beside a SQLite store (store/lexical_cache.py), when there is one:
    True when it is behind the snapshot's chunks or damaged. Never an error: searches use
    FTS5 meanwhile, and the next sync (or --repair) brings it up to date."""
    from ..store.lexical_cache import LexicalCache, available
    from ..store.reader import CHUNK_STAMP_SQL

    if conn.dialect.name != "sqlite" or not available():
        return False
    seq, rows = (conn.exec_driver_sql(sql).first() for sql in CHUNK_STAMP_SQL)
    count = int(rows[0])
    stamp = [int(seq[0]) if seq else 0, count]
    cache = LexicalCache(index_path)
    state = cache.state()
    problem = None
    if not cache.dir.exists():
        if not count:  # nothing indexed yet
            return False
        problem = "it is missing"
    elif state is None:
        problem = "it has no readable state"
    elif state.get("stamp") != stamp:
        problem = f"it holds the chunks as of {state.get('stamp')}, the store is at {stamp}"
    else:
        try:
            docs = cache.documents()
        except Exception as exc:  # noqa: BLE001 (tantivy's own error says what is damaged)
            problem = f"it cannot be read: {type(exc).__name__}: {exc}"
        else:
            if docs != count:
                problem = f"it holds {docs} chunks, the store {count}"
    if problem:
        report.add("lexical-cache", WARNING, f"the tantivy lexical cache is not current "
                   f"({problem}); lexical searches use FTS5 until it is",
                   repair="bring it up to date from the chunks")
    return problem is not None


def check_lexical_service(conn: Connection, service, report: CheckReport) -> bool:
    """A cluster index's BM25 collection (store/milvus_lexical.py) against the store: its
    count against the chunks with text, less the outbox rows still to apply. True when
    `--repair` should compare it whole."""
    from sqlalchemy import func, select

    from ..store import outbox
    from ..store.schema import Chunk

    if service is None or not service.exists():
        return False
    want = conn.execute(select(func.count()).where(Chunk.text != "")).scalar_one()
    have = service.count()
    pending = outbox.pending(conn, outbox.LEXICAL, service.mark or 0)
    report.stats["lexical_service"] = {"store": int(want), "service": have, "pending": pending}
    if have == want or pending:
        return False  # equal, or the next sync applies what differs
    report.add("lexical-service-mismatch", WARNING, f"the BM25 collection ({service.describe()}) "
               f"holds {have} chunks, the store {want} with text", abs(want - have),
               repair="compare it whole")
    return True
