"""Text spliced into SQL patterns, escaped once for every query that builds one."""

from __future__ import annotations


def like_escape(text: str) -> str:
    """A literal for LIKE ... ESCAPE '\\': % and _ (and the backslash) are characters,
    not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fold_like_python(dbapi_conn) -> None:
    """SQLite's lower() folds ASCII only: "ÄRGER.TXT" stayed upper-case and `path:ärger*`
    found nothing where Milvus (whose fields Python lower-cases) found it. On anyfind's
    SQLite connections it is Python's str.lower, as the filters' values are folded."""
    dbapi_conn.create_function("lower", 1, _fold, deterministic=True)


def _fold(value):
    return value.lower() if isinstance(value, str) else value
