"""A read-only view of a SQLite store through the standard library's sqlite3.

A search needs a handful of reads: the store generation and vectors of a space (to
check or catch up a FAISS file), the rows of the chunks it returns, the FTS5 lexical
query and the source names. Importing SQLAlchemy and building its engine and ORM
models costs a cold `anyfind search` a few hundred milliseconds, so those reads go
through plain sqlite3 when the store is a SQLite file at the current schema version.

Everything else keeps using the MetadataStore (SQLAlchemy): writes, filters (SQL built from
the filter syntax), PostgreSQL and other URLs, and a store at another schema version
(an older one is migrated by the MetadataStore, a newer one refused there with one sentence).
The SQL here mirrors MetadataStore and FullTextSQL; tests compare their answers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import numpy as np

from .fts import fts5_match, fts5_reference
from .held import STORED_SQL, matrix_of

# migrations.LATEST without importing SQLAlchemy; tests/store/test_coldpath_store.py keeps
# them equal.
STORE_SCHEMA = 7

_ROW_SQL = (
    "SELECT c.id AS chunk_id, c.item_id, c.ordinal, c.modality AS chunk_modality, c.text, "
    "c.char_start, c.char_end, c.page, c.start_s, c.end_s, i.uri, i.path, i.modality, "
    "i.media_type, i.title, i.meta, i.size, i.mtime, s.name AS source, i.parent_id, "
    "p.path AS parent_path "
    "FROM chunks AS c JOIN items AS i ON i.id = c.item_id "
    "JOIN sources AS s ON s.id = i.source_id LEFT OUTER JOIN items AS p ON p.id = i.parent_id "
    "WHERE c.id IN (SELECT value FROM json_each(?))"
)
# A page's relations (vault links, both ways) and the passages of the notes around them.
_RELATIONS_SQL = (
    "SELECT r.from_item, r.to_item, r.kind, r.target, r.position, r.heading, "
    "f.path AS from_path, f.title AS from_title, t.path AS to_path FROM relations r "
    "JOIN items f ON f.id = r.from_item LEFT JOIN items t ON t.id = r.to_item "
    "WHERE r.to_item IN (SELECT value FROM json_each(?)) "
    "OR r.from_item IN (SELECT value FROM json_each(?)) "
    "ORDER BY r.from_item, r.position LIMIT 2000"
)
# The images embedded in these note chunks (the embed's offset inside the chunk's span),
# each with its first chunk: search/embed_context.py lends them the passage's relevance.
_EMBEDS_SQL = (
    "SELECT c.id, r.to_item, (SELECT x.id FROM chunks x WHERE x.item_id = r.to_item "
    "ORDER BY x.ordinal LIMIT 1) FROM chunks c JOIN relations r ON r.from_item = c.item_id "
    "JOIN items t ON t.id = r.to_item WHERE c.id IN (SELECT value FROM json_each(?)) "
    "AND r.kind = 'embed' AND t.modality = 'image' AND r.to_item <> c.item_id "
    "AND r.position >= c.char_start AND r.position < c.char_end LIMIT 5000"
)
_NOTE_CHUNKS_SQL = ("SELECT item_id, char_start, char_end, text FROM chunks WHERE item_id IN "
                    "(SELECT value FROM json_each(?)) AND char_start IS NOT NULL")
# bm25() is lower-is-better; negated so that every signal is higher-is-better.
_FTS_SQL = ("SELECT rowid, -bm25(chunks_fts) AS score FROM chunks_fts "
            "WHERE chunks_fts MATCH ? ORDER BY score DESC, rowid LIMIT ?")
# The chunks' stamp (see chunk_stamp): its AUTOINCREMENT high-water mark, its row count.
CHUNK_STAMP_SQL = ("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'",
                   "SELECT count(*) FROM chunks")
# What a chunk is by content (chunk_content_keys): cheap to read for every chunk, the
# same in every build of one corpus whatever ids its chunks got.
CONTENT_KEY_CHARS = 160
CONTENT_KEY_SQL = ("SELECT id, modality, ordinal, length(text), substr(text, 1, "
                   f"{CONTENT_KEY_CHARS}) FROM chunks")


def content_key(modality: str | None, ordinal: int | None, length: int | None,
                opening: str | None) -> str:
    return f"{modality or ''}|{ordinal or 0}|{length or 0}|{opening or ''}"


# A list of ids is ONE bound parameter, a JSON array read by json_each: no SQL is ever
# built from values, and no limit on the number of bound parameters.
_IDS = "(SELECT value FROM json_each(?))"


@runtime_checkable
class SearchReads(Protocol):
    """What a search reads of the metadata store, whichever answers: the sqlite3
    `SQLiteReader` below (a SQLite file at the current schema) or the MetadataStore
    itself (any other database). Both implement it with the same answers
    (tests/store/test_coldpath_store.py); `OpenIndex.reader` is one of them."""

    dialect: str
    lexical: Any  # the store's full-text queries: FTS5 here, FullTextSQL in the MetadataStore

    def generation(self, space: str) -> int: ...

    def vector_ids(self, space: str) -> np.ndarray: ...

    def vectors(self, space: str, ids: Sequence[int] | None = None, dim: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]: ...

    def chunk_stamp(self) -> tuple[int, int]: ...

    def chunk_ids(self) -> np.ndarray: ...

    def chunk_content_keys(self) -> list[tuple[int, str]]: ...

    def chunk_texts(self, chunk_ids: Sequence[int]) -> list[tuple[int, str | None]]: ...

    def chunk_facts(self, chunk_ids: Sequence[int]) -> dict[int, tuple[int, str, str]]: ...

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]: ...

    def relations_of(self, item_ids: Sequence[int]) -> list[dict[str, Any]]: ...

    def embeds_in(self, chunk_ids: Sequence[int]) -> list[tuple[int, int, int]]: ...

    def sources(self) -> list[dict[str, Any]]: ...


def _ids(ids: Sequence[int]) -> str:
    return json.dumps([int(i) for i in ids])


def sqlite_path(url: str) -> Path | None:
    """The file of a plain `sqlite:///FILE` URL (no driver, no query string), else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or len(url) == len(prefix):
        return None
    return Path(url[len(prefix):])


