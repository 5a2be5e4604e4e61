"""The lexical (FTS5) index, when the store has one: `chunks_fts`, an external-content
table over `chunks` kept in step by triggers (migration v2). Checked with FTS5's own
integrity-check against its content table; repaired by rebuilding it from the chunks
(no model involved). PostgreSQL's lexical index is a generated column: nothing to check.
The backends in front of the store's (the tantivy cache, BM25 in Milvus) check themselves
against the chunks they should hold."""

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


def check_lexical_backends(conn: Connection, lexical, report: CheckReport) -> list:
    """Each lexical backend in front of the store's full text (the tantivy cache, a BM25
    service: `lexical.backends()` less the store's) against the snapshot's chunks, with
    its own `check` (store/lexical_store.py). Never an error: the store's full text
    answers for a derived cache meanwhile, and the next sync (or --repair) brings a
    backend up to date. Returns those `--repair` should compare whole."""
    from .snapshot import SnapshotChunks

    source = SnapshotChunks(conn)
    store = lexical.store_backend
    found = []
    for backend in lexical.backends():
        if backend is store:
            continue
        problem = backend.check(source)
        if problem is None:
            continue
        meanwhile = (f"; lexical searches use {store.describe()} until it is"
                     if backend.derived else "")
        report.add(backend.check_code, WARNING, f"the {backend.describe()} lexical index is "
                   f"not current ({problem}){meanwhile}", repair="compare it with the chunks")
        found.append(backend)
    return found
