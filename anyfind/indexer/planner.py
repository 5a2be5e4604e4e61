"""The sync planner: compare what a connector sees with what the store holds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..connectors.base import ItemRef


@dataclass
class Plan:
    new: list[ItemRef] = field(default_factory=list)
    changed: list[tuple[ItemRef, Any]] = field(default_factory=list)  # (ref, stored row)
    unchanged: list[tuple[ItemRef, Any]] = field(default_factory=list)
    deleted: list[Any] = field(default_factory=list)  # stored rows no longer present

    def summary(self) -> dict[str, int]:
        return {"new": len(self.new), "changed": len(self.changed),
                "unchanged": len(self.unchanged), "deleted": len(self.deleted)}


_LEGACY = re.compile(r"\d+:\d+(\+\d+:\d+)*")  # size:mtime_ns[+...] before inodes were kept
_WITH_INODE = re.compile(r"\d+:\d+:\d+(\+\d+:\d+:\d+)*")


def same_version(stored: str | None, current: str) -> bool:
    """Whether a stored fingerprint says the item is unchanged. A local file's from before
    the inode was part of it (`size:mtime`) matches the same size and mtime with any inode:
    an upgraded index does not read every file again to learn them."""
    if stored == current:
        return True
    if stored and _LEGACY.fullmatch(stored) and _WITH_INODE.fullmatch(current):
        return stored == "+".join(part.rsplit(":", 1)[0] for part in current.split("+"))
    return False


def plan_sync(refs: list[ItemRef], stored: dict[str, Any], retry_errors: bool = False) -> Plan:
    """Cheap first pass on fingerprints (size+mtime, blob id, ETag): no content is read.

    Content hashes then confirm changes and recognise renames (see pipeline)."""
    plan = Plan()
    seen: set[str] = set()
    for ref in refs:
        if ref.uri in seen:  # a connector listing one item twice
            continue
        seen.add(ref.uri)
        row = stored.get(ref.uri)
        if ref.unavailable is not None:  # could not be checked now: keep what is stored
            if row is not None:
                plan.unchanged.append((ref, row))
            continue
        if row is None:
            plan.new.append(ref)
        elif not same_version(row.fingerprint, ref.fingerprint) or (
                retry_errors and row.status == "error"):
            plan.changed.append((ref, row))
        else:
            plan.unchanged.append((ref, row))
    plan.deleted = [row for uri, row in stored.items() if uri not in seen]
    return plan
