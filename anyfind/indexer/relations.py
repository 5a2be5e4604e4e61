"""A note's links, resolved to the items they name, after each sync of its source.

Obsidian's rules: a path link (`![alt](../images/x.png)`, `[t](notes/a.md)`) is a path
from the note's folder; a wikilink (`[[Note]]`, `![[x.png]]`) names a file by its path
from the vault's root, else by its name (`.md` implied), the shortest path winning when
several files share it, else by a note's alias; case does not matter. Only the source's
own items can be named, so a link never leads out of the folder it was found in. What
matches nothing stays unresolved (its text kept) and is tried again at the next sync, so
a note written before its screenshot finds it later; a deleted target's links fall back
to unresolved (the store's ON DELETE SET NULL)."""

from __future__ import annotations

import os
import posixpath
from typing import Any
from urllib.parse import unquote_to_bytes


def _path(uri: str) -> str:
    if uri.startswith("file://"):
        return os.fsdecode(unquote_to_bytes(uri[len("file://"):]))
    return uri


class Names:
    """Where the source's items are, by path and by name (lower-cased)."""

    def __init__(self, items: list[tuple[int, str, list[str]]]):
        self.by_path: dict[str, int] = {}
        self.by_name: dict[str, list[tuple[int, int, str]]] = {}
        self.by_alias: dict[str, int] = {}
        paths = {item_id: _path(uri) for item_id, uri, _ in items}
        self.path_of = {item_id: path.lower() for item_id, path in paths.items()}
        self.root = posixpath.commonpath(list(paths.values())) if len(paths) > 1 else ""
        if len(paths) == 1:
            self.root = posixpath.dirname(next(iter(paths.values())))
        for item_id, path in paths.items():
            key = path.lower()
            self.by_path.setdefault(key, item_id)
            name = posixpath.basename(key)
            self.by_name.setdefault(name, []).append((key.count("/"), len(key), item_id))
            if name.endswith(".md"):
                self.by_name.setdefault(name[:-3], []).append((key.count("/"), len(key), item_id))
        for item_id, _, aliases in items:
            for alias in aliases if isinstance(aliases, list) else ():
                self.by_alias.setdefault(str(alias).lower(), item_id)

    def resolve(self, note_path: str, target: str, wiki: bool) -> int | None:
        target = target.strip().replace("\\", "/")
        if not target or "\0" in target:
            return None
        low = target.lower()
        if not wiki:  # a path from the note's folder (never out of the source: only its items)
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(note_path.lower()), low))
            return self.by_path.get(joined)
        for candidate in (low, low + ".md"):
            found = self.by_path.get(posixpath.normpath(posixpath.join(self.root.lower(),
                                                                       candidate)))
            if found is not None:
                return found
        named = self.by_name.get(posixpath.basename(low))
        if named:
            if "/" in low:  # a partial path: the files whose path ends with it
                named = [n for n in named if self.path_of[n[2]].endswith("/" + low)
                         or self.path_of[n[2]].endswith("/" + low + ".md")] or named
            return min(named)[2]  # the shortest path
        return self.by_alias.get(low)


def resolve_links(store: Any, source_id: int) -> int:
    """Resolve the source's unresolved links to its items; how many were resolved."""
    pending = store.unresolved_relations(source_id)
    if not pending:
        return 0
    names = Names(store.link_targets(source_id))
    found = []
    for relation_id, _note, from_uri, target, wiki in pending:
        item_id = names.resolve(_path(from_uri), target, wiki)
        if item_id is not None:  # a note embedding itself included: one row, no loop
            found.append((relation_id, item_id))
    if found:
        store.resolve_relations(found)
    return len(found)
