"""Query terms highlighted in a passage, as [start, end) character spans.

Matching uses SQLite FTS5 itself (an in-memory table with the same tokenizer as the
lexical index: Unicode words, diacritics folded, Porter stems), so what is highlighted is
exactly what the lexical index would match: "running" for a query on "run", "Café" for
"cafe". This needs only the standard library, whatever database holds the index.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

from ..store.fts import fts5_match

# The tokenizer of the chunks_fts table, so highlights match what the lexical index matched.
_CREATE = ("CREATE VIRTUAL TABLE h USING fts5(t, "
           "tokenize='porter unicode61 remove_diacritics 2')")
_OPEN, _CLOSE = "\x01", "\x02"


_local = threading.local()  # one in-memory table per thread, emptied after each use


class Highlighter:
    def __init__(self, terms: Sequence[str]):
        self.match = fts5_match(terms) if terms else ""

    @staticmethod
    def _db() -> sqlite3.Connection:
        conn = getattr(_local, "conn", None)
        if conn is None:  # connecting and creating the table cost ~2 ms: once per thread
            conn = _local.conn = sqlite3.connect(":memory:")
            conn.execute(_CREATE)
        return conn

    def spans(self, text: str) -> list[list[int]]:
        return self.spans_of([text])[0]

    def spans_of(self, texts: Sequence[str]) -> list[list[list[int]]]:
        """Spans of each text, in three statements whatever their number (a result page
        costs one round trip, not three per result)."""
        out: list[list[list[int]]] = [[] for _ in texts]
        todo = [(i + 1, t) for i, t in enumerate(texts) if t]
        if not self.match or not todo:
            return out
        db = self._db()
        try:  # the table is emptied whatever happens: the thread's next page starts clean
            # Marker characters in the text itself would be taken for highlights: blank them.
            db.executemany("INSERT INTO h(rowid, t) VALUES (?, ?)",
                           [(rowid, t.replace(_OPEN, " ").replace(_CLOSE, " "))
                            for rowid, t in todo])
            rows = db.execute("SELECT rowid, highlight(h, 0, ?, ?) FROM h WHERE h MATCH ?",
                              (_OPEN, _CLOSE, self.match)).fetchall()
        except sqlite3.Error:
            rows = []
        finally:
            db.execute("DELETE FROM h")
        for rowid, marked in rows:
            out[rowid - 1] = _spans(marked)
        return out

    def close(self) -> None:
        """Nothing to release: the table is per thread and left empty."""


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
