"""The sync planner: compare what a connector sees with what the store holds."""

from __future__ import annotations

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
        elif row.fingerprint != ref.fingerprint or (retry_errors and row.status == "error"):
            plan.changed.append((ref, row))
        else:
            plan.unchanged.append((ref, row))
    plan.deleted = [row for uri, row in stored.items() if uri not in seen]
    return plan