class Fts5Reader:
    """FTS5 BM25 search, the same query as store.fulltext_sql.FullTextSQL on SQLite."""

    def __init__(self, reader: SQLiteReader):
        self._reader = reader

    def search(self, terms: Sequence[str], depth: int, allowed: Any = None
               ) -> list[tuple[int, float]]:
        if allowed is not None:  # filters are SQLAlchemy selects: the MetadataStore answers those
            raise ValueError("the sqlite3 reader does not take filters")
        if not terms or depth <= 0:
            return []
        rows = self._reader.query(_FTS_SQL, (fts5_match(terms), depth))
        return [(int(cid), float(score)) for cid, score in rows]

    def reference(self, terms: Sequence[str]) -> float:
        return fts5_reference(self._reader.query, terms)


class SQLiteReader:
    """Read-only sqlite3 connections (one per thread) to a store file."""

    dialect = "sqlite"

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.lexical = Fts5Reader(self)

    @classmethod
    def open(cls, url: str) -> SQLiteReader | None:
        """A reader when `url` is a SQLite file at the current schema, else None."""
        path = sqlite_path(url)
        if path is None or not path.is_file():
            return None
        reader = cls(path)
        try:
            version = reader.schema_version()
        except sqlite3.Error:
            reader.close()
            return None
        if version != STORE_SCHEMA:
            reader.close()
            return None
        return reader

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # mode=ro: this process can never write through it, whatever runs later.
            conn = sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._conn().execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- what a search reads ----------------------------------------------------------------
    def schema_version(self) -> int:
        if not self.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"):
            return 0
        row = self.query("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(row[0][0]) if row else 0

    def meta_value(self, key: str) -> str | None:
        row = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0][0] if row else None

    def generation(self, space: str) -> int:
        row = self.query("SELECT generation FROM spaces WHERE name = ?", (space,))
        return int(row[0][0]) if row else 0

    def vector_ids(self, space: str) -> np.ndarray:
        rows = self.query("SELECT chunk_id FROM embeddings WHERE space = ?", (space,))
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def vectors(self, space: str, ids: Sequence[int] | None = None, dim: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of a space, all of it or the given chunk ids (as MetadataStore.vectors:
        not those only the vector service holds, whose blob is empty)."""
        if ids is None:
            rows = self.query("SELECT chunk_id, vector FROM embeddings WHERE space = ? "
                              f"AND {STORED_SQL} ORDER BY chunk_id", (space,))
        else:
            rows = self.query("SELECT chunk_id, vector FROM embeddings WHERE space = ? AND "
                              f"chunk_id IN {_IDS} AND {STORED_SQL} ORDER BY chunk_id",
                              (space, _ids(ids)))
        return matrix_of(rows, dim)

    def chunk_stamp(self) -> tuple[int, int]:
        """(the chunks' AUTOINCREMENT high-water mark, how many there are): any change to
        the set of chunks changes it (ids are never reused; see store/lexical_cache.py)."""
        seq, count = (self.query(sql) for sql in CHUNK_STAMP_SQL)
        return (int(seq[0][0]) if seq else 0), int(count[0][0])

    def chunk_ids(self) -> np.ndarray:
        rows = self.query("SELECT id FROM chunks ORDER BY id")
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def chunk_content_keys(self) -> list[tuple[int, str]]:
        """(chunk id, what the chunk is by content: its modality, place in its item, length
        and opening words), for every chunk: the same in every build of one corpus,
        whatever ids the chunks got (see core/calibration.py)."""
        rows = self.query(CONTENT_KEY_SQL)
        return [(int(c), content_key(*rest)) for c, *rest in rows]

    def chunk_texts(self, chunk_ids: Sequence[int]) -> list[tuple[int, str | None]]:
        return self.query(f"SELECT id, text FROM chunks WHERE id IN {_IDS}", (_ids(chunk_ids),))

    def chunk_facts(self, chunk_ids: Sequence[int]) -> dict[int, tuple[int, str, str]]:
        """chunk id -> (item id, chunk modality, item modality), for the chunks that exist."""
        rows = self.query("SELECT c.id, c.item_id, c.modality, i.modality FROM chunks c JOIN "
                          f"items i ON i.id = c.item_id WHERE c.id IN {_IDS}", (_ids(chunk_ids),))
        return {int(c): (int(i), m, im) for c, i, m, im in rows}

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Chunks with their item and source, by chunk id (as MetadataStore.chunk_rows)."""
        out: dict[int, dict[str, Any]] = {}
        ids = [int(i) for i in chunk_ids]
        cur = self._conn().execute(_ROW_SQL, (_ids(ids),))
        names = [d[0] for d in cur.description]
        for values in cur.fetchall():
            row = dict(zip(names, values, strict=True))
            row["meta"] = json.loads(row["meta"]) if row["meta"] is not None else None
            out[row["chunk_id"]] = row
        return out

    def relations_of(self, item_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The links and embeds to and from these items (as MetadataStore.relations_of)."""
        ids = [int(i) for i in item_ids]
        if not ids:
            return []
        cur = self._conn().execute(_RELATIONS_SQL, (_ids(ids), _ids(ids)))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, v, strict=True)) for v in cur.fetchall()]
        notes = sorted({r["from_item"] for r in rows if r["to_item"] in ids})
        chunks = self.query(_NOTE_CHUNKS_SQL, (_ids(notes),)) if notes else []
        for r in rows:
            r["passage"] = next((passage_around(text or "", r["position"] - start)
                                 for item_id, start, end, text in chunks
                                 if item_id == r["from_item"] and start <= r["position"] < end),
                                "")
        return rows

    def embeds_in(self, chunk_ids: Sequence[int]) -> list[tuple[int, int, int]]:
        """(note chunk id, image item id, image chunk id) of the images embedded in these
        chunks of notes (as MetadataStore.embeds_in)."""
        rows = self.query(_EMBEDS_SQL, (_ids(chunk_ids),)) if chunk_ids else []
        return [(int(c), int(i), int(x)) for c, i, x in rows if x is not None]

    def sources(self) -> list[dict[str, Any]]:
        """Every source with its item count, by name (as MetadataStore.sources)."""
        counts = dict(self.query("SELECT source_id, count(*) FROM items GROUP BY source_id"))
        conn = self._conn()
        cur = conn.execute("SELECT * FROM sources ORDER BY name")
        names = [d[0] for d in cur.description]
        out = []
        for values in cur.fetchall():
            row = dict(zip(names, values, strict=True))
            for key in ("options", "state"):
                row[key] = json.loads(row[key]) if row[key] is not None else None
            row["items"] = counts.get(row["id"], 0)
            out.append(row)
        return out


def passage_around(text: str, at: int, width: int = 160) -> str:
    """About `width` characters of `text` around offset `at`, cut at spaces."""
    lo, hi = max(0, at - width // 2), min(len(text), at + width // 2)
    if lo > 0:
        lo = text.find(" ", lo, at) + 1 or lo
    if hi < len(text):
        hi = text.rfind(" ", at, hi) if text.rfind(" ", at, hi) > at else hi
    return ("..." if lo > 0 else "") + " ".join(text[lo:hi].split()) + (
        "..." if hi < len(text) else "")
