"""Versioned schema migrations. Each step moves the store from version N-1 to N.

Add a step by appending a function; never edit a released one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select, text

from .schema import Base, Meta


def _v1_initial(conn: Connection) -> None:
    Base.metadata.create_all(conn)


def _v2_lexical(conn: Connection) -> None:
    """Full-text index of every chunk's text, kept in step by the database itself.

    SQLite: an external-content FTS5 table over chunks (BM25, Porter stemming) maintained
    by triggers, so every insert and delete of a chunk updates it in the same transaction.
    PostgreSQL: a generated tsvector column with a GIN index. Other databases: none
    (lexical search is then unavailable)."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        for sql in (
            "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', "
            "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
            "CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN "
            "INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END",
            "CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN "
            "INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); "
            "END",
            "CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN "
            "INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); "
            "INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END",
            "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')",  # back-fill
        ):
            conn.exec_driver_sql(sql)
    elif dialect == "postgresql":
        conn.exec_driver_sql(
            "ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS "
            "(to_tsvector('english'::regconfig, coalesce(text, ''))) STORED")
        conn.exec_driver_sql("CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)")


def _v3_parent(conn: Connection) -> None:
    """items.parent_id: an item found inside another (an e-mail's attachments).

    A store created at v3 or later already has it (v1 creates the current tables). E-mails
    indexed before had their attachments' text folded in: they are marked changed, so the
    next sync reads them again and gives them their attachments as child items."""
    from sqlalchemy import inspect

    if any(c["name"] == "parent_id" for c in inspect(conn).get_columns("items")):
        return
    conn.exec_driver_sql("ALTER TABLE items ADD COLUMN parent_id INTEGER "
                         "REFERENCES items(id) ON DELETE CASCADE")
    conn.exec_driver_sql("CREATE INDEX ix_items_parent ON items (parent_id)")
    conn.execute(text("UPDATE items SET fingerprint = '', content_hash = NULL "
                      "WHERE media_type = 'message/rfc822'"))


def _v4_vector_outbox(conn: Connection) -> None:
    """vector_outbox: the changes a vector service (Milvus) applies, so that catching it
    up never diffs whole id sets (store/outbox.py). Empty unless the index turns it on."""
    from .schema import VectorOutbox

    VectorOutbox.__table__.create(conn, checkfirst=True)


def _v5_index_files(conn: Connection) -> None:
    """index_files: files of the index (calibration, thumbnails) kept in a server store,
    so that a machine with only the index config has them (store/index_files.py)."""
    from .schema import IndexFile

    IndexFile.__table__.create(conn, checkfirst=True)


def _v6_outbox_origin(conn: Connection) -> None:
    """vector_outbox.origin: a copied chunk's vector held by the service under another
    chunk id, once the store no longer keeps vectors the service has (store/outbox.py)."""
    from sqlalchemy import inspect

    if any(c["name"] == "origin" for c in inspect(conn).get_columns("vector_outbox")):
        return  # created at v4 from the current table
    conn.exec_driver_sql("ALTER TABLE vector_outbox ADD COLUMN origin BIGINT")


def _v7_relations(conn: Connection) -> None:
    """relations: a note's links and embeds (vaults). Notes indexed before are marked
    changed, so the next sync reads their links."""
    from .schema import Relation

    Relation.__table__.create(conn, checkfirst=True)
    conn.exec_driver_sql("UPDATE items SET fingerprint = '', content_hash = NULL "
                         "WHERE media_type = 'text/markdown'")


MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial, _v2_lexical, _v3_parent,
                                                  _v4_vector_outbox, _v5_index_files,
                                                  _v6_outbox_origin, _v7_relations]
LATEST = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "meta"):
        return 0
    row = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).first()
    return int(row[0]) if row else 0


def migrate(conn: Connection) -> int:
    """Bring the schema up to LATEST inside the caller's transaction; returns the version."""
    version = current_version(conn)
    if version > LATEST:
        from ..errors import ConfigError

        raise ConfigError(f"metadata schema v{version} is newer than this anyfind (v{LATEST})")
    for step in range(version, LATEST):
        MIGRATIONS[step](conn)
        conn.execute(text("DELETE FROM meta WHERE key = 'schema_version'"))
        conn.execute(
            Meta.__table__.insert().values(key="schema_version", value=str(step + 1))
        )
    return LATEST
