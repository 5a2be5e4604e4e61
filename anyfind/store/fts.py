"""The FTS5 query of a list of terms, shared by the lexical index, the sqlite3 reader
and highlighting (no SQLAlchemy here: the cold search path imports it)."""

from __future__ import annotations

from collections.abc import Sequence


def fts5_match(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression: any of the terms, each a quoted string."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
