"""Invariants of the metadata store, and their repairs (none of which re-embeds).

- every chunk belongs to an item, every item to a source, every vector to a chunk, every
  child item (an e-mail's attachment) to an existing parent item;
- one item per (source, uri); items that failed or were skipped have no chunks;
- every chunk of an indexed item has exactly one vector in each space that takes it
  (encoders.space.embeds, the rule indexing follows: a space embeds text when its encoder
  reads text, images when it reads images, and an image through its tags when it reads
  only text);
- vectors have the dimension of their space, and only configured spaces hold vectors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, select, text, update
from sqlalchemy.orm import aliased

from ..encoders.space import embeds
from ..store import outbox
from ..store.metadata import mark_changed
from ..store.migrations import LATEST, current_version
from ..store.schema import Chunk, Embedding, Item, Source, Space
from .report import ERROR, WARNING, CheckReport

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ..core import OpenIndex


def space_modalities(index: OpenIndex) -> dict[str, frozenset[str] | None]:
    """What each configured space's encoder reads (None when its class cannot be loaded)."""
    from ..encoders import encoders

    out: dict[str, frozenset[str] | None] = {}
    for name, cfg in index.config.spaces.items():
        try:
            out[name] = frozenset(encoders.get(cfg.encoder).modalities)
        except Exception:  # a plugin encoder that is not installed: skip that rule
            out[name] = None
    return out


def check_store(conn: Connection, index: OpenIndex, report: CheckReport) -> dict[str, Any]:
    """Add findings to the report; return what the repair needs (ids to fix)."""
    todo: dict[str, Any] = {}
    version = current_version(conn)
    if version != LATEST:
        report.add("schema-version", ERROR, f"metadata schema is v{version}, expected v{LATEST}")
    if conn.dialect.name == "sqlite":
        rows = [r[0] for r in conn.execute(text("PRAGMA quick_check"))]
        if rows != ["ok"]:
            report.add("sqlite-corrupt", ERROR, "meta.db fails SQLite's quick_check: "
                       + "; ".join(rows[:3]), len(rows))
        # items, chunks and embeddings get their own findings (and repairs) below
        dangling = [r for r in conn.execute(text("PRAGMA foreign_key_check"))
                    if r[0] not in ("items", "chunks", "embeddings")]
        if dangling:
            tables = sorted({r[0] for r in dangling})
            report.add("foreign-keys", ERROR, f"rows pointing at missing rows in {tables}",
                       len(dangling))

    config = index.config.spaces
    stored = {r.name: r for r in conn.execute(select(Space.name, Space.dim, Space.generation))}
    for name, cfg in config.items():
        row = stored.get(name)
        if row is None:
            report.add("space-missing", WARNING, f"space '{name}' has no row in the store yet",
                       repair="create it")
            todo.setdefault("spaces", []).append(name)
        elif cfg.dim is not None and row.dim != cfg.dim:
            report.add("space-dim", ERROR, f"space '{name}' is {row.dim}-d in the store but "
                       f"{cfg.dim}-d in config.json: run `anyfind reindex`")
    foreign = conn.execute(select(Embedding.space, func.count()).where(
        Embedding.space.not_in(list(config))).group_by(Embedding.space)).all()
    for space, n in foreign:
        report.add("unknown-space", ERROR, f"{n} vectors in space '{space}', which config.json "
                   "does not have", n, repair="delete them")
        todo.setdefault("foreign_spaces", []).append(space)

    for space, size, n in conn.execute(select(Embedding.space, func.length(Embedding.vector),
                                              func.count()).group_by(Embedding.space,
                                                                     func.length(Embedding.vector))):
        dim = config[space].dim if space in config else None
        held = size == 0 and outbox.enabled(conn)  # the vector service has it (store/outbox.py)
        if dim is not None and size != 4 * dim and not held:
            report.add("vector-size", ERROR, f"{n} vectors in space '{space}' have {size} bytes, "
                       f"not {4 * dim}", n, repair="delete them and re-embed their items")
            todo.setdefault("bad_size", []).append((space, size))

    _orphans(conn, report, todo)
    _duplicates(conn, report, todo)
    _missing_vectors(conn, index, report, todo)
    return todo


def _orphans(conn: Connection, report: CheckReport, todo: dict[str, Any]) -> None:
    no_source = select(Item.id).outerjoin(Source, Source.id == Item.source_id).where(
        Source.id.is_(None))
    ids = conn.execute(no_source).scalars().all()
    if ids:
        report.add("orphan-items", ERROR, f"{len(ids)} items of a source that no longer exists",
                   len(ids), repair="delete them")
        todo["orphan_items"] = list(ids)
    lost = _orphan_children(conn)
    if lost:
        report.add("orphan-children", ERROR, f"{len(lost)} items found inside an item that no "
                   "longer exists (attachments of a deleted e-mail)", len(lost),
                   repair="delete them")
        todo["orphan_children"] = lost
    no_item = select(Chunk.id).outerjoin(Item, Item.id == Chunk.item_id).where(Item.id.is_(None))
    ids = conn.execute(no_item).scalars().all()
    if ids:
        report.add("orphan-chunks", ERROR, f"{len(ids)} chunks of items that no longer exist",
                   len(ids), repair="delete them")
        todo["orphan_chunks"] = list(ids)
    no_chunk = select(Embedding.chunk_id, Embedding.space).outerjoin(
        Chunk, Chunk.id == Embedding.chunk_id).where(Chunk.id.is_(None))
    rows = conn.execute(no_chunk).all()
    if rows:
        report.add("orphan-vectors", ERROR, f"{len(rows)} vectors point at missing chunks",
                   len(rows), repair="delete them")
        todo["orphan_vectors"] = [(r.chunk_id, r.space) for r in rows]
    failed_with_chunks = select(Chunk.id).join(Item, Item.id == Chunk.item_id).where(
        Item.status != "ok")
    ids = conn.execute(failed_with_chunks).scalars().all()
    if ids:
        report.add("chunks-of-failed-items", ERROR, f"{len(ids)} chunks belong to items that "
                   "failed or were skipped", len(ids), repair="delete them")
        todo["failed_chunks"] = list(ids)


