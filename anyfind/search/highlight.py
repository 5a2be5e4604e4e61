"""Query terms highlighted in a passage, as [start, end) character spans.

Matching uses SQLite FTS5 itself (an in-memory table with the same tokenizer as the
lexical index: Unicode words, diacritics folded, Porter stems), so what is highlighted is
what the lexical index would match: "running" for a query on "run", "Café" for "cafe".
This needs only the standard library, whatever database holds the index. When tantivy is
installed, the words its analyser (the lexical cache's: Porter2 stems) matches are added:
"dying" for "die", which Porter stems differently.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

from ..store.fts import fts5_match
from .terms import word_spans

# The tokenizer of the chunks_fts table, so highlights match what the lexical index matched.
_CREATE = ("CREATE VIRTUAL TABLE h USING fts5(t, "
           "tokenize='porter unicode61 remove_diacritics 2')")
_OPEN, _CLOSE = "\x01", "\x02"


_local = threading.local()  # one in-memory table per thread, emptied after each use


class Highlighter:
    def __init__(self, terms: Sequence[str]):
        self.terms = list(terms)
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
        extra = _cache_spans(self.terms, [t for _, t in todo])
        if extra is not None:
            for (rowid, _), spans in zip(todo, extra, strict=True):
                if spans:
                    out[rowid - 1] = _merge(out[rowid - 1], spans)
        return out

    def close(self) -> None:
        """Nothing to release: the table is per thread and left empty."""


def _cache_spans(terms: Sequence[str], texts: Sequence[str]
                 ) -> list[list[list[int]]] | None:
    """Spans of the words the lexical cache's analyser matches to a term (None: no tantivy)."""
    try:
        from ..store.lexical_cache import stems_of
        want = {s for t in terms for s in stems_of(t)}
    except ImportError:
        return None
    words = [word_spans(text) for text in texts]
    matched = {w for w in {w for spans in words for _, _, w in spans}
               if not want.isdisjoint(stems_of(w))}
    return [[[a, b] for a, b, w in spans if w in matched] for spans in words]


def _merge(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    """The union of two span lists, sorted, overlapping spans joined."""
    out: list[list[int]] = []
    for start, end in sorted(a + b):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


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
