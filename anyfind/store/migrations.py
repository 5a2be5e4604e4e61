"""Versioned schema migrations. Each step moves the store from version N-1 to N.

Add a step by appending a function; never edit a released one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select, text

from .schema import Base, Meta


def _v1_initial(conn: Connection) -> None:
    Base.metadata.create_all(conn)


MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial]
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