def _orphan_children(conn: Connection) -> list[int]:
    """Items whose parent is gone, and every item below them."""
    parent = aliased(Item)
    top = conn.execute(select(Item.id).outerjoin(parent, parent.id == Item.parent_id).where(
        Item.parent_id.is_not(None), parent.id.is_(None))).scalars().all()
    found, seen, frontier = list(top), set(top), list(top)
    while frontier:
        below: list[int] = []
        for part in _parts(frontier):
            below += [i for i in conn.execute(select(Item.id).where(Item.parent_id.in_(part)))
                      .scalars() if i not in seen]
        seen.update(below)
        found += below
        frontier = below
    return found


def _duplicates(conn: Connection, report: CheckReport, todo: dict[str, Any]) -> None:
    groups = conn.execute(select(Item.source_id, Item.uri, func.count(), func.max(Item.id))
                          .group_by(Item.source_id, Item.uri).having(func.count() > 1)).all()
    if not groups:
        return
    extra = []
    for source_id, uri, _, newest in groups:
        extra += conn.execute(select(Item.id).where(
            Item.source_id == source_id, Item.uri == uri, Item.id != newest)).scalars().all()
    report.add("duplicate-items", ERROR, f"{len(groups)} (source, uri) pairs have more than "
               "one item", len(extra), repair="keep the newest")
    todo["duplicate_items"] = extra


def _missing_vectors(conn: Connection, index: OpenIndex, report: CheckReport, todo: dict[str, Any]
                     ) -> None:
    items: set[int] = set()
    for space, accepts in space_modalities(index).items():
        if accepts is None:
            continue
        has = select(Embedding.chunk_id).where(Embedding.chunk_id == Chunk.id,
                                               Embedding.space == space).exists()
        q = (select(Chunk.id, Chunk.item_id, Chunk.modality, Chunk.text, Item.meta)
             .join(Item, Item.id == Chunk.item_id).where(and_(Item.status == "ok", ~has)))
        q = q.add_columns(Item.content_hash)
        missing = [r for r in conn.execute(q)
                   if embeds(accepts, r.modality, r.text, (r.meta or {}).get("tags"))]
        if not missing:
            continue
        unmarked = {r.item_id for r in missing if r.content_hash is not None}
        message = f"{len(missing)} chunks have no vector in space '{space}'"
        if unmarked:
            report.add("missing-vectors", ERROR, message, len(missing),
                       repair="mark their items so the next sync re-embeds them")
        else:
            report.add("missing-vectors", ERROR, message + " (their items are marked: the "
                       "next sync re-embeds them)", len(missing))
        items |= unmarked
    if items:
        todo["resync_items"] = sorted(items)


def repair_store(engine: Engine, index: OpenIndex, todo: dict[str, Any], report: CheckReport) -> None:
    """Apply the repairs check_store planned, in one transaction; bump every generation."""
    for name in todo.get("spaces", []):
        index.store.ensure_space(name, index.config.spaces[name].dim or 0)
    with engine.begin() as conn:
        resync = set(todo.get("resync_items", []))
        for space, size in todo.get("bad_size", []):
            bad = select(Embedding.chunk_id).where(
                Embedding.space == space, func.length(Embedding.vector) == size)
            resync |= set(conn.execute(select(Chunk.item_id).where(Chunk.id.in_(bad)))
                          .scalars().all())
            conn.execute(delete(Embedding).where(Embedding.space == space,
                                                 func.length(Embedding.vector) == size))
        for space in todo.get("foreign_spaces", []):
            conn.execute(delete(Embedding).where(Embedding.space == space))
        for chunk_id, space in todo.get("orphan_vectors", []):
            conn.execute(delete(Embedding).where(Embedding.chunk_id == chunk_id,
                                                 Embedding.space == space))
        items = (list(todo.get("orphan_items", [])) + list(todo.get("duplicate_items", []))
                 + list(todo.get("orphan_children", [])))
        items = list(dict.fromkeys(items))
        chunks = list(todo.get("orphan_chunks", [])) + list(todo.get("failed_chunks", []))
        for part in _parts(items):
            chunks += conn.execute(select(Chunk.id).where(Chunk.item_id.in_(part))).scalars().all()
        for part in _parts(chunks):
            conn.execute(delete(Embedding).where(Embedding.chunk_id.in_(part)))
            conn.execute(delete(Chunk).where(Chunk.id.in_(part)))
        for part in _parts(items):
            conn.execute(delete(Item).where(Item.id.in_(part)))
        resync -= set(items)
        report.resync = mark_changed(conn, resync)  # with their parents: re-read, re-embedded
        conn.execute(update(Space).values(generation=Space.generation + 1))


def _parts(ids: list[int], size: int = 500):
    for i in range(0, len(ids), size):
        yield ids[i : i + size]
