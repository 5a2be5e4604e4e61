"""The vector outbox: how a vector service (Milvus) is kept in step with the metadata
store without ever comparing whole id sets (which at 10^9 chunks no one can do).

Every transaction that changes a chunk's vector or the item fields a service filters on
also writes (space, chunk id, op) rows to `vector_outbox`: `u` (write the chunk's row
again: a new vector, or a moved/renamed/touched item) or `d` (delete it). The rows are
written last in the transaction, after the space's generation is bumped: that update
locks the space's row, so two writers' outbox rows can never commit out of sequence
order (a reader that has seen seq N has seen everything below it).

The service applies rows in sequence order and keeps the last sequence it applied (its
mark) beside its vectors; the order of writes makes a crash anywhere harmless:

- metadata committed, service not yet written: the rows wait in the outbox and the next
  writer applies them;
- service written, its mark not yet saved: the rows are applied again, which changes
  nothing (a row is written whole from the store's current state; ids are never reused);
- a `u` for a chunk deleted since reads no vector and deletes instead.

The metadata store keeps a vector only until the service has it: once a row is applied
the writer empties its blob (`HELD`, store/held.py), so at 10^9 chunks the vectors live in one place,
the service, and the store keeps (chunk id, space) for the outbox and `check`. A copy of
an item whose vectors are held (the same content found at another path) records where
each vector is (`origin`): the service copies its own row.

A cluster index's BM25 collection (store/milvus_lexical.py) is written the same way, from
rows under the pseudo-space LEXICAL: one per chunk written (with text), deleted, or whose
item moved; its `spaces` row orders the writers as a space's does.

Applied rows are pruned by the writer. An index turns the outbox on in the store itself
(`meta.vector_outbox`), so every process that writes to it records changes, whichever
vector store that process was told about.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, func, insert, select

from .schema import Chunk, Embedding, Meta, Space, VectorOutbox

FLAG = "vector_outbox"  # meta key: "on" when the index keeps an outbox
LEXICAL_FLAG = "lexical_outbox"  # meta key: "on" when chunk texts go to a BM25 service too
LEXICAL = "_lexical"  # the pseudo-space of the BM25 collection (store/milvus_lexical.py)
UPSERT, DELETE = "u", "d"


@dataclass(frozen=True)
class HeldVector:
    """A vector read from the store that only the service holds: the chunk it is under."""

    chunk_id: int


@dataclass
class VectorChanges:
    """What one write transaction did to vectors: the spaces touched (their generation is
    bumped) and, when the index keeps an outbox, the rows to record."""

    outbox: bool = False
    lexical: bool = False  # also rows for the BM25 collection (every chunk with text)
    spaces: set[str] = field(default_factory=set)
    rows: list[dict] = field(default_factory=list)
    lexical_touched: bool = False

    def chunks_written(self, chunk_ids: Iterable[int]) -> None:
        """New chunks with text: the BM25 collection writes their rows."""
        if self.lexical:
            self._lexical_rows(chunk_ids, UPSERT)

    def _lexical_rows(self, chunk_ids: Iterable[int], op: str) -> None:
        for cid in chunk_ids:
            self.rows.append({"space": LEXICAL, "chunk_id": int(cid), "op": op, "origin": None})
            self.lexical_touched = True

    def upserted(self, space: str, chunk_id: int, origin: int | None = None) -> None:
        """`origin`: the chunk the service holds this one's vector under (a copy)."""
        self.spaces.add(space)
        if self.outbox:
            self.rows.append({"space": space, "chunk_id": int(chunk_id), "op": UPSERT,
                              "origin": origin})

    def deleting(self, conn: Connection, chunk_ids) -> None:
        """Note the vectors of these chunks (a select of chunk ids) before they go."""
        for space, cid in _vectors_of(conn, chunk_ids):
            self.spaces.add(space)
            if self.outbox:
                self.rows.append({"space": space, "chunk_id": int(cid), "op": DELETE,
                                  "origin": None})
        if self.lexical:
            self._lexical_rows(conn.execute(chunk_ids).scalars(), DELETE)

    def refreshing(self, conn: Connection, item_ids: Sequence[int]) -> None:
        """The items' fields changed (a move, a touch): their chunks' rows are written
        again. Nothing to do without an outbox (FAISS keeps no fields)."""
        for i in range(0, len(item_ids), 500):
            chunk_ids = select(Chunk.id).where(Chunk.item_id.in_(item_ids[i : i + 500]))
            if self.outbox:
                for space, cid in _vectors_of(conn, chunk_ids):
                    self.upserted(space, cid)
            if self.lexical:
                self._lexical_rows(conn.execute(chunk_ids).scalars(), UPSERT)

    def record(self, conn: Connection) -> None:
        """Write the rows (after the generation bump, which orders the writers)."""
        for start in range(0, len(self.rows), 5_000):
            conn.execute(insert(VectorOutbox), self.rows[start : start + 5_000])
        self.rows = []


