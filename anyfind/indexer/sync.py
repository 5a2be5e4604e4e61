"""Sources and their syncs: adding folders, records and declared sources, syncing them,
removing files and sources, reindexing. What anyfind.Index's writing verbs run.

A source that fails as a whole (unreachable, bad credentials) is reported in the
SyncReport, keeps its items, and never stops the others; only the index's own storage
failing (a full disk) stops the run.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import default_text_space
from ..connectors.filesystem import display_path
from ..errors import ConfigError, ExecutorError, one_line
from ..secrets import expand_env, mask_options, mask_uri, redact
from ..sources import SourceSpec, check_name, infer_kind, load_config, normalise_uri, stored_form
from .pipeline import Pipeline
from .report import SyncReport, VectorsPending

if TYPE_CHECKING:
    from ..core import OpenIndex

log = logging.getLogger("anyfind.sources")


def folder_uri(root: Path) -> str:
    """How a folder source is stored: its path, or a file:// URI (its exact bytes,
    percent-encoded) when the name is not valid UTF-8 and could not be stored as text."""
    text = str(root)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return root.as_uri()
    return text


# -- adding and syncing ------------------------------------------------------------------------
def add_folders(opened: OpenIndex, paths: Iterable[str | os.PathLike], *,
                include: Sequence[str] = (), exclude: Sequence[str] = (), hidden: bool = False,
                progress: bool = False) -> SyncReport:
    """Index folders or files (each becomes a filesystem source) and sync them."""
    report = SyncReport()
    store = opened.store
    with opened.lock:
        opened.check_vector_services()
        for p in paths:
            root = Path(os.fsdecode(p)).expanduser().absolute()
            if not root.exists():
                raise ConfigError(f"no such file or folder: {display_path(root)}")
            options = {"include": list(include), "exclude": list(exclude), "hidden": hidden}
            name = _source_name_for(opened, root)
            store.ensure_source(name, "filesystem", folder_uri(root), options)
            row = store.source_by_name(name)
            report.merge(sync_source(opened, row, None, progress, retry_errors=False))
    return report


def add_documents(opened: OpenIndex, source: str, records: Iterable[Any], *,
                  progress: bool = False) -> SyncReport:
    """Index in-memory records as the source `source` (it then holds exactly these)."""
    from ..connectors.records import RecordsConnector

    store = opened.store
    with opened.lock:
        opened.check_vector_services()
        existing = store.source_by_name(source)
        if existing is not None and existing["kind"] != "records":
            raise ConfigError(f"source '{source}' exists and is a {existing['kind']} source")
        uri = f"records:{source}"
        source_id = store.ensure_source(source, "records", uri, {})
        return Pipeline(opened, progress=progress).sync(source_id, RecordsConnector(uri, records))


MAX_FOLDER_NAME = 180


def _source_name_for(opened: OpenIndex, root: Path) -> str:
    existing = {s["name"]: s for s in opened.store.sources()}
    for s in existing.values():
        if s["kind"] == "filesystem" and s["uri"] in (str(root), folder_uri(root)):
            return s["name"]
    # A source name is at most 200 characters in the store (PostgreSQL enforces it, a
    # folder's name may hold 255 bytes): room is left for the "-N" of a second folder.
    base = (display_path(root.name) or "root")[:MAX_FOLDER_NAME]
    name, n = base, 2
    while name in existing:
        name, n = f"{base}-{n}", n + 1
    return name


def sync_sources(opened: OpenIndex, sources: Sequence[str] | None = None, *,
                 progress: bool = False, retry_errors: bool = False) -> SyncReport:
    """Re-sync sources (all by default) incrementally; declared ones are registered (or
    updated) first."""
    report = SyncReport()
    with opened.lock:
        opened.check_vector_services()
        declared = opened.declared()
        for spec in declared.values():
            _register(opened, spec)
        known = {s["name"]: s for s in opened.store.sources()}
        names = list(sources) if sources else list(known)
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"no source named '{missing[0]}' (see `anyfind sources list`)")
        for name in names:
            if known[name]["kind"] == "records":
                continue  # in-memory records have no origin to re-read (add_documents)
            report.merge(sync_source(opened, known[name], declared.get(name), progress,
                                     retry_errors))
    return report


def sync_source(opened: OpenIndex, row: dict[str, Any], spec: SourceSpec | None,
                progress: bool, retry_errors: bool) -> SyncReport:
    """Sync one source; any failure of the source as a whole is reported, not raised,
    and leaves its items as they were."""
    name = row["name"]
    shown = mask_uri(row["uri"])
    connector = None
    secrets: list[str] = opened.service_secrets()
    try:
        connector = opened.connector(row, spec)
        secrets = connector.secrets + secrets
        shown = connector.describe()
        log.info("syncing source %s (%s) %s", name, row["kind"], shown)
        report = Pipeline(opened, progress=progress).sync(row["id"], connector, retry_errors)
        opened.store.set_source_state(row["id"], {**connector.sync_state(), "last_error": None})
        return report
    except VectorsPending as pending:  # the items are in; their vector store is behind
        message = redact(f"items written, their vectors pending (the next sync catches "
                         f"them up): {_vector_store_failure(opened, pending.cause)}", secrets)
        # INFO: the report carries it (the CLI prints it once, at the end)
        log.info("source %s (%s): %s", name, shown, message)
        opened.store.set_source_state(row["id"], {**connector.sync_state(),
                                                  "last_error": message,
                                                  "failed_at": time.time()})
        report = pending.report
        report.failed_sources.append(name)
        report.errors.append({"source": name, "path": shown, "error": message})
        return report
    except Exception as exc:  # one source failing never stops the others
        if opened.storage_failed(exc) or isinstance(exc, ExecutorError):
            raise  # the index cannot be written, or nothing can encode: no later source could
        message = redact(one_line(exc), secrets)
        log.info("source %s (%s) failed: %s", name, shown, message)  # in the report
        state = {**(row.get("state") or {}), "last_error": message, "failed_at": time.time()}
        opened.store.set_source_state(row["id"], state, synced=False)
        report = SyncReport(failed_sources=[name])
        report.errors.append({"source": name, "path": shown, "error": message})
        return report
    finally:
        if connector is not None:
            connector.close()


# -- declared sources -----------------------------------------------------------------------------
def add_source(opened: OpenIndex, name: str, uri: str, kind: str | None = None, *,
               replace: bool = False, **options: Any) -> dict[str, Any]:
    """Declare a source (not synced yet). `${ENV}` references are kept as references;
    literal credentials go to secrets.json."""
    check_name(name)
    options = {k: v for k, v in options.items() if v not in (None, (), [], {})}
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    kind = kind or infer_kind(expand_env(uri), options)
    spec = SourceSpec(name, normalise_uri(kind, uri), kind, options)
    _check_options(spec)
    with opened.lock:
        if opened.store.source_by_name(name) is not None and not replace:
            raise ConfigError(f"a source named '{name}' exists (remove it, or pass replace)")
        _register(opened, spec)
    return next(s for s in list_sources(opened) if s["name"] == name)


def remove_source(opened: OpenIndex, name: str) -> int:
    """Forget a source with its items and vectors; how many items went."""
    if name in opened.declared():
        raise ConfigError(f"source '{name}' is declared in a config file: remove it there")
    store = opened.store
    with opened.lock:
        row = store.source_by_name(name)
        if row is None:
            raise ConfigError(f"no source named '{name}' (see `anyfind sources list`)")
        n = len(store.items_of_source(row["id"]))
        store.delete_source(row["id"])
        opened.secrets.put(f"source:{name}", {})
        shutil.rmtree(opened.workdir(row["id"]), ignore_errors=True)
        opened.refresh_vectors(save=True)
    return n


def list_sources(opened: OpenIndex) -> list[dict[str, Any]]:
    """Every source, stored or declared in a config file, credentials masked."""
    declared = opened.declared()
    out = []
    for row in opened.store.sources():
        out.append(_public(row, declared.pop(row["name"], None)))
    for spec in declared.values():  # declared, never synced yet
        uri, options, _ = stored_form(spec)
        out.append(_public({"name": spec.name, "kind": spec.kind, "uri": uri,
                            "options": options, "items": 0, "synced_at": None,
                            "state": {}, "id": None}, spec))
    return sorted(out, key=lambda s: s["name"])


def use_config(opened: OpenIndex, path: str | os.PathLike) -> None:
    """Also read sources from this TOML file (beside <index>/anyfind.toml)."""
    load_config(path)  # fail early on a bad file
    opened.config_files.append(Path(path).expanduser().absolute())


def _public(row: dict[str, Any], spec: SourceSpec | None) -> dict[str, Any]:
    keep = ("id", "name", "kind", "uri", "options", "items", "created_at", "synced_at", "state")
    out = {k: row.get(k) for k in keep}
    out["uri"] = mask_uri(out["uri"])
    out["options"] = mask_options(out["options"] or {})
    out["origin"] = spec.origin if spec is not None else "store"
    return out


def _check_options(spec: SourceSpec) -> None:
    from ..connectors import connectors

    allowed = connectors.get(spec.kind).option_names
    if allowed is not None:
        unknown = sorted(set(spec.options) - set(allowed))
        if unknown:
            raise ConfigError(f"{spec.kind} sources do not take option(s) "
                              f"{', '.join(unknown)} (known: {', '.join(sorted(allowed))})")


def _register(opened: OpenIndex, spec: SourceSpec) -> int:
    """Upsert a source into the store in its safe form (credentials out)."""
    uri, options, found = stored_form(spec)
    if spec.origin == "store":  # config-file sources keep their secrets in the file
        opened.secrets.put(f"source:{spec.name}", found)
    return opened.store.ensure_source(spec.name, spec.kind, uri, options)


# -- removing and rebuilding ------------------------------------------------------------------------
def item_ids_at(opened: OpenIndex, paths: Iterable[str | os.PathLike]) -> list[int]:
    """Ids of the items at these paths (files, or everything under a folder); a path may
    hold bytes that are not UTF-8 (matched by its file:// URI)."""
    wanted = [Path(os.fsdecode(p)).expanduser().absolute() for p in paths]
    store = opened.store
    return sorted(set(store.item_ids_by_path([display_path(p) for p in wanted]))
                  | set(store.item_ids_by_uri([p.as_uri() for p in wanted])))


def remove_paths(opened: OpenIndex, paths: Iterable[str | os.PathLike]) -> int:
    """Forget items at these paths (files, or everything under a folder)."""
    with opened.lock:
        ids = item_ids_at(opened, paths)
        opened.store.delete_items(ids)
        opened.refresh_vectors(save=True)
    return len(ids)


def reindex(opened: OpenIndex, *, text_model: str | None = None, progress: bool = False
            ) -> SyncReport:
    """Re-extract and re-embed everything (optionally with another text model). With the
    same models, items are replaced batch by batch (the index stays searchable). A new
    model makes the old vectors meaningless, so they are dropped first."""
    store = opened.store
    if not text_model or text_model == opened.config.spaces["text"].model:
        with opened.lock:
            store.forget_fingerprints()
            return sync_sources(opened, progress=progress)
    with opened.lock:
        store.delete_items([row.id for s in store.sources()
                            for row in store.items_of_source(s["id"]).values()])
        opened.replace_space("text", default_text_space(text_model))
        opened.forget_vectors(remove_files=True)
        for space in opened.spaces.values():
            space.config.dim = space.encoder.dim
            space.config.identity = space.encoder.identity()
            store.reset_space(space.name, space.config.dim)
        opened.save_config()
        return sync_sources(opened, progress=progress)


def reread_pixels(opened: OpenIndex, engine: str | None = None, *, progress: bool = False
                  ) -> SyncReport:
    """Read the text of every image and PDF again (`engine`: with another OCR engine, kept
    in the config): they are marked changed and the sync re-extracts them; the rest of
    the index is untouched."""
    from sqlalchemy import or_, select

    from ..store.metadata import mark_changed
    from ..store.schema import Item

    with opened.lock:
        if engine is not None:
            opened.set_ocr(engine)
        opened.config.ocr_read_with = {}  # the first read of this sync records its engine
        opened.save_config()
        with opened.store.engine.begin() as conn:
            ids = conn.execute(select(Item.id).where(or_(
                Item.modality == "image", Item.media_type == "application/pdf"))).scalars().all()
            mark_changed(conn, ids)
        return sync_sources(opened, progress=progress)


def _vector_store_failure(opened: OpenIndex, cause: BaseException) -> str:
    """One line that names the vector store (a service's client errors often do not):
    "Milvus at milvus://HOST:PORT?token=***: failed to connect ..."."""
    from ..secrets import query_params

    where = mask_uri(opened.config.vector_store or "faiss")
    text = getattr(cause, "message", None) or one_line(cause)  # pymilvus: its own sentence
    # Named already (our errors name it masked, with its token's value, not its ${ENV}
    # reference as config.json keeps it): not twice.
    base = mask_uri(query_params(opened.config.vector_store or "faiss")[0])
    return text if where in text or base in text else f"the vector store {where}: {text}"
