"""Which index a metadata store belongs to: one owner per database.

Every table of the store is the index's own (sources, items, chunks, the outbox): two
indexes writing one database would mix their sources and their vectors' bookkeeping,
and a repair of one would delete the other's vectors from the service. So the store
records its owner (`meta.index_id`, with where its config lives) and the index config
records the id and that it has claimed a store. Opening compares the two:

| store says        | config says                 | then                                   |
|-------------------|-----------------------------|----------------------------------------|
| owner X           | X                           | open                                   |
| owner X           | no id (written before ids)  | adopt X (a replica's older copy)       |
| owner X           | Y                           | refused: another index's database      |
| no owner, empty   | not claimed                 | claim it                               |
| no owner, holding | no id (written before ids)  | claim it (an index made before ids)    |
| no owner, holding | Y, not claimed              | refused: an older index's database     |
| no owner          | claimed                     | refused: the store was emptied/replaced|

Several indexes may share one PostgreSQL server: each gets its own database (or its own
schema through the URL's search_path), docs/SCALE.md.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import IndexDamaged

if TYPE_CHECKING:
    from sqlalchemy import Connection

OWNER = "index_id"
OWNER_PATH = "index_path"
OWNER_SINCE = "index_claimed_at"


@dataclass(frozen=True)
class Owner:
    """What a store says of its owner (None: no owner recorded)."""

    index_id: str | None
    path: str | None
    holds_data: bool


def new_index_id() -> str:
    return uuid.uuid4().hex


def read_owner(conn: Connection) -> Owner:
    from sqlalchemy import select  # here: a search through the SQLite reader needs none

    from .schema import Item, Meta, Source

    rows = dict(conn.execute(select(Meta.key, Meta.value).where(
        Meta.key.in_((OWNER, OWNER_PATH)))).all())
    holds = (conn.execute(select(Source.id).limit(1)).first() is not None
             or conn.execute(select(Item.id).limit(1)).first() is not None)
    return Owner(rows.get(OWNER) or None, rows.get(OWNER_PATH) or None, holds)


def write_owner(conn: Connection, index_id: str, path: str) -> None:
    from sqlalchemy import delete, insert

    from .schema import Meta

    conn.execute(delete(Meta).where(Meta.key.in_((OWNER, OWNER_PATH, OWNER_SINCE))))
    conn.execute(insert(Meta), [{"key": OWNER, "value": index_id},
                                {"key": OWNER_PATH, "value": path},
                                {"key": OWNER_SINCE, "value": repr(time.time())}])


def decide(owner: Owner, config_id: str, claimed: bool, where: str) -> str | None:
    """The id this index should claim the store under (None: it is already its own), or
    IndexDamaged with the sentence to show. `where`: the store, said for a person."""
    if owner.index_id is not None:
        if owner.index_id == config_id or not config_id:
            return None
        raise IndexDamaged(
            f"{where} belongs to another index (at {owner.path or 'an unknown folder'}): "
            "one index per database; give this index its own database (or PostgreSQL "
            "schema), see docs/SCALE.md")
    if claimed:
        raise IndexDamaged(
            f"{where} holds no anyfind index although this index wrote one there: it "
            "was emptied or replaced. Restore it from a backup, or start the index again "
            "(remove the index folder and run `anyfind index` on its sources)")
    if owner.holds_data and config_id:
        raise IndexDamaged(
            f"{where} already holds an index made by an older anyfind (its sources: "
            "`anyfind sources` there): one index per database; give this index its own "
            "database, see docs/SCALE.md")
    return config_id or new_index_id()
