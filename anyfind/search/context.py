"""Where a result sits among notes (vaults): the notes that embed or link it, with the
passage around the embed, and for a note the media it embeds (marked when they match
the same query). One read of the relations table per page, never a search per result."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

MAX_NOTES = 5  # notes listed per result
MAX_EMBEDS = 10
log = logging.getLogger("anyfind.search")


def add_context(results: Sequence[Any], reader: Any) -> None:
    """Fill `linked_from` and `embeds` of each result from the store's relations."""
    ids = [r.item_id for r in results]
    try:
        rows = reader.relations_of(ids)
    except Exception:  # noqa: BLE001 (a store from before relations: no context, results stand)
        log.debug("no relations read", exc_info=True)
        return
    shown = set(ids)
    for r in results:
        into = [row for row in rows if row["to_item"] == r.item_id
                and row["from_item"] != r.item_id]
        # An embed says more than a link: embedding notes first.
        into.sort(key=lambda row: (row["kind"] != "embed", row["from_item"], row["position"]))
        seen: set[int] = set()
        for row in into:
            if row["from_item"] in seen:
                continue
            seen.add(row["from_item"])
            r.linked_from.append({"id": row["from_item"], "path": row["from_path"],
                                  "title": row["from_title"], "kind": row["kind"],
                                  "heading": row["heading"], "passage": row["passage"]})
            if len(r.linked_from) == MAX_NOTES:
                break
        out = [row for row in rows if row["from_item"] == r.item_id
               and row["kind"] == "embed" and row["to_item"] is not None
               and row["to_item"] != r.item_id]
        for row in out[:MAX_EMBEDS]:
            r.embeds.append({"id": row["to_item"], "path": row["to_path"],
                             "heading": row["heading"], "matches": row["to_item"] in shown})


GROUP_DEPTH = 3  # results looked at per group asked for


class Group:
    """One card of the grouped view: a note with its matching passages and the matching
    items it embeds or links (screenshots, recordings, videos), or an e-mail with its
    matching attachments, ranked as a whole by its best member; or an item that nothing
    holds, alone."""

    def __init__(self, note: dict[str, Any] | None, first: Any):
        self.note = note  # {"id", "path", "title"}: the note or e-mail; None: a lone item
        self.score = first.score
        self.results = [first]

    def add(self, result: Any) -> None:
        self.results.append(result)
        self.score = max(self.score, result.score)

    def to_dict(self) -> dict[str, Any]:
        return {"note": self.note, "score": self.score,
                "results": [r.to_dict() for r in self.results]}


def _home(r: Any) -> tuple[Any, dict[str, Any] | None]:
    """The card a result belongs on: (key, the holder's {id, path, title} or None)."""
    if r.media_type == "text/markdown":
        return r.item_id, {"id": r.item_id, "path": r.path, "title": r.title}
    if r.parent:  # an attachment: on its e-mail's card
        return r.parent["id"], {"id": r.parent["id"], "path": r.parent.get("path"),
                                "title": None}
    if r.linked_from:  # embeds first (add_context's order): the note it belongs to
        home = r.linked_from[0]
        return home["id"], {k: home[k] for k in ("id", "path", "title")}
    return r.item_id, None  # alone, unless its attachments come to it


def grouped(results: Sequence[Any], k: int) -> list[Group]:
    """The results as at most `k` cards: each note with what of it matched (its own
    passages, the media it embeds, then links), each e-mail with its matching
    attachments, each other item alone; best card first."""
    groups: dict[Any, Group] = {}
    for r in results:
        key, note = _home(r)
        if key in groups:
            group = groups[key]
            group.add(r)
            if group.note is None and r.item_id != key:  # an e-mail its attachment joins
                first = group.results[0]
                group.note = {"id": first.item_id, "path": first.path, "title": first.title}
            elif group.note is not None and r.item_id == key:  # the holder itself
                group.note = {"id": r.item_id, "path": r.path, "title": r.title}
        else:
            groups[key] = Group(note, r)
    ordered = sorted(groups.values(), key=lambda g: -g.score)  # stable: rank order on ties
    return ordered[:k]
