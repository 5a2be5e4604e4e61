"""Items found inside other items (an e-mail's attachments): how they are listed, and how
an attachment's bytes are cut again from its parent's content when someone asks for them.

A child is written with its parent (indexer/pipeline.py), replaced with it, moved or
copied with it and deleted with it (store/metadata.py); the sync planner never sees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import AnyfindError

if TYPE_CHECKING:
    from ..extract.base import Child
    from ..index import Index
    from ..store.metadata import Store


class ContentUnavailable(AnyfindError):
    """An item's bytes cannot be given back (its parent changed or cannot be read)."""


def family_children(store: Store, item_id: int) -> list[dict[str, Any]]:
    """The items found inside this one, as shown by `anyfind show` and the API."""
    out = []
    for row in store.children_of(item_id):
        info = (row.get("meta") or {}).get("attachment") or {}
        out.append({"id": row["id"], "path": row["path"], "name": info.get("name"),
                    "modality": row["modality"], "media_type": row["media_type"],
                    "size": row["size"], "status": row["status"], "error": row["error"]})
    return out


def attachment_of(index: Index, item_id: int) -> Child:
    """Re-cut a child's bytes: read the top-level item through its source's connector,
    then take the n-th child of each level down. The bytes must still hash to what was
    indexed (the e-mail may have changed since the last sync)."""
    from ..connectors.base import Blob, ItemRef
    from ..extract import extract
    from .pipeline import content_hash

    chain = []
    row = index.store.item(item_id)
    if row is None:
        raise ContentUnavailable(f"no item {item_id}")
    while row["parent_id"] is not None:
        chain.append(row)
        parent = index.store.item(row["parent_id"])
        if parent is None:
            raise ContentUnavailable(f"item {item_id} belongs to an item that no longer "
                                     "exists (`anyfind check --repair` removes it)")
        row = parent
    if not chain:
        raise ContentUnavailable(f"item {item_id} is not inside another item")
    source = next((s for s in index.store.sources() if s["id"] == row["source_id"]), None)
    if source is None:
        raise ContentUnavailable(f"item {item_id} has no source")
    connector = index.connector(source)
    try:
        ref = ItemRef(uri=row["uri"], path=row["path"], size=row["size"], mtime=row["mtime"],
                      fingerprint=row["fingerprint"] or "", media_type=row["media_type"])
        data = connector.open(ref).read()
    finally:
        connector.close()
    name, media_type = row["path"], row["media_type"]
    for child in reversed(chain):
        n = int(((child.get("meta") or {}).get("attachment") or {}).get("index") or 0)
        found = extract(Blob.from_bytes(data, path=name), media_type).children
        if not 1 <= n <= len(found):
            raise ContentUnavailable(f"item {child['id']} is no longer in its parent; re-sync")
        data, name, media_type = found[n - 1].data, found[n - 1].name, child["media_type"]
    if content_hash(Blob.from_bytes(data)) != chain[0]["content_hash"]:
        raise ContentUnavailable(f"item {item_id} changed since it was indexed; re-sync")
    from ..extract.base import Child

    return Child(name, media_type, data)
