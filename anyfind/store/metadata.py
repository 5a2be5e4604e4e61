"""The metadata store: sources, items, chunks and their vectors, behind SQLAlchemy 2.

SQLite (WAL) inside the index directory by default; any SQLAlchemy URL works.
Every write that changes an item happens in one transaction together with its chunks
and vectors, so a crash leaves either the old item or the new one, never half.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (
    Engine,
    Select,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import aliased

from ..crashpoints import crash_point
from . import outbox
from .fulltext_sql import FullTextSQL
from .held import HELD, is_held, matrix_of
from .migrations import migrate
from .outbox import HeldVector, VectorChanges
from .reader import CONTENT_KEY_CHARS, content_key, passage_around
from .schema import Chunk, Embedding, Item, Relation, Source, Space, VectorOutbox
from .sqltext import fold_like_python, like_escape

Parent = aliased(Item, name="parent")


@dataclass
class ChunkRecord:
    """A chunk ready to be written, with its vectors per space."""

    ordinal: int
    modality: str
    text: str = ""
    char_start: int | None = None
    char_end: int | None = None
    page: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    # per space; a HeldVector when copied from a chunk whose vector the service holds
    vectors: dict[str, np.ndarray | HeldVector] | None = None


@dataclass
class ItemRecord:
    source_id: int
    uri: str
    path: str
    modality: str | None
    media_type: str | None
    size: int | None
    mtime: float | None
    fingerprint: str
    content_hash: str | None
    status: str = "ok"
    error: str | None = None
    title: str | None = None
    meta: dict[str, Any] | None = None
    parent_id: int | None = None  # set by write_items for an entry's children


@dataclass
class NewChild:
    """An item found inside a new item (an e-mail's attachment), written with it."""

    record: ItemRecord
    chunks: Sequence[ChunkRecord]
    children: Sequence[NewChild] = ()




def _rebase(value: str, old: str, new: str) -> str:
    """A child's URI or path under its parent's new one."""
    return new + value[len(old):] if value.startswith(old) else value


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    fold_like_python(dbapi_conn)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    # A server database (PostgreSQL) may restart under a long-lived index: a pooled
    # connection is pinged before use, so a dead one is replaced instead of failing the
    # next write (tests/cluster/test_service_faults.py). SQLite has no server to lose.
    engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def mark_changed(conn, item_ids: Iterable[int]) -> int:
    """Make these items, and the items above them, look changed to the next sync (a
    cleared fingerprint and hash: it reads and encodes them again; an attachment is
    re-read through its e-mail); how many were marked."""
    items = {int(i) for i in item_ids}
    items |= ancestors(conn, items)
    ordered = sorted(items)
    for i in range(0, len(ordered), 500):
        conn.execute(update(Item).where(Item.id.in_(ordered[i : i + 500]))
                     .values(fingerprint="", content_hash=None))
    return len(items)


def ancestors(conn, ids: set[int]) -> set[int]:
    """The items above these (an attachment's e-mail, and that e-mail's, ...)."""
    found: set[int] = set()
    frontier = set(ids)
    while frontier:
        up: set[int] = set()
        ordered = sorted(frontier)
        for i in range(0, len(ordered), 500):
            up |= set(conn.execute(select(Item.parent_id).where(
                Item.id.in_(ordered[i : i + 500]), Item.parent_id.is_not(None))).scalars())
        frontier = up - found - ids
        found |= frontier
    return found


def _vector_row(chunk_id: int, space: str, vec, changes: VectorChanges) -> dict[str, Any]:
    """An embeddings row, its change noted: a held vector (a copy of one the vector
    service has) is held again, under the new chunk, with where the service has it."""
    if isinstance(vec, HeldVector):
        changes.upserted(space, chunk_id, origin=vec.chunk_id)
        return {"chunk_id": chunk_id, "space": space, "vector": HELD}
    changes.upserted(space, chunk_id)
    return {"chunk_id": chunk_id, "space": space,
            "vector": np.asarray(vec, dtype=np.float32).tobytes()}


def chunk_stamp_of(conn) -> tuple[int, int]:
    """`MetadataStore.chunk_stamp` on a connection (checks read it from their snapshot)."""
    if conn.dialect.name == "sqlite":
        from .reader import CHUNK_STAMP_SQL

        seq, rows = (conn.exec_driver_sql(sql).first() for sql in CHUNK_STAMP_SQL)
        return int(seq[0]) if seq else 0, int(rows[0])
    top, count = conn.execute(select(func.max(Chunk.id), func.count(Chunk.id))).one()
    return int(top or 0), int(count)


class MetadataStore:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self.read_only = False  # opened read-only: the disk is full or cannot be written
        try:
            with self.engine.begin() as conn:
                migrate(conn)
                self._read_flags(conn)
        except OperationalError as exc:
            self._open_read_only(exc)
            with self.engine.connect() as conn:
                self._read_flags(conn)
        self.lexical = FullTextSQL(self.engine)
        self.fold_collation = self._fold_collation()

    def _fold_collation(self) -> str | None:
        """The collation filters fold case under: PostgreSQL's ICU root locale where the
        server has ICU (its lower() is then full Unicode case mapping, as Python's; a
        libc "C" locale folds ASCII only); None elsewhere (SQLite folds with Python)."""
        if self.dialect != "postgresql":
            return None
        try:
            with self.engine.connect() as conn:
                found = conn.execute(text(
                    "SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'")).first()
        except Exception:  # noqa: BLE001 (folding falls back to the database's locale)
            return None
        return "und-x-icu" if found else None

    def _open_read_only(self, exc: OperationalError) -> None:
        """Searching a full or read-only disk still works (store/readonly.py)."""
        from ..iofaults import storage_errno
        from .migrations import LATEST, current_version
        from .readonly import read_only_engine

        engine = read_only_engine(self.url) if storage_errno(exc) is not None else None
        if engine is None:
            raise exc
        with engine.connect() as conn:
            if current_version(conn) != LATEST:
                raise exc  # it would need a migration, which is a write
        self.engine.dispose()
        self.engine, self.read_only = engine, True

    def close(self) -> None:
        self.engine.dispose()

    # -- the vector outbox (store/outbox.py) ----------------------------------------------
    def _read_flags(self, conn) -> None:
        self.outbox = outbox.enabled(conn)  # vector changes recorded (store/outbox.py)
        self.lexical_outbox = outbox.enabled(conn, outbox.LEXICAL_FLAG)  # chunk texts too

    def enable_outbox(self, lexical: bool = False) -> None:
        """Record vector changes from now on, in every process writing here (an index
        whose vectors live in a service turns this on before its first write); `lexical`:
        chunk texts too, for a BM25 collection (store/milvus_lexical.py)."""
        with self.engine.begin() as conn:
            outbox.enable(conn)
            if lexical:
                outbox.enable(conn, outbox.LEXICAL_FLAG)
        self.outbox = True
        self.lexical_outbox = self.lexical_outbox or lexical

    def _changes(self) -> VectorChanges:
        return VectorChanges(self.outbox, self.lexical_outbox)

    def _commit(self, conn, changes: VectorChanges) -> set[str]:
        """The end of a write transaction: bump the spaces, then record the outbox rows."""
        self._bump(conn, changes.spaces | ({outbox.LEXICAL} if changes.lexical_touched
                                           else set()))
        changes.record(conn)
        return changes.spaces

    def outbox_head(self, space: str) -> int:
        with self.engine.connect() as conn:
            return outbox.head(conn, space)

    def outbox_since(self, space: str, after: int, limit: int) -> list[outbox.Row]:
        with self.engine.connect() as conn:
            return outbox.since(conn, space, after, limit)

    def outbox_pending(self, space: str, after: int) -> int:
        with self.engine.connect() as conn:
            return outbox.pending(conn, space, after)

    def prune_outbox(self, space: str, upto: int) -> None:
        if not self.read_only:
            with self.engine.begin() as conn:
                outbox.prune(conn, space, upto)

    def _clean(self, value: Any) -> Any:
        """PostgreSQL text cannot hold NUL characters (PDF text sometimes has them)."""
        if isinstance(value, str) and "\x00" in value and self.dialect != "sqlite":
            return value.replace("\x00", "")
        return value

    # -- sources -------------------------------------------------------------------------
    def ensure_source(self, name: str, kind: str, uri: str, options: dict | None = None) -> int:
        with self.engine.begin() as conn:
            row = conn.execute(select(Source.id, Source.uri).where(Source.name == name)).first()
            if row:
                conn.execute(
                    update(Source)
                    .where(Source.id == row.id)
                    .values(uri=uri, kind=kind, options=options or {})
                )
                return int(row.id)
            return int(
                conn.execute(
                    insert(Source).values(
                        name=name, kind=kind, uri=uri, options=options or {},
                        created_at=time.time(), state={},
                    )
                ).inserted_primary_key[0]
            )

    def sources(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            counts = dict(
                conn.execute(select(Item.source_id, func.count()).group_by(Item.source_id)).all()
            )
            rows = conn.execute(select(Source.__table__).order_by(Source.name)).mappings().all()
        return [dict(r, items=counts.get(r["id"], 0)) for r in rows]

    def source_by_name(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(Source.__table__).where(Source.name == name)).mappings().first()
        return dict(row) if row else None

    def set_source_state(self, source_id: int, state: dict[str, Any], synced: bool = True) -> None:
        values: dict[str, Any] = {"state": state}
        if synced:
            values["synced_at"] = time.time()
        with self.engine.begin() as conn:
            conn.execute(update(Source).where(Source.id == source_id).values(**values))

    def delete_source(self, source_id: int) -> list[str]:
        ids = [r.id for r in self.items_of_source(source_id, children=True).values()]
        spaces = self.delete_items(ids)
        with self.engine.begin() as conn:
            conn.execute(delete(Source).where(Source.id == source_id))
        return spaces

    # -- items ---------------------------------------------------------------------------
    def items_of_source(self, source_id: int, children: bool = False) -> dict[str, Any]:
        """uri -> light row (id, size, mtime, fingerprint, content_hash, status).

        Only the source's own items unless `children`: items found inside others (an
        e-mail's attachments) follow their parent and are never planned on their own."""
        cols = (Item.id, Item.uri, Item.path, Item.size, Item.mtime, Item.fingerprint,
                Item.content_hash, Item.status)
        q = select(*cols).where(Item.source_id == source_id)
        if not children:
            q = q.where(Item.parent_id.is_(None))
        with self.engine.connect() as conn:
            return {r.uri: r for r in conn.execute(q)}

    # -- relations (a note's links and embeds) -------------------------------------------
    def unresolved_relations(self, source_id: int) -> list[Any]:
        """(id, from_item, from uri, target, wiki) of the source's links to nothing yet."""
        q = (select(Relation.id, Relation.from_item, Item.uri.label("from_uri"),
                    Relation.target, Relation.wiki)
             .join(Item, Item.id == Relation.from_item)
             .where(Relation.source_id == source_id, Relation.to_item.is_(None)))
        with self.engine.connect() as conn:
            return list(conn.execute(q))

    def link_targets(self, source_id: int) -> list[Any]:
        """(id, uri, aliases) of the source's own items: what its links may name."""
        q = select(Item.id, Item.uri, Item.meta).where(Item.source_id == source_id,
                                                       Item.parent_id.is_(None))
        with self.engine.connect() as conn:
            return [(r.id, r.uri, (r.meta or {}).get("aliases") or []) for r in conn.execute(q)]

    def resolve_relations(self, found: Sequence[tuple[int, int]]) -> None:
        """Point relations at the items their targets name: (relation id, item id)."""
        with self.engine.begin() as conn:
            for i in range(0, len(found), 500):
                part = found[i : i + 500]
                conn.execute(update(Relation).where(Relation.id == bindparam("rid"))
                             .values(to_item=bindparam("tid")),
                             [{"rid": r, "tid": t} for r, t in part])

    def relations_of(self, item_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The links and embeds to and from these items, with the other end's path and
        the passage of the note around each (its chunk holding the link)."""
        ids = [int(i) for i in item_ids]
        if not ids:
            return []
        From, To = aliased(Item, name="f"), aliased(Item, name="t")
        q = (select(Relation.from_item, Relation.to_item, Relation.kind, Relation.target,
                    Relation.position, Relation.heading, From.path.label("from_path"),
                    From.title.label("from_title"), To.path.label("to_path"))
             .join(From, From.id == Relation.from_item)
             .outerjoin(To, To.id == Relation.to_item)
             .where(or_(Relation.to_item.in_(ids), Relation.from_item.in_(ids)))
             .order_by(Relation.from_item, Relation.position).limit(2000))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
            notes = sorted({r["from_item"] for r in rows if r["to_item"] in ids})
            chunks = list(conn.execute(
                select(Chunk.item_id, Chunk.char_start, Chunk.char_end, Chunk.text)
                .where(Chunk.item_id.in_(notes), Chunk.char_start.is_not(None)))) if notes else []
        for r in rows:
            r["passage"] = next(
                (passage_around(c.text or "", r["position"] - c.char_start) for c in chunks
                 if c.item_id == r["from_item"] and c.char_start <= r["position"] < c.char_end),
                "")
        return rows

    def embeds_in(self, chunk_ids: Sequence[int]) -> list[tuple[int, int, int]]:
        """(note chunk id, image item id, image chunk id) of the images embedded in these
        chunks of notes: the embed's offset lies in the chunk's span."""
        ids = [int(i) for i in chunk_ids]
        if not ids:
            return []
        Target, Inner = aliased(Item, name="t"), aliased(Chunk, name="x")
        first = (select(Inner.id).where(Inner.item_id == Relation.to_item)
                 .order_by(Inner.ordinal).limit(1).correlate(Relation).scalar_subquery())
        q = (select(Chunk.id, Relation.to_item, first)
             .join(Relation, Relation.from_item == Chunk.item_id)
             .join(Target, Target.id == Relation.to_item)
             .where(Chunk.id.in_(ids), Relation.kind == "embed", Target.modality == "image",
                    Relation.to_item != Chunk.item_id, Relation.position >= Chunk.char_start,
                    Relation.position < Chunk.char_end).limit(5000))
        with self.engine.connect() as conn:
            return [(int(c), int(i), int(x)) for c, i, x in conn.execute(q) if x is not None]

    def children_of(self, item_id: int) -> list[dict[str, Any]]:
        """The items found inside this one (an e-mail's attachments), in order."""
        cols = (Item.id, Item.uri, Item.path, Item.modality, Item.media_type, Item.size,
                Item.status, Item.error, Item.title, Item.meta)
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).where(Item.parent_id == item_id)
                                .order_by(Item.id)).mappings().all()
        return [dict(r) for r in rows]

    def parent_of(self, item_id: int) -> dict[str, Any] | None:
        """{id, path} of the item this one was found inside, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(Parent.id, Parent.path)
                               .join(Item, Item.parent_id == Parent.id)
                               .where(Item.id == item_id)).first()
        return {"id": int(row.id), "path": row.path} if row else None

    def _descendants(self, conn, ids: Sequence[int]) -> list[int]:
        """Every item below these (children, their children...), parents first."""
        out: list[int] = []
        seen = set(ids)
        frontier = list(ids)
        while frontier:
            found: list[int] = []
            for i in range(0, len(frontier), 500):
                found += [r[0] for r in conn.execute(
                    select(Item.id).where(Item.parent_id.in_(frontier[i : i + 500])))
                    if r[0] not in seen]
            seen.update(found)
            out += found
            frontier = found
        return out

    def item_by_hash(self, content_hash: str) -> int | None:
        """An indexed item with this content (for free renames and copies)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(Item.id)
                .where(Item.content_hash == content_hash, Item.status == "ok")
                .limit(1)
            ).first()
        return int(row.id) if row else None

    def items_by_hash(self, content_hashes: Sequence[str]) -> dict[str, int]:
        """item_by_hash for many hashes at once (a query per 500, not one per file)."""
        wanted = sorted(set(content_hashes))
        found: dict[str, int] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                rows = conn.execute(select(Item.content_hash, Item.id).where(
                    Item.content_hash.in_(wanted[i:i + 500]), Item.status == "ok"))
                for h, item_id in rows:
                    found.setdefault(h, int(item_id))
        return found

    def reusable(self, content_hash: str) -> dict[str, Any] | None:
        """What an indexed item with this content and no children holds (kind, title,
        metadata, chunks with their vectors), so that an attachment seen before costs no
        model: None when there is none."""
        has_children = select(Parent.id).where(Parent.parent_id == Item.id).exists()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(Item.id, Item.modality, Item.media_type, Item.title, Item.meta)
                .where(Item.content_hash == content_hash, Item.status == "ok", ~has_children)
                .limit(1)
            ).first()
            if row is None:
                return None
            meta = dict(row.meta or {})
            links = self._links_of(conn, row.id)
            if links:  # a copied note links what it says: resolved from its own folder
                meta["links"] = links
            return {"id": int(row.id), "modality": row.modality, "media_type": row.media_type,
                    "title": row.title, "meta": meta,
                    "chunks": self._chunk_records(conn, row.id)}

    @staticmethod
    def _links_of(conn, item_id: int) -> list[dict[str, Any]]:
        """A note's links as its extractor wrote them (meta["links"]), from its relations."""
        rows = conn.execute(select(Relation.target, Relation.kind, Relation.wiki,
                                   Relation.position, Relation.heading)
                            .where(Relation.from_item == item_id).order_by(Relation.id))
        return [{"target": r.target, "kind": r.kind, "wiki": bool(r.wiki), "offset": r.position,
                 "heading": r.heading} for r in rows]

    def with_failed_children(self, source_id: int) -> set[int]:
        """Ids of the source's own items holding a failed item somewhere below them."""
        tops: set[int] = set()
        with self.engine.connect() as conn:
            frontier = set(conn.execute(select(Item.parent_id).where(
                Item.source_id == source_id, Item.parent_id.is_not(None),
                Item.status == "error")).scalars())
            seen: set[int] = set()
            while frontier:
                seen |= frontier
                up: set[int] = set()
                ids = sorted(frontier)
                for i in range(0, len(ids), 500):
                    for item_id, parent_id in conn.execute(select(Item.id, Item.parent_id).where(
                            Item.id.in_(ids[i : i + 500]))):
                        if parent_id is None:
                            tops.add(int(item_id))
                        elif parent_id not in seen:
                            up.add(int(parent_id))
                frontier = up
        return tops

    def item(self, item_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(Item.__table__, Source.name.label("source"))
                .join(Source, Source.id == Item.source_id)
                .where(Item.id == item_id)
            ).mappings().first()
        return dict(row) if row else None

    def item_ids_by_path(self, paths: Sequence[str]) -> list[int]:
        """Items at these paths, or below them (a folder)."""
        return self._ids_at(Item.path, paths)

    def item_ids_by_uri(self, uris: Sequence[str]) -> list[int]:
        """Items at these URIs, or below them (a folder's file:// URI)."""
        return self._ids_at(Item.uri, uris)

    def _ids_at(self, column, values: Sequence[str]) -> list[int]:
        with self.engine.connect() as conn:
            ids: list[int] = []
            for v in values:
                ids += [r.id for r in conn.execute(
                    select(Item.id).where((column == v) | column.like(
                        like_escape(v.rstrip("/")) + "/%", escape="\\")))]
        return ids

    def chunks_of_item(self, item_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Chunk.__table__).where(Chunk.item_id == item_id).order_by(Chunk.ordinal)
            ).mappings().all()
        return [dict(r) for r in rows]

    def write_items(self, entries: Sequence[tuple]) -> tuple[list[int], set[str]]:
        """Insert items (each replacing an older row, and its children, when its id is
        given) with their chunks and vectors, in ONE transaction: after a crash either all
        are there or none. An entry is (record, chunks, replace_id) or (record, chunks,
        replace_id, children), children being NewChild trees written below the item.

        Returns the new (top-level) item ids and the spaces whose vectors changed."""
        changes = self._changes()
        with self.engine.begin() as conn:
            replaced = [e[2] for e in entries if e[2] is not None]
            if replaced:
                self._delete_items(conn, replaced, changes)
            ids = self._insert_tree(conn, [(e[0], e[1], e[3] if len(e) > 3 else ())
                                           for e in entries], time.time(), changes)
            spaces = self._commit(conn, changes)
            crash_point("store.write.uncommitted")
        return ids, spaces

    def write_item(self, record: ItemRecord, chunks: Sequence[ChunkRecord],
                   replace_id: int | None = None) -> tuple[int, set[str]]:
        ids, spaces = self.write_items([(record, chunks, replace_id)])
        return ids[0], spaces

    def _insert_tree(self, conn, level: list[tuple[ItemRecord, Sequence[ChunkRecord],
                                                   Sequence[NewChild]]],
                     now: float, changes: VectorChanges) -> list[int]:
        """Insert items with their chunks and vectors, then their children, one level at a
        time: a multi-row INSERT ... RETURNING per table and level (ids in the rows' order)
        instead of a statement per item and per chunk, which cost ~1.3 ms an item, as
        much as the rest of a small file's indexing (docs/BENCHMARKS.md)."""
        rows, links = [], []
        for record, _, _ in level:
            values = {k: self._clean(v) for k, v in record.__dict__.items()}
            values["meta"] = dict(values["meta"] or {})
            links.append(values["meta"].pop("links", None) or ())  # rows of their own
            values["indexed_at"] = now
            rows.append(values)
        ids = self._insert_returning(conn, Item, rows)
        relation_rows = [
            {"source_id": row["source_id"], "from_item": item_id, "to_item": None,
             "target": self._clean(str(link.get("target", "")))[:2000],
             "kind": "embed" if link.get("kind") == "embed" else "link",
             "wiki": bool(link.get("wiki")), "position": int(link.get("offset", 0)),
             "heading": self._clean(link.get("heading", ""))[:500]}
            for item_id, row, found in zip(ids, rows, links, strict=True) for link in found
            if isinstance(link, dict)]
        if relation_rows:  # resolved to items after the sync (indexer/relations.py)
            conn.execute(insert(Relation), relation_rows)
        chunk_rows, vectors = [], []
        for item_id, (_, chunks, _) in zip(ids, level, strict=True):
            for c in chunks:
                values = {k: v for k, v in c.__dict__.items() if k != "vectors"}
                values["text"] = self._clean(values["text"])
                values["item_id"] = item_id
                chunk_rows.append(values)
                vectors.append(c.vectors or {})
        chunk_ids = self._insert_returning(conn, Chunk, chunk_rows)
        changes.chunks_written(c for c, row in zip(chunk_ids, chunk_rows, strict=True)
                               if row["text"])
        vector_rows = []
        for chunk_id, vecs in zip(chunk_ids, vectors, strict=True):
            for space, vec in vecs.items():
                vector_rows.append(_vector_row(chunk_id, space, vec, changes))
        if vector_rows:
            conn.execute(insert(Embedding), vector_rows)
        below = []
        for item_id, (_, _, children) in zip(ids, level, strict=True):
            for child in children:
                child.record.parent_id = item_id
                below.append((child.record, child.chunks, child.children))
        if below:
            self._insert_tree(conn, below, now, changes)
        return ids

    @staticmethod
    def _insert_returning(conn, table, rows: list[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        result = conn.execute(insert(table).returning(table.id, sort_by_parameter_order=True),
                              rows)
        return [int(r[0]) for r in result]

    def _insert_chunks(self, conn, item_id: int, chunks: Sequence[ChunkRecord],
                       changes: VectorChanges) -> None:
        vector_rows = []
        for c in chunks:
            values = {k: v for k, v in c.__dict__.items() if k != "vectors"}
            values["text"] = self._clean(values["text"])
            chunk_id = int(conn.execute(insert(Chunk).values(item_id=item_id, **values))
                           .inserted_primary_key[0])
            if values["text"]:
                changes.chunks_written([chunk_id])
            for space, vec in (c.vectors or {}).items():
                vector_rows.append(_vector_row(chunk_id, space, vec, changes))
        if vector_rows:
            conn.execute(insert(Embedding), vector_rows)

    def copy_item(self, source_item_id: int, record: ItemRecord) -> tuple[int, set[str]]:
        """A new item whose content equals an indexed one: copy chunks and vectors, no model.
        Its children (an e-mail's attachments) are copied with it, under the new URI."""
        changes = self._changes()
        with self.engine.begin() as conn:
            src = conn.execute(select(Item.uri, Item.path, Item.title, Item.meta, Item.modality,
                                      Item.media_type).where(Item.id == source_item_id)).first()
            values = dict(record.__dict__)
            values.update(title=src.title if src else None, meta=(src.meta if src else None) or {},
                          indexed_at=time.time())
            if src is not None:  # same content, same kind: the record knows neither
                values.update(modality=src.modality, media_type=src.media_type)
            if record.parent_id is None:
                values["meta"] = {k: v for k, v in values["meta"].items() if k != "attachment"}
            item_id = int(conn.execute(insert(Item).values(**values)).inserted_primary_key[0])
            self._insert_chunks(conn, item_id, self._chunk_records(conn, source_item_id), changes)
            links = self._links_of(conn, source_item_id)
            if links:  # unresolved: the copy's links are resolved from its own folder
                conn.execute(insert(Relation), [
                    {"source_id": record.source_id, "from_item": item_id, "to_item": None,
                     "target": link["target"], "kind": link["kind"], "wiki": link["wiki"],
                     "position": link["offset"], "heading": link["heading"]} for link in links])
            if src is not None:
                self._copy_children(conn, source_item_id, item_id, (src.uri, src.path),
                                    (record.uri, record.path), record, changes)
            spaces = self._commit(conn, changes)
        return item_id, spaces

    def _copy_children(self, conn, from_id: int, to_id: int, old: tuple[str, str],
                       new: tuple[str, str], record: ItemRecord, changes: VectorChanges) -> None:
        rows = conn.execute(select(Item.__table__).where(Item.parent_id == from_id)
                            .order_by(Item.id)).mappings().all()
        for row in rows:
            values = {k: v for k, v in row.items() if k != "id"}
            values.update(
                source_id=record.source_id, parent_id=to_id,
                uri=_rebase(row["uri"], old[0], new[0]), path=_rebase(row["path"], old[1], new[1]),
                mtime=record.mtime, indexed_at=time.time())
            child_id = int(conn.execute(insert(Item).values(**values)).inserted_primary_key[0])
            self._insert_chunks(conn, child_id, self._chunk_records(conn, row["id"]), changes)
            self._copy_children(conn, row["id"], child_id, (row["uri"], row["path"]),
                                (values["uri"], values["path"]), record, changes)

    def _chunk_records(self, conn, item_id: int) -> list[ChunkRecord]:
        rows = conn.execute(select(Chunk.__table__).where(Chunk.item_id == item_id)
                            .order_by(Chunk.ordinal)).all()
        ids = [r.id for r in rows]
        vecs: dict[int, dict[str, np.ndarray]] = {}
        if ids:
            q = select(Embedding.chunk_id, Embedding.space, Embedding.vector).where(
                Embedding.chunk_id.in_(ids))
            for cid, space, blob in conn.execute(q):
                vecs.setdefault(cid, {})[space] = (
                    HeldVector(int(cid)) if is_held(blob) else np.frombuffer(blob, dtype=np.float32))
        return [
            ChunkRecord(ordinal=r.ordinal, modality=r.modality, text=r.text, char_start=r.char_start,
                        char_end=r.char_end, page=r.page, start_s=r.start_s, end_s=r.end_s,
                        vectors=vecs.get(r.id, {}))
            for r in rows
        ]

    def move_item(self, item_id: int, uri: str, path: str, size, mtime, fingerprint: str,
                  source_id: int | None = None) -> None:
        """A rename or move: same content, new location. No re-embedding. Its children
        (an e-mail's attachments) move with it: their URIs and paths are rebased."""
        values = dict(uri=uri, path=path, size=size, mtime=mtime, fingerprint=fingerprint)
        if source_id is not None:
            values["source_id"] = source_id
        changes = self._changes()
        with self.engine.begin() as conn:
            old = conn.execute(select(Item.uri, Item.path).where(Item.id == item_id)).first()
            conn.execute(update(Item).where(Item.id == item_id).values(**values))
            if old is None:
                return
            below = self._descendants(conn, [item_id])
            changes.refreshing(conn, [item_id, *below])  # a service's path fields change
            for i in range(0, len(below), 500):
                part = below[i : i + 500]
                for row in conn.execute(select(Item.id, Item.uri, Item.path)
                                        .where(Item.id.in_(part))).all():
                    moved: dict[str, Any] = dict(uri=_rebase(row.uri, old.uri, uri),
                                                 path=_rebase(row.path, old.path, path), mtime=mtime)
                    if source_id is not None:
                        moved["source_id"] = source_id
                    conn.execute(update(Item).where(Item.id == row.id).values(**moved))
            self._commit(conn, changes)

    def touch_item(self, item_id: int, size, mtime, fingerprint: str,
                   meta: dict[str, Any] | None = None) -> None:
        """Metadata changed but content did not (e.g. `touch`, or a database row whose
        other columns changed): no re-embedding. `meta` is merged into the item's."""
        values: dict[str, Any] = dict(size=size, mtime=mtime, fingerprint=fingerprint, error=None)
        changes = self._changes()
        with self.engine.begin() as conn:
            if meta:
                old = conn.execute(select(Item.meta).where(Item.id == item_id)).scalar()
                values["meta"] = {**(old or {}), **meta}
            conn.execute(update(Item).where(Item.id == item_id).values(**values))
            changes.refreshing(conn, [item_id])  # a service's date and size fields change
            self._commit(conn, changes)

    def forget_fingerprints(self) -> None:
        """Make every item look changed to the next sync (reindex in place)."""
        with self.engine.begin() as conn:
            conn.execute(update(Item).values(fingerprint="", content_hash=None))

    def note_error(self, item_id: int, message: str) -> None:
        """Record a failed re-read on an item that keeps its last good content."""
        with self.engine.begin() as conn:
            conn.execute(update(Item).where(Item.id == item_id).values(error=message))

    def delete_items(self, item_ids: Iterable[int]) -> set[str]:
        ids = list(item_ids)
        if not ids:
            return set()
        changes = self._changes()
        with self.engine.begin() as conn:
            spaces = self._delete_items(conn, ids, changes)
            self._commit(conn, changes)
            crash_point("store.delete.uncommitted")
        return spaces

    def _delete_items(self, conn, ids: list[int], changes: VectorChanges) -> set[str]:
        # Children go with their parent, explicitly: SQLite may run with foreign keys off.
        ids = list(ids) + self._descendants(conn, ids)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            chunk_ids = select(Chunk.id).where(Chunk.item_id.in_(part))
            changes.deleting(conn, chunk_ids)
            conn.execute(delete(Embedding).where(Embedding.chunk_id.in_(chunk_ids)))
            conn.execute(delete(Chunk).where(Chunk.item_id.in_(part)))
            conn.execute(delete(Item).where(Item.id.in_(part)))
        return changes.spaces

    # -- spaces and vectors --------------------------------------------------------------
    def ensure_space(self, name: str, dim: int) -> None:
        with self.engine.begin() as conn:
            if conn.execute(select(Space.name).where(Space.name == name)).first() is None:
                conn.execute(insert(Space).values(name=name, dim=dim, generation=0))

    def reset_space(self, name: str, dim: int) -> None:
        """Drop every vector of a space and make it `dim`-d (reindex with another model),
        in one transaction. The generation only ever grows: a reader holding vectors of
        generation g must never mistake the rebuilt space for the one it has."""
        with self.engine.begin() as conn:
            row = conn.execute(select(Space.generation).where(Space.name == name)).first()
            before = int(row[0]) if row else 0
            conn.execute(delete(Embedding).where(Embedding.space == name))
            conn.execute(delete(VectorOutbox).where(VectorOutbox.space == name))  # all of it goes
            conn.execute(delete(Space).where(Space.name == name))
            conn.execute(insert(Space).values(name=name, dim=dim, generation=before + 1))

    def _bump(self, conn, spaces: Iterable[str]) -> None:
        for s in spaces:
            conn.execute(update(Space).where(Space.name == s).values(generation=Space.generation + 1))

    def generation(self, space: str) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(select(Space.generation).where(Space.name == space)).first()
        return int(row[0]) if row else 0

    def vector_ids(self, space: str) -> np.ndarray:
        with self.engine.connect() as conn:
            ids = conn.execute(select(Embedding.chunk_id).where(Embedding.space == space)).scalars().all()
        return np.asarray(ids, dtype=np.int64)

    def vectors(self, space: str, ids: Sequence[int] | None = None, dim: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of a space, all of it or the given chunk ids; a vector the
        vector service holds instead (store/outbox.py) is not among them."""
        rows: list = []
        with self.engine.connect() as conn:
            if ids is None:
                batches = [None]
            else:
                ids = [int(i) for i in ids]
                batches = [ids[i : i + 900] for i in range(0, len(ids), 900)]
            for part in batches:
                q = select(Embedding.chunk_id, Embedding.vector).where(Embedding.space == space)
                if part is not None:
                    q = q.where(Embedding.chunk_id.in_(part))
                rows += conn.execute(q.order_by(Embedding.chunk_id)).all()
        return matrix_of(rows, dim)

    def held_vectors(self, space: str, ids: Sequence[int]) -> list[int]:
        """Which of these chunks have a vector in the space that only the vector service
        holds (their blob emptied once it was applied)."""
        ids = [int(i) for i in ids]
        found: list[int] = []
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 900):
                found += conn.execute(select(Embedding.chunk_id).where(
                    Embedding.space == space, Embedding.chunk_id.in_(ids[i : i + 900]),
                    Embedding.vector == HELD)).scalars().all()
        return [int(i) for i in found]

    def hold_vectors(self, space: str, ids: Sequence[int]) -> None:
        """The vector service has these vectors (durably): the store keeps their rows
        and lets go of the blobs, so the vectors live in one place (store/outbox.py)."""
        ids = [int(i) for i in ids]
        if not ids or self.read_only:
            return
        with self.engine.begin() as conn:
            for i in range(0, len(ids), 900):
                conn.execute(update(Embedding).where(
                    Embedding.space == space, Embedding.chunk_id.in_(ids[i : i + 900]))
                    .values(vector=HELD))

    def vectors_lost(self, space: str, ids: Sequence[int]) -> int:
        """The vector service lost these held vectors and the store has no copy: their
        rows go (the chunks have no vector, as `check` then says) and their items are
        marked changed (as a migration does), so the next sync reads and encodes them
        again; how many items."""
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        items: set[int] = set()
        with self.engine.begin() as conn:
            for i in range(0, len(ids), 900):
                part = ids[i : i + 900]
                items.update(conn.execute(select(Chunk.item_id).where(Chunk.id.in_(part)))
                             .scalars())
                conn.execute(delete(Embedding).where(Embedding.space == space,
                                                     Embedding.chunk_id.in_(part)))
            marked = mark_changed(conn, items)
            self._bump(conn, [space])
        return marked

    def chunk_stamp(self) -> tuple[int, int]:
        """(the highest chunk id ever given, how many chunks): what the SQLite reader's
        stamp says (on SQLite the same AUTOINCREMENT mark: the tantivy cache and the score
        calibration compare them), the highest id present on other databases."""
        with self.engine.connect() as conn:
            return chunk_stamp_of(conn)

    def text_chunk_count(self) -> int:
        """How many chunks have text (what a BM25 service holds)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(Chunk.text != "")).scalar_one())

    def chunk_ids(self, query: Select | None = None) -> np.ndarray:
        """The chunk ids a select of them gives; all of them (in id order) without one."""
        if query is None:
            query = select(Chunk.id).order_by(Chunk.id)
        with self.engine.connect() as conn:
            return np.fromiter(conn.execute(query).scalars(), dtype=np.int64)

    def chunk_content_keys(self) -> list[tuple[int, str]]:
        """(chunk id, what the chunk is by content), for every chunk (as
        SQLiteReader.chunk_content_keys)."""
        q = select(Chunk.id, Chunk.modality, Chunk.ordinal, func.length(Chunk.text),
                   func.substr(Chunk.text, 1, CONTENT_KEY_CHARS))
        with self.engine.connect() as conn:
            return [(int(c), content_key(*rest)) for c, *rest in conn.execute(q)]

    def chunk_texts(self, chunk_ids: Sequence[int]) -> list[tuple[int, str | None]]:
        """(chunk id, its text) for the chunks that exist."""
        ids = [int(i) for i in chunk_ids]
        out: list[tuple[int, str | None]] = []
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 900):
                out += [(int(c), t) for c, t in conn.execute(
                    select(Chunk.id, Chunk.text).where(Chunk.id.in_(ids[i : i + 900])))]
        return out

    def chunk_fields(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """chunk id -> the item fields a vector service filters on (store/filter_fields.py)."""
        from .filter_fields import fields_of

        ids = [int(i) for i in chunk_ids]
        out: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 900):
                q = (select(Chunk.id, Item.id, Item.modality, Item.media_type, Item.path,
                            Item.size, Item.mtime, Item.meta, Source.name)
                     .join(Item, Item.id == Chunk.item_id)
                     .join(Source, Source.id == Item.source_id)
                     .where(Chunk.id.in_(ids[i : i + 900])))
                for cid, *item in conn.execute(q):
                    out[int(cid)] = fields_of(*item)
        return out

    # -- reads for search ----------------------------------------------------------------
    @staticmethod
    def allowed_chunks(condition) -> Select:
        """The ids of chunks whose item (joined with its source) meets a filter condition."""
        return (select(Chunk.id).join(Item, Item.id == Chunk.item_id)
                .join(Source, Source.id == Item.source_id).where(condition))

    def chunk_facts(self, chunk_ids: Sequence[int]) -> dict[int, tuple[int, str, str]]:
        """chunk id -> (item id, chunk modality, item modality), for the chunks that exist."""
        ids = [int(i) for i in chunk_ids]
        out: dict[int, tuple[int, str, str]] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 900):
                q = (select(Chunk.id, Chunk.item_id, Chunk.modality, Item.modality)
                     .join(Item, Item.id == Chunk.item_id)
                     .where(Chunk.id.in_(ids[i : i + 900])))
                out.update((int(c), (int(it), m, im)) for c, it, m, im in conn.execute(q))
        return out

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Chunks with their item and source, by chunk id."""
        cols = (
            Chunk.id.label("chunk_id"), Chunk.item_id, Chunk.ordinal, Chunk.modality.label("chunk_modality"),
            Chunk.text, Chunk.char_start, Chunk.char_end, Chunk.page, Chunk.start_s, Chunk.end_s,
            Item.uri, Item.path, Item.modality, Item.media_type, Item.title, Item.meta, Item.size,
            Item.mtime, Source.name.label("source"), Item.parent_id,
            Parent.path.label("parent_path"),
        )
        out: dict[int, dict[str, Any]] = {}
        ids = [int(i) for i in chunk_ids]
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 900):
                q = (select(*cols).join(Item, Item.id == Chunk.item_id)
                     .join(Source, Source.id == Item.source_id)
                     .outerjoin(Parent, Parent.id == Item.parent_id)
                     .where(Chunk.id.in_(ids[i : i + 900])))
                for r in conn.execute(q).mappings():
                    out[r["chunk_id"]] = dict(r)
        return out

    def counts(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            by_status = dict(conn.execute(select(Item.status, func.count()).group_by(Item.status)).all())
            by_modality = dict(conn.execute(
                select(Item.modality, func.count()).where(Item.status == "ok").group_by(Item.modality)).all())
            chunks = conn.execute(select(func.count()).select_from(Chunk)).scalar_one()
            vectors = dict(conn.execute(
                select(Embedding.space, func.count()).group_by(Embedding.space)).all())
            sources = conn.execute(select(func.count()).select_from(Source)).scalar_one()
            links = dict(conn.execute(select(Relation.to_item.is_not(None), func.count())
                                      .group_by(Relation.to_item.is_not(None))).all())
        return {
            "items": sum(by_status.values()),
            "ok": by_status.get("ok", 0),
            "errors": by_status.get("error", 0),
            "skipped": by_status.get("skipped", 0),  # empty, unsupported, not indexed here
            "by_modality": {str(k): v for k, v in by_modality.items()},
            "chunks": chunks,
            "vectors": vectors,
            "sources": sources,
            # a notes vault's links and embeds (the page groups by note when some resolve)
            "relations": {"resolved": links.get(True, 0), "unresolved": links.get(False, 0)},
        }

    def errors(self, limit: int | None = None) -> list[dict[str, Any]]:
        q = (select(Item.id, Item.path, Item.media_type, Item.error, Source.name.label("source"))
             .join(Source, Source.id == Item.source_id)
             # failed items, and indexed ones keeping their last good version after a
             # failed re-read; skipped ones (empty, unsupported) are not errors
             .where((Item.status == "error") | ((Item.status == "ok") & Item.error.is_not(None)))
             .order_by(Item.path))
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

