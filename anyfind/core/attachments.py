"""An attachment's bytes, cut again from its parent's current content when someone asks
(`/api/items/N/content`, `Index.attachment`). A child is written with its parent
(indexer/pipeline.py), replaced, moved, copied and deleted with it (store/metadata.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ContentUnavailable, check_id

if TYPE_CHECKING:
    from ..extract.base import Child
    from .open_index import OpenIndex


def attachment_of(opened: OpenIndex, item_id: int) -> Child:
    """Re-cut a child's bytes: read the top-level item through its source's connector,
    then take the n-th child of each level down. The bytes must still hash to what was
    indexed (the e-mail may have changed since the last sync)."""
    from ..connectors.base import Blob, ItemRef, content_hash
    from ..extract import extract
    from ..extract.base import Child

    item_id = check_id(item_id)
    store = opened.store
    chain = []
    row = store.item(item_id)
    if row is None:
        raise ContentUnavailable(f"no item {item_id}")
    while row["parent_id"] is not None:
        chain.append(row)
        parent = store.item(row["parent_id"])
        if parent is None:
            raise ContentUnavailable(f"item {item_id} belongs to an item that no longer "
                                     "exists (`anyfind check --repair` removes it)")
        row = parent
    if not chain:
        raise ContentUnavailable(f"item {item_id} is not inside another item")
    source = next((s for s in store.sources() if s["id"] == row["source_id"]), None)
    if source is None:
        raise ContentUnavailable(f"item {item_id} has no source")
    connector = opened.connector(source)
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
    return Child(name, media_type, data)