def _vectors_of(conn: Connection, chunk_ids):
    """(space, chunk id) of every vector of these chunks (a select of chunk ids)."""
    return conn.execute(select(Embedding.space, Embedding.chunk_id)
                        .where(Embedding.chunk_id.in_(chunk_ids)))


def enabled(conn: Connection, flag: str = FLAG) -> bool:
    return conn.execute(select(Meta.value).where(Meta.key == flag)).scalar() == "on"


def enable(conn: Connection, flag: str = FLAG) -> None:
    if not enabled(conn, flag):
        conn.execute(insert(Meta).values(key=flag, value="on"))
    if flag == LEXICAL_FLAG and conn.execute(select(Space.name).where(
            Space.name == LEXICAL)).first() is None:
        # its row is what orders the writers' lexical rows (the bump locks it)
        conn.execute(insert(Space).values(name=LEXICAL, dim=0, generation=0))


def head(conn: Connection, space: str) -> int:
    """The last sequence number written for a space (0: none)."""
    return int(conn.execute(select(func.max(VectorOutbox.seq))
                            .where(VectorOutbox.space == space)).scalar() or 0)


Row = tuple[int, int, str, "int | None"]  # (seq, chunk id, op, origin)


def since(conn: Connection, space: str, after: int, limit: int) -> list[Row]:
    """(seq, chunk id, op, origin) rows of a space after `after`, in order, at most
    `limit`."""
    q = (select(VectorOutbox.seq, VectorOutbox.chunk_id, VectorOutbox.op, VectorOutbox.origin)
         .where(VectorOutbox.space == space, VectorOutbox.seq > after)
         .order_by(VectorOutbox.seq).limit(limit))
    return [(int(s), int(c), str(o), None if f is None else int(f))
            for s, c, o, f in conn.execute(q)]


def pending(conn: Connection, space: str, after: int) -> int:
    return int(conn.execute(select(func.count()).select_from(VectorOutbox).where(
        VectorOutbox.space == space, VectorOutbox.seq > after)).scalar_one())


def prune(conn: Connection, space: str, upto: int) -> None:
    conn.execute(delete(VectorOutbox).where(VectorOutbox.space == space,
                                            VectorOutbox.seq <= upto))


def last_ops(rows: Iterable[Row]) -> tuple[list[int], list[int], dict[int, int]]:
    """(chunk ids to write, chunk ids to delete, chunk id -> the chunk its vector is held
    under when not its own): each chunk's last op wins."""
    last: dict[int, tuple[str, int | None]] = {}
    for _, cid, op, origin in rows:
        last[cid] = (op, origin)
    return ([c for c, (op, _) in last.items() if op == UPSERT],
            [c for c, (op, _) in last.items() if op == DELETE],
            {c: o for c, (op, o) in last.items() if op == UPSERT and o is not None})
