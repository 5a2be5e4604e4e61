"""The FTS5 query of a list of terms, shared by the lexical index, the sqlite3 reader
and highlighting (no SQLAlchemy here: the cold search path imports it)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def fts5_match(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression: any of the terms, each a quoted string."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def fts5_reference(query, terms: Sequence[str]) -> float:
    """FTS5's bm25() of an average-length chunk holding each term once: the sum of the
    terms' idfs as FTS5 computes them (log((N - n + 0.5) / (n + 0.5)), at least 1e-6),
    one per term of the MATCH expression (repeats included). `query(sql, params)`
    returns rows."""
    n = int(query("SELECT count(*) FROM chunks", ())[0][0])
    df: dict[str, int] = {}
    total = 0.0
    for t in terms:
        if t not in df:
            df[t] = int(query("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                              (fts5_match([t]),))[0][0])
        idf = math.log((n - df[t] + 0.5) / (df[t] + 0.5)) if n else 0.0
        total += max(idf, 1e-6)
    return total
