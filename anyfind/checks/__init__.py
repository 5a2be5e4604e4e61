"""`anyfind check [--repair]`: verify that an index is consistent, and repair it without
re-embedding anything.

Checked: config.json readable and matching the store (schema version, spaces, dimensions);
SQLite integrity; the store's invariants (checks/store.py); each FAISS file against the
store (checks/files.py); the lexical index and its tantivy cache when there are
(checks/lexical.py); temporary files left by an interrupted write. Everything is read
from one snapshot, so a check may run while a writer works. A repair takes the write lock.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ..config import SCHEMA_VERSION, IndexConfig
from ..core.reading import ocr_change
from ..errors import IndexDamaged
from ..store.schema import Chunk, Item
from .files import (
    check_temp_files,
    check_vector_file,
    check_vector_service,
    load_vector_file,
    repair_vector_file,
)
from .lexical import check_lexical, check_lexical_backends, rebuild_lexical
from .report import ERROR, WARNING, CheckReport, Finding
from .snapshot import SnapshotVectors, snapshot
from .store import check_store, repair_store

if TYPE_CHECKING:
    from ..core import OpenIndex

__all__ = ["CheckReport", "Finding", "check_index"]


def check_index(index: OpenIndex, repair: bool = False) -> CheckReport:
    """Check `index`; with repair, fix what can be fixed (under the write lock) and say
    what the next sync has to re-embed."""
    if not repair:
        return _inspect(index)[0]
    with index.lock:
        before, plan = _inspect(index)
        if plan.get("refused"):  # nothing here is this index's to repair
            return before
        refused = CheckReport(before.index)  # what repairing would have had to delete
        _repair(index, before, plan, refused)
        after, _ = _inspect(index)
    codes = after.codes()
    for f in before.findings:
        f.repaired = f.code not in codes
    seen = {f.code for f in before.findings}
    after.findings = (before.findings + [f for f in after.findings if f.code not in seen]
                      + refused.findings)
    after.repaired, after.resync = True, before.resync
    return after


def _inspect(index: OpenIndex) -> tuple[CheckReport, dict[str, Any]]:
    report = CheckReport(str(index.path))
    plan: dict[str, Any] = {"spaces": {}}
    _check_config(index, report)
    try:
        index.store  # noqa: B018 (opening it compares its owner with this index's)
    except IndexDamaged as exc:
        report.add("store-refused", ERROR, str(exc))
        plan["refused"] = True
        return report, plan
    files, services = {}, {}
    for name, cfg in index.config.spaces.items():
        if cfg.dim:
            vi = index.vector_store(name, load=False)  # the checks read its files themselves
            if vi.files:
                files[name] = (vi, load_vector_file(vi))
            else:
                services[name] = vi
    with snapshot(index.store.engine.url) as conn:
        plan["store"] = check_store(conn, index, report)
        report.stats["items"] = conn.execute(select(func.count()).select_from(Item)).scalar_one()
        report.stats["failed"] = conn.execute(select(func.count()).where(
            Item.status == "error")).scalar_one()
        report.stats["chunks"] = conn.execute(select(func.count()).select_from(Chunk)).scalar_one()
        plan["lexical"] = check_lexical(conn, index.store.engine, report)
        plan["lexical_backends"] = check_lexical_backends(conn, index.lexical, report)
        bad_sizes = {space for space, _ in plan["store"].get("bad_size", [])}
        spaces: dict[str, Any] = {}
        for name, (vi, state) in files.items():
            if name not in bad_sizes:
                spaces[name] = check_vector_file(vi, state, SnapshotVectors(conn), report)
        for name, vs in services.items():
            if name not in bad_sizes:
                spaces[name] = check_vector_service(vs, SnapshotVectors(conn), report)
        report.stats["spaces"] = {n: {k: v for k, v in s.items() if k not in ("rebuild", "save")}
                                  for n, s in spaces.items()}
        plan["spaces"] = spaces
    plan["temp"] = check_temp_files(index.path, report)
    return report, plan


def _check_config(index: OpenIndex, report: CheckReport) -> None:
    try:
        on_disk = IndexConfig.load(index.path)
    except Exception as exc:
        report.add("config-unreadable", ERROR, f"config.json cannot be read: {exc}")
        return
    if on_disk.schema_version != SCHEMA_VERSION:
        report.add("config-schema", ERROR, f"config.json is schema v{on_disk.schema_version}, "
                   f"this anyfind writes v{SCHEMA_VERSION}")
    for name, cfg in on_disk.spaces.items():
        if not cfg.dim:
            report.add("config-space", ERROR, f"space '{name}' has no dimension in config.json")
    changed = ocr_change(index)
    if changed:
        report.add("ocr-changed", WARNING, changed[0].upper() + changed[1:])


def _repair(index: OpenIndex, report: CheckReport, plan: dict[str, Any],
            refused: CheckReport) -> None:
    for path in plan["temp"]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    store_plan = plan["store"]
    if store_plan:
        repair_store(index.store.engine, index, store_plan, report)
    if plan["lexical"]:
        with index.store.engine.begin() as conn:
            rebuild_lexical(conn)
    if store_plan:
        index.refresh_lexical()
    for backend in plan["lexical_backends"]:
        try:
            backend.reconcile(index.store)
        except IndexDamaged as exc:  # never delete what the store cannot explain
            refused.add("service-unexplained", ERROR, str(exc))
    index.forget_vectors()  # in-memory copies are stale now
    for name, cfg in index.config.spaces.items():
        if not cfg.dim:
            continue
        # a space left out of the file checks (its vectors had the wrong size): rebuild
        stats = plan["spaces"].get(name) or {"rebuild": True, "save": True}
        if stats["rebuild"] or stats["save"] or store_plan:
            vi = index.vector_store(name, load=False)
            if not vi.files:  # a vector service: reconciled whole, nothing to rebuild
                vi.load()
                try:
                    vi.reconcile(index.store)
                except IndexDamaged as exc:  # never delete what the store cannot explain
                    refused.add("service-unexplained", ERROR, str(exc))
                    continue
                vi.persist()
                if getattr(vi, "lost", 0):
                    report.add("vectors-lost", WARNING, f"{vi.lost} vectors of space '{name}' "
                               f"were missing from {vi.describe()} and the store no longer "
                               "keeps them: their items are read and encoded again by the "
                               "next `anyfind sync`", vi.lost)
                continue
            rebuild = stats["rebuild"] or not vi.load()
            repair_vector_file(vi, index.store, rebuild)
