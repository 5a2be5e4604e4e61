"""What is related to one item, each with its reason: the notes and files it links or
embeds and those that link or embed it (vault relations), the e-mail it is attached to
and the attachments it holds (containment: `items.parent_id`, read here as one more
relation), then the items most like it in any modality ("similar 0.83"). `unlinked` keeps only the similar ones not linked already
(what a note should perhaps link to, and does not)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import QueryError
from .similar import similar

if TYPE_CHECKING:
    from ..core import OpenIndex

REASONS = {("out", "embed"): "embeds", ("out", "link"): "links to",
           ("in", "embed"): "embedded in", ("in", "link"): "linked from"}


def related(index: OpenIndex, item_id: int, *, k: int = 10, unlinked: bool = False
            ) -> list[dict[str, Any]]:
    """[{"id", "path", "reason", "heading", "score"}]: linked items first (score None),
    then up to `k` similar ones (their calibrated score)."""
    item = index.store.item(item_id)
    if item is None:
        raise QueryError(f"no item {item_id}")
    linked: list[dict[str, Any]] = []
    seen = {int(item_id)}
    for row in index.store.relations_of([item_id]):
        if row["from_item"] == item_id and row["to_item"] is not None:
            other, path, way = row["to_item"], row["to_path"], "out"
        elif row["to_item"] == item_id:
            other, path, way = row["from_item"], row["from_path"], "in"
        else:
            continue
        if other in seen:
            continue
        seen.add(other)
        linked.append({"id": other, "path": path, "reason": REASONS[(way, row["kind"])],
                       "heading": row["heading"], "score": None})
    parent = index.store.parent_of(item_id)
    inside = [(parent["id"], parent["path"], "attached to")] if parent else []
    inside += [(c["id"], c["path"], "attachment") for c in index.store.children_of(item_id)]
    for other, path, reason in inside:
        if other not in seen:
            seen.add(other)
            linked.append({"id": other, "path": path, "reason": reason, "heading": "",
                           "score": None})
    try:
        near = similar(index, item_id, k=k + len(seen))
    except QueryError:  # an item without vectors (skipped, failed): its links still count
        near = []
    alike = [{"id": r.item_id, "path": r.path, "reason": f"similar {r.score:.2f}",
              "heading": "", "score": r.score} for r in near if r.item_id not in seen][:k]
    return alike if unlinked else linked + alike
