"""Query terms highlighted in a passage, as [start, end) character spans.

Matching uses SQLite FTS5 itself (an in-memory table with the same tokenizer as the
lexical index: Unicode words, diacritics folded, Porter stems), so what is highlighted is
exactly what the lexical index would match: "running" for a query on "run", "Café" for
"cafe". This needs only the standard library, whatever database holds the index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..store.fts import fts5_match

# The tokenizer of the chunks_fts table, so highlights match what the lexical index matched.
_CREATE = ("CREATE VIRTUAL TABLE h USING fts5(t, "
           "tokenize='porter unicode61 remove_diacritics 2')")
_OPEN, _CLOSE = "\x01", "\x02"


class Highlighter:
    def __init__(self, terms: Sequence[str]):
        self.match = fts5_match(terms) if terms else ""
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(":memory:")
            self._conn.execute(_CREATE)
        return self._conn

    def spans(self, text: str) -> list[list[int]]:
        if not self.match or not text:
            return []
        db = self._db()
        # Marker characters in the text itself would be taken for highlights: blank them.
        clean = text.replace(_OPEN, " ").replace(_CLOSE, " ")
        db.execute("INSERT INTO h(rowid, t) VALUES (1, ?)", (clean,))
        try:
            row = db.execute("SELECT highlight(h, 0, ?, ?) FROM h WHERE h MATCH ?",
                             (_OPEN, _CLOSE, self.match)).fetchone()
        except sqlite3.Error:
            row = None
        finally:
            db.execute("DELETE FROM h")
        return _spans(row[0]) if row else []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _spans(marked: str) -> list[list[int]]:
    """Spans in the unmarked text from a text with open/close markers inserted."""
    spans: list[list[int]] = []
    pos, start = 0, None
    for ch in marked:
        if ch == _OPEN:
            start = pos
        elif ch == _CLOSE:
            if start is not None and pos > start:
                spans.append([start, pos])
            start = None
        else:
            pos += 1
    return spans
