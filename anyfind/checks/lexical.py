"""The lexical (FTS5) index, when the store has one: a `chunks_fts` table whose rowids are
chunk ids. Checked with FTS5's own integrity-check and against the chunks table;
repaired by rebuilding it from the chunks (no model involved)."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from .report import ERROR, CheckReport

TABLE = "chunks_fts"


def has_lexical(conn: Connection) -> bool:
    if conn.dialect.name != "sqlite":
        return False
    row = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n"),
                       {"n": TABLE}).first()
    return row is not None and "fts5" in (row[0] or "").lower()


def _external_content(conn: Connection) -> bool:
    sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": TABLE}
                       ).scalar_one()
    return "content=" in sql.replace(" ", "").lower() and "content=''" not in sql.replace(
        " ", "").lower()


def check_lexical(conn: Connection, engine: Engine, report: CheckReport) -> bool:
    """True when the lexical index needs a rebuild. `conn` is the checks' snapshot; FTS5's
    integrity-check is an INSERT, so it runs (and is rolled back) on its own connection."""
    if not has_lexical(conn):
        return False
    problems = []
    with engine.connect() as own:
        try:  # rank 1: also compare an external-content index with its content table
            own.execute(text(f'INSERT INTO "{TABLE}"("{TABLE}", rank) '
                             "VALUES ('integrity-check', 1)"))
        except Exception as exc:  # sqlite reports a damaged index as an error
            problems.append(f"FTS5 integrity-check: {' '.join(str(exc).split())[:200]}")
        own.rollback()
    if not _external_content(conn):
        extra = conn.execute(text(f'SELECT count(*) FROM "{TABLE}" WHERE rowid NOT IN '
                                  "(SELECT id FROM chunks)")).scalar_one()
        missing = conn.execute(text(f'SELECT count(*) FROM chunks WHERE id NOT IN '
                                    f'(SELECT rowid FROM "{TABLE}")')).scalar_one()
        if extra or missing:
            problems.append(f"{missing} chunks missing from it, {extra} rows of deleted chunks")
    if problems:
        report.add("lexical-index", ERROR, "the lexical index does not match the chunks: "
                   + "; ".join(problems), repair="rebuild it from the chunks")
    return bool(problems)


def rebuild_lexical(conn: Connection) -> None:
    if _external_content(conn):
        conn.execute(text(f'INSERT INTO "{TABLE}"("{TABLE}") VALUES (\'rebuild\')'))
        return
    columns = [r[1] for r in conn.execute(text(f'PRAGMA table_info("{TABLE}")'))]
    conn.execute(text(f'DELETE FROM "{TABLE}"'))
    if "text" in columns:
        conn.execute(text(f'INSERT INTO "{TABLE}"(rowid, "text") SELECT id, "text" FROM chunks'))
