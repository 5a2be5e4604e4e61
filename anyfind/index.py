"""The Index: one directory holding a config, a metadata store and a vector file per space.

    from anyfind import Index
    index = Index.open("notes")          # a name under ANYFIND_HOME, or a path
    index.add(["~/notes"])               # adds a filesystem source and syncs it
    for r in index.search("tax deadline"):
        print(r.score, r.path, r.text)
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import (
    CONFIG_FILE,
    IndexConfig,
    SpaceConfig,
    clip_space,
    default_tagger,
    default_text_space,
    default_transcriber,
    resolve_index_path,
)
from .connectors import connector_for
from .connectors.filesystem import display_path
from .errors import AnyfindError, ConfigError, IndexNotFound, ModelMismatch
from .indexer.children import family_children
from .indexer.report import SyncReport
from .iofaults import storage_errno, unwritable
from .lock import WriteLock
from .search.engine import Query, Searcher
from .search.filters import Filters
from .search.results import Result
from .secrets import (
    SecretFile,
    expand_env,
    mask_options,
    mask_uri,
    redact,
    restore_uri_secrets,
    split_uri_secrets,
)
from .sources import (
    CONFIG_NAME,
    SourceSpec,
    check_name,
    infer_kind,
    load_config,
    normalise_uri,
    runtime_form,
    stored_form,
)
from .store.vector_store import VECTOR_DIR, VectorStore, open_vector_store

if TYPE_CHECKING:
    from .checks import CheckReport
    from .store.metadata import Store
    from .store.reader import SQLiteReader

EMBED_SLICE = 256  # texts per encoder call inside a sorted window (progress granularity)
log = logging.getLogger("anyfind.sources")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, AnyfindError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{type(exc).__name__}: {exc.strerror}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


def _folder_uri(root: Path) -> str:
    """How a folder source is stored: its path, or a file:// URI (its exact bytes,
    percent-encoded) when the name is not valid UTF-8 and could not be stored as text."""
    text = str(root)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return root.as_uri()
    return text


def _mark_index_dir(path: Path) -> None:
    """The marker that keeps a folder scan out of this index (secrets, models, state),
    wherever the index lives; best effort on an index opened read-only."""
    from .fsutil import INDEX_MARKER

    marker = path / INDEX_MARKER
    if not marker.exists():
        try:
            marker.write_text("anyfind index: never indexed by a folder scan\n")
        except OSError:
            pass


class Space:
    """An embedding space at run time: its config, its encoder and its FAISS index."""

    def __init__(self, index: Index, config: SpaceConfig):
        self.index = index
        self.config = config
        self._encoder = None
        self._document_encoder = None
        self._export = None  # the ONNX query encoder, when the index holds a fresh export
        self._export_tried = False
        self.export_problem: str | None = None  # why the export cannot be used

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def encoder(self):
        if self._encoder is None:
            from .encoders import get_encoder

            enc = get_encoder(self.config.encoder, self.config.model, self.index.device,
                              **self.config.options)
            if self.config.dim is not None and enc.dim != self.config.dim:
                raise ModelMismatch(
                    f"space '{self.name}' holds {self.config.dim}-d vectors but model "
                    f"'{self.config.model}' gives {enc.dim}-d; run `anyfind reindex`"
                )
            self._encoder = enc
        return self._encoder

    def load_export(self):
        """The ONNX query encoder of this space, or None (export_problem says why)."""
        from .encoders.query import load_export

        encoder, self.export_problem = load_export(self.index.path, self.name,
                                                   self.config.identity, self.config.dim,
                                                   one_shot=self.index.one_shot_queries)
        return encoder

    @property
    def query_encoder(self):
        """What encodes queries: the fresh ONNX export (no torch), else `encoder`.
        Documents are always encoded by `encoder`."""
        if not self._export_tried:
            self._export = self.load_export()
            self._export_tried = True
        return self._export if self._export is not None else self.encoder

    @property
    def queries_use_torch(self) -> bool:
        return self._export_tried and self._export is None

    def accepts(self, modality: str) -> bool:
        return modality in self.encoder.modalities

    @property
    def document_encoder(self):
        """What encodes documents: the encoder, or with `onnx_int8` on a text space, its int8
        ONNX model (exported on first need); torch again, with a warning, if that fails."""
        if self._document_encoder is None:
            self._document_encoder = self.encoder
            if self.index.config.onnx_int8 and self.config.encoder == "sentence-transformers":
                enc, reason = self.index.int8_document_encoder(self)
                if enc is None:
                    log.warning("int8 document encoding is off for space '%s': %s",
                                self.name, reason)
                else:
                    self._document_encoder = enc
        return self._document_encoder


class Index:
    def __init__(self, path: Path, config: IndexConfig, device: str | None = None):
        self.path = Path(path)
        self.config = config
        self.device = device
        self.secrets = SecretFile(self.path)
        # Opened on first use: a search reads through `reader` and may never need it.
        self._store: Store | None = None
        self._reader: SQLiteReader | Store | None = None
        self._open_lock = threading.RLock()
        self.spaces = {name: Space(self, cfg) for name, cfg in config.spaces.items()}
        self.lock = WriteLock(self.path)
        self._vectors: dict[str, VectorStore] = {}
        self._lexical = None  # store.lexical_cache.Lexical, on first use
        self._chunker = None
        self._context = None
        self._tagger = None
        self._image_inputs = None
        self._label_vectors: dict[int, dict[str, np.ndarray]] = {}
        self._config_files: list[Path] = []
        # Searches may map vector files instead of reading them (store/vectors.py).
        self.map_vectors = False
        # A process that encodes a query or two and exits (CLI search): ONNX sessions skip
        # weight pre-packing (build ~5x faster, each encode ~2x slower: a win for one query).
        self.one_shot_queries = False

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, name_or_path: str | os.PathLike | None = None, *, create: bool = True,
             text_model: str | None = None, clip: bool = False, clip_model: str | None = None,
             clip_weights: str | None = None, clip_config: str | None = None,
             store_url: str | None = None,
             device: str | None = None, **settings: Any) -> Index:
        """Open an index by name or path; create it (with these settings) if missing.

        clip / clip_model / clip_weights add the shared image-text space (open_clip)."""
        path = resolve_index_path(name_or_path)
        wanted = {"text": default_text_space(text_model)} if text_model else {}
        clip_pretrained = settings.pop("clip_pretrained", None)
        if clip or clip_model or clip_weights or clip_config or clip_pretrained:
            wanted["vision"] = clip_space(clip_model, clip_weights, clip_pretrained, clip_config)
        if (path / CONFIG_FILE).exists():
            config = IndexConfig.load(path)
            config.check_models(wanted)
            _mark_index_dir(path)
        elif not create:
            raise IndexNotFound(f"no index at {path} (create one with `anyfind index PATH`)")
        else:
            masked_url, found = split_uri_secrets(store_url) if store_url else (None, {})
            config = IndexConfig(spaces={"text": default_text_space(text_model)},
                                 store_url=masked_url, transcriber=default_transcriber(),
                                 tagger=default_tagger())
            if "vision" in wanted:
                config.spaces["vision"] = wanted["vision"]
            for key, value in settings.items():
                if not hasattr(config, key):
                    raise ConfigError(f"unknown index setting '{key}'")
                setattr(config, key, value)
            from . import __version__

            config.anyfind_version = __version__
            path.mkdir(parents=True, exist_ok=True)
            _mark_index_dir(path)
            SecretFile(path).put("store_url", found)  # the password never in config.json
            index = cls(path, config, device)
            for space in index.spaces.values():
                space.config.dim = space.encoder.dim
                space.config.identity = space.encoder.identity()
            config.save(path)
            return index
        return cls(path, config, device)

    @property
    def store(self) -> Store:
        """The metadata store (SQLAlchemy): every write, filters, any database URL."""
        if self._store is None:
            with self._open_lock:
                if self._store is None:
                    from .store.metadata import Store

                    self._store = Store(self._store_url())
        return self._store

    @property
    def reader(self) -> SQLiteReader | Store:
        """What a search reads from: a sqlite3 reader when the store is a SQLite file at
        the current schema (no SQLAlchemy on the cold path), else the Store itself."""
        if self._reader is None:
            from . import profile
            from .store.reader import SQLiteReader

            with self._open_lock, profile.stage("metadata"):
                if self._reader is None:
                    reader = SQLiteReader.open(self._store_url())
                    self._reader = reader if reader is not None else self.store
        return self._reader

    @property
    def lexical(self):
        """The full-text search of a query: the tantivy cache beside a SQLite store while
        it is current, the store's own (FTS5, PostgreSQL) otherwise."""
        if self._lexical is None:
            from .store.lexical_cache import lexical_for

            with self._open_lock:
                if self._lexical is None:
                    self._lexical = lexical_for(self.path, self.reader,
                                                lambda: self.store.lexical)
        return self._lexical

    def refresh_lexical(self, checkpoint: bool = False) -> str | None:
        """Catch the tantivy cache up with the store (the writer, under its lock). A cache
        that cannot be written is left stale (searches use FTS5) with a warning: it is
        never worth failing a sync for."""
        from .store.lexical_cache import catch_up

        return catch_up(self.path, self._store_url(), checkpoint)

    def _store_url(self) -> str:
        if not self.config.store_url:
            return f"sqlite:///{self.path / 'meta.db'}"
        url = restore_uri_secrets(self.config.store_url, self.secrets.get("store_url"))
        return expand_env(url)

    def close(self) -> None:
        if self._lexical is not None:
            self._lexical.close()
        if self._reader is not None and self._reader is not self._store:
            self._reader.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def add(self, paths: Iterable[str | os.PathLike], *, include: Sequence[str] = (),
            exclude: Sequence[str] = (), hidden: bool = False, progress: bool = False
            ) -> SyncReport:
        """Index folders or files (each becomes a filesystem source) and sync them."""
        report = SyncReport()
        with self.lock:
            for p in paths:
                root = Path(p).expanduser().absolute()
                if not root.exists():
                    raise ConfigError(f"no such file or folder: {p}")
                options = {"include": list(include), "exclude": list(exclude), "hidden": hidden}
                name = self._source_name_for(root)
                self.store.ensure_source(name, "filesystem", _folder_uri(root), options)
                row = self.store.source_by_name(name)
                report.merge(self._sync_source(row, None, progress, retry_errors=False))
        return report

    def add_documents(self, source: str, records: Iterable[Any], *, progress: bool = False
                      ) -> SyncReport:
        """Index in-memory documents as the source `source`: (id, title, text) tuples,
        dicts with id/title/text, or connectors.records.Record. The source then holds
        exactly these records (unchanged ones cost nothing; missing ones are removed)."""
        from .connectors.records import RecordsConnector
        from .indexer.pipeline import Pipeline

        with self.lock:
            existing = self.store.source_by_name(source)
            if existing is not None and existing["kind"] != "records":
                raise ConfigError(f"source '{source}' exists and is a {existing['kind']} source")
            uri = f"records:{source}"
            source_id = self.store.ensure_source(source, "records", uri, {})
            connector = RecordsConnector(uri, records)
            return Pipeline(self, progress=progress).sync(source_id, connector)

    def _source_name_for(self, root: Path) -> str:
        existing = {s["name"]: s for s in self.store.sources()}
        for s in existing.values():
            if s["kind"] == "filesystem" and s["uri"] in (str(root), _folder_uri(root)):
                return s["name"]
        base = display_path(root.name) or "root"
        name, n = base, 2
        while name in existing:
            name, n = f"{base}-{n}", n + 1
        return name

    # -- persistent sources --------------------------------------------------------------
    def add_source(self, name: str, uri: str, kind: str | None = None, *, replace: bool = False,
                   **options: Any) -> dict[str, Any]:
        """Declare a source (not synced yet: call sync([name])). `${ENV}` references in the
        URI and options are kept as references; literal credentials go to secrets.json."""
        check_name(name)
        options = {k: v for k, v in options.items() if v not in (None, (), [], {})}
        options = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
        kind = kind or infer_kind(expand_env(uri), options)
        spec = SourceSpec(name, normalise_uri(kind, uri), kind, options)
        self._check_options(spec)
        with self.lock:
            existing = self.store.source_by_name(name)
            if existing is not None and not replace:
                raise ConfigError(f"a source named '{name}' exists (remove it, or pass replace)")
            self._register(spec)
        return next(s for s in self.sources() if s["name"] == name)

    def remove_source(self, name: str) -> int:
        """Forget a source with its items and vectors; returns how many items went."""
        if name in self._declared():
            raise ConfigError(f"source '{name}' is declared in a config file: remove it there")
        with self.lock:
            row = self.store.source_by_name(name)
            if row is None:
                raise ConfigError(f"no source named '{name}' (see `anyfind sources list`)")
            n = len(self.store.items_of_source(row["id"]))
            self.store.delete_source(row["id"])
            self.secrets.put(f"source:{name}", {})
            shutil.rmtree(self._workdir(row["id"]), ignore_errors=True)
            self.refresh_vectors(save=True)
        return n

    def sources(self) -> list[dict[str, Any]]:
        """Every source, stored or declared in a config file, credentials masked."""
        declared = self._declared()
        out = []
        for row in self.store.sources():
            spec = declared.pop(row["name"], None)
            out.append(self._public(row, spec))
        for spec in declared.values():  # declared, never synced yet
            uri, options, _ = stored_form(spec)
            out.append(self._public({"name": spec.name, "kind": spec.kind, "uri": uri,
                                     "options": options, "items": 0, "synced_at": None,
                                     "state": {}, "id": None}, spec))
        return sorted(out, key=lambda s: s["name"])

    @staticmethod
    def _public(row: dict[str, Any], spec: SourceSpec | None) -> dict[str, Any]:
        keep = ("id", "name", "kind", "uri", "options", "items", "created_at", "synced_at",
                "state")
        out = {k: row.get(k) for k in keep}
        out["uri"] = mask_uri(out["uri"])
        out["options"] = mask_options(out["options"] or {})
        out["origin"] = spec.origin if spec is not None else "store"
        return out

    def use_config(self, path: str | os.PathLike) -> None:
        """Also read sources from this TOML file (beside <index>/anyfind.toml)."""
        load_config(path)  # fail early on a bad file
        self._config_files.append(Path(path).expanduser().absolute())

    def _declared(self) -> dict[str, SourceSpec]:
        specs: dict[str, SourceSpec] = {}
        own = self.path / CONFIG_NAME
        for file in ([own] if own.is_file() else []) + self._config_files:
            specs.update(load_config(file))
        return specs

    def _check_options(self, spec: SourceSpec) -> None:
        from .connectors import connectors

        cls = connectors.get(spec.kind)
        allowed = cls.option_names
        if allowed is not None:
            unknown = sorted(set(spec.options) - set(allowed))
            if unknown:
                raise ConfigError(f"{spec.kind} sources do not take option(s) "
                                  f"{', '.join(unknown)} (known: {', '.join(sorted(allowed))})")

    def _register(self, spec: SourceSpec) -> int:
        """Upsert a source into the store in its safe form (credentials out)."""
        uri, options, found = stored_form(spec)
        if spec.origin == "store":  # config-file sources keep their secrets in the file
            self.secrets.put(f"source:{spec.name}", found)
        return self.store.ensure_source(spec.name, spec.kind, uri, options)

    def _workdir(self, source_id: int) -> Path:
        return self.path / "cache" / f"source-{source_id}"

    def connector(self, row: dict[str, Any]):
        """A ready connector for a stored source row, with its real credentials restored."""
        uri, options, _ = runtime_form(row["uri"], row["options"] or {},
                                       self.secrets.get(f"source:{row['name']}"))
        connector = connector_for(row["kind"], uri, options)
        connector.workdir = self._workdir(row["id"])
        connector.prior_state = dict(row.get("state") or {})
        return connector

    def _sync_source(self, row: dict[str, Any], spec: SourceSpec | None, progress: bool,
                     retry_errors: bool) -> SyncReport:
        """Sync one source; any failure of the source as a whole is reported, not raised,
        and leaves its items as they were."""
        from .indexer.pipeline import Pipeline

        name = row["name"]
        secrets: list[str] = []
        shown = mask_uri(row["uri"])
        connector = None
        try:
            if spec is not None:
                uri, options, secrets = runtime_form(spec.uri, spec.options, {})
            else:
                uri, options, secrets = runtime_form(row["uri"], row["options"] or {},
                                                     self.secrets.get(f"source:{name}"))
            connector = connector_for(row["kind"], uri, options)
            shown = connector.describe()
            connector.workdir = self._workdir(row["id"])
            connector.prior_state = dict(row.get("state") or {})
            log.info("syncing source %s (%s) %s", name, row["kind"], shown)
            report = Pipeline(self, progress=progress).sync(row["id"], connector, retry_errors)
            self.store.set_source_state(row["id"], {**connector.sync_state(), "last_error": None})
            return report
        except Exception as exc:  # one source failing never stops the others
            if self._index_storage_failed(exc):
                raise  # the index itself cannot be written: no later source could be
            message = redact(_one_line(exc), secrets)
            log.warning("source %s (%s) failed: %s", name, shown, message)
            state = {**(row.get("state") or {}), "last_error": message, "failed_at": time.time()}
            self.store.set_source_state(row["id"], state, synced=False)
            report = SyncReport(failed_sources=[name])
            report.errors.append({"source": name, "path": shown, "error": message})
            return report
        finally:
            if connector is not None:
                connector.close()

    def _index_storage_failed(self, exc: BaseException) -> bool:
        """Whether `exc` is the index's storage failing (full, read-only) rather than the
        source's: a full disk or a write refused by SQLite always is; anything else (say a
        permission error) only when the index directory itself cannot be written, since a
        source, or a database a connector reads, may be unreadable on its own."""
        code = storage_errno(exc)
        if code is None:
            return False
        if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        if code == errno.EROFS and not isinstance(exc, OSError):
            return True  # "attempt to write a readonly database": only a store write says it
        return unwritable(self.path) is not None

    def sync(self, sources: Sequence[str] | None = None, *, progress: bool = False,
             retry_errors: bool = False) -> SyncReport:
        """Re-sync sources (all by default) incrementally. Sources declared in config files
        are registered (or updated) first. A source that fails is named in
        report.failed_sources and its error is in report.errors; the others go on."""
        report = SyncReport()
        with self.lock:
            declared = self._declared()
            for spec in declared.values():
                self._register(spec)
            known = {s["name"]: s for s in self.store.sources()}
            names = list(sources) if sources else list(known)
            missing = [n for n in names if n not in known]
            if missing:
                raise ConfigError(f"no source named '{missing[0]}' (see `anyfind sources list`)")
            for name in names:
                if known[name]["kind"] == "records":
                    continue  # in-memory records have no origin to re-read (add_documents)
                report.merge(self._sync_source(known[name], declared.get(name), progress,
                                               retry_errors))
        return report

    def remove(self, paths: Iterable[str | os.PathLike]) -> int:
        """Forget items at these paths (files, or everything under a folder)."""
        with self.lock:
            ids = self.item_ids_at(paths)
            self.store.delete_items(ids)
            self.refresh_vectors(save=True)
        return len(ids)

    def item_ids_at(self, paths: Iterable[str | os.PathLike]) -> list[int]:
        """Ids of the items at these paths (files, or everything under a folder); a path
        may hold bytes that are not UTF-8 (matched by its file:// URI)."""
        wanted = [Path(os.fsdecode(p)).expanduser().absolute() for p in paths]
        return sorted(set(self.store.item_ids_by_path([display_path(p) for p in wanted]))
                      | set(self.store.item_ids_by_uri([p.as_uri() for p in wanted])))

    def reindex(self, *, text_model: str | None = None, progress: bool = False) -> SyncReport:
        """Re-extract and re-embed everything (optionally with another text model).

        With the same models, items are replaced one batch at a time, so the index stays
        searchable and a failing source keeps its items. A new model makes the old
        vectors meaningless, so they are dropped first."""
        if not text_model or text_model == self.config.spaces["text"].model:
            with self.lock:
                self.store.forget_fingerprints()
                return self.sync(progress=progress)
        with self.lock:
            all_ids = [row.id for s in self.store.sources()
                       for row in self.store.items_of_source(s["id"]).values()]
            self.store.delete_items(all_ids)
            if text_model:
                self.config.spaces["text"] = default_text_space(text_model)
                self.spaces["text"] = Space(self, self.config.spaces["text"])
                self._chunker = None
            shutil.rmtree(self.path / VECTOR_DIR, ignore_errors=True)
            self._vectors.clear()
            for space in self.spaces.values():
                space.config.dim = space.encoder.dim
                space.config.identity = space.encoder.identity()
                self._reset_space(space)
            self.config.save(self.path)
            return self.sync(progress=progress)

    def _reset_space(self, space: Space) -> None:
        from sqlalchemy import delete, update

        from .store.schema import Embedding
        from .store.schema import Space as SpaceRow

        # The generation only ever grows: a reader holding vectors of generation g must
        # never mistake the rebuilt space for the one it has.
        before = self.store.generation(space.name)
        with self.store.engine.begin() as conn:
            conn.execute(delete(Embedding).where(Embedding.space == space.name))
            conn.execute(delete(SpaceRow).where(SpaceRow.name == space.name))
        self.store.ensure_space(space.name, space.config.dim)
        with self.store.engine.begin() as conn:
            conn.execute(update(SpaceRow).where(SpaceRow.name == space.name)
                         .values(generation=before + 1))

    # -- pipeline hooks ------------------------------------------------------------------
    def handles(self, modality: str | None) -> bool:
        if modality == "text":
            return True
        if modality == "image":
            return any(s.config.encoder == "open-clip" for s in self.spaces.values()) or bool(
                self.config.tagger)
        if modality == "audio":
            return self.config.transcriber is not None
        return False

    def why_not(self, modality: str | None) -> str:
        if modality == "image":
            return "enable image tags or a CLIP space"
        if modality == "audio":
            return "enable transcription"
        return "not a text, image or audio format"

    def extract_context(self):
        if self._context is None:
            from .indexer.context import ExtractContext

            self._context = ExtractContext(self.config.transcriber, self.device,
                                           self.config.max_image_pixels,
                                           self.image_inputs.decode_size)
        return self._context

    @property
    def chunker(self):
        if self._chunker is None:
            from .extract.chunking import Chunker

            enc = self.spaces["text"].encoder
            budget = self.config.chunk_tokens or enc.max_tokens()
            self._chunker = Chunker(enc.tokenizer(), budget, self.config.chunk_overlap)
        return self._chunker

    def make_chunks(self, extracted, item) -> None:
        """Turn extracted content into chunk records on a prepared item."""
        from .store.metadata import ChunkRecord

        if extracted.modality == "image":
            item.chunks = [ChunkRecord(ordinal=0, modality="image", text="")]
            item.images[0] = self.image_inputs.prepare(extracted.image)
            if item.content_hash:
                self.thumbnails.write(item.content_hash, extracted.image)
            return
        if extracted.modality == "audio":
            from .audio.chunking import group_segments

            windows = group_segments(extracted.segments, self.chunker.budget,
                                     self.chunker.count_tokens)
            item.chunks = [ChunkRecord(ordinal=i, modality="audio", text=w.text,
                                       start_s=w.start, end_s=w.end)
                           for i, w in enumerate(windows)]
            item.meta["transcript"] = [[round(s.start, 2), round(s.end, 2), s.text]
                                       for s in extracted.segments]
            return
        item.chunks = [
            ChunkRecord(ordinal=i, modality="text", text=c.text, char_start=c.char_start,
                        char_end=c.char_end, page=c.page)
            for i, c in enumerate(self.chunker.chunk_sections(extracted.sections))
        ]

    @property
    def tagger(self):
        if self._tagger is None and self.config.tagger:
            from .encoders.tagger import get_tagger

            self._tagger = get_tagger(self.device)
        return self._tagger

    @property
    def image_inputs(self):
        """The image models' per-image preprocessing and decode size (indexer/images.py)."""
        if self._image_inputs is None:
            from .indexer.images import ImageInputs
            from .thumbnails import SIZE

            self._image_inputs = ImageInputs(self._image_models, SIZE)
        return self._image_inputs

    def _image_models(self) -> list:
        models = [self.tagger] if self.tagger is not None else []
        return models + [s.encoder for s in self.spaces.values()
                         if "image" in s.encoder.modalities]

    @property
    def thumbnails(self):
        from .thumbnails import Thumbnails

        return Thumbnails(self.path / "thumbnails")

    def _tag_images(self, items) -> None:
        """Batch-tag every image chunk: tags become its text (lexical) and metadata."""
        pairs = [(item, chunk) for item in items for chunk in item.chunks
                 if chunk.modality == "image" and not chunk.text]
        if not pairs or self.tagger is None:
            return
        all_tags = self.tagger.tag([item.images[c.ordinal] for item, c in pairs])
        for (item, chunk), tags in zip(pairs, all_tags, strict=True):
            item.meta["tags"] = [{"label": label, "prob": prob} for label, prob in tags]
            chunk.text = ", ".join(label for label, _ in tags)

    def _tag_vector(self, encoder, tags: list[dict]) -> np.ndarray | None:
        """Probability-weighted mean of the tag names' text embeddings."""
        if not tags:
            return None
        cache = self._label_vectors.setdefault(id(encoder), {})
        missing = [t["label"] for t in tags if t["label"] not in cache]
        if missing:
            for label, vec in zip(missing, encoder.encode_documents(missing), strict=True):
                cache[label] = vec
        vec = sum(t["prob"] * cache[t["label"]] for t in tags)
        norm = float(np.linalg.norm(vec))
        return (vec / norm).astype(np.float32) if norm > 0 else None

    def embed_chunks(self, items, progress: Callable[[int, int], None] | None = None) -> None:
        """Fill chunk.vectors for every space that accepts each chunk, batched per space.

        Text is sorted by length over the whole call and encoded in slices of
        EMBED_SLICE, so each model batch holds texts of similar length (little padding)
        and `progress(done, total)` is told after each slice."""
        self._tag_images(items)
        for name, space in self.spaces.items():
            enc = space.document_encoder
            by_modality: dict[str, list[tuple[Any, Any]]] = {}
            for item in items:
                for chunk in item.chunks:
                    if chunk.vectors and name in chunk.vectors:
                        continue
                    if chunk.modality == "image" and "image" in enc.modalities:
                        by_modality.setdefault("image", []).append((chunk, item.images[chunk.ordinal]))
                    elif chunk.modality == "image":
                        vec = self._tag_vector(enc, item.meta.get("tags") or [])
                        if vec is not None:  # a text space sees an image through its tags
                            chunk.vectors = {**(chunk.vectors or {}), name: vec}
                    elif chunk.text.strip() and "text" in enc.modalities:
                        by_modality.setdefault("text", []).append((chunk, chunk.text))
            total = sum(len(pairs) for pairs in by_modality.values())
            done = 0
            for modality, pairs in by_modality.items():
                if modality == "text":
                    pairs.sort(key=lambda pair: len(pair[1]), reverse=True)
                for start in range(0, len(pairs), EMBED_SLICE):
                    part = pairs[start:start + EMBED_SLICE]
                    vecs = enc.encode_documents([x for _, x in part], modality)
                    for (chunk, _), vec in zip(part, vecs, strict=True):
                        chunk.vectors = {**(chunk.vectors or {}), name: vec}
                    done += len(part)
                    if progress is not None:
                        progress(done, total)
        for name, space in self.spaces.items():
            if space.config.dim:
                self.store.ensure_space(name, space.config.dim)

    # -- ONNX exports --------------------------------------------------------------------
    def export_onnx(self, *, force: bool = False, int8: bool | None = None,
                    spaces: Sequence[str] | None = None):
        """Export the spaces' encoders to ONNX under <index>/onnx/ (torch-free queries), those
        missing or stale (all with force). Returns one ExportResult per space; never raises
        for a space that cannot be exported."""
        from .encoders.export import export_index

        with self.lock:
            return export_index(self, force=force, int8=int8,
                                spaces=list(spaces) if spaces else None)

    def onnx_exports_stale(self) -> list[str]:
        """Spaces whose export is missing or stale (cheap: a stat per file when verified)."""
        from .encoders.export import SUPPORTED, export_state

        return [name for name, cfg in self.config.spaces.items()
                if cfg.encoder in SUPPORTED and export_state(
                    self.path, cfg, int8=bool(self.config.onnx_int8)
                    and cfg.encoder == "sentence-transformers") is not None]

    def int8_document_encoder(self, space: Space):
        """(int8 ONNX encoder, None) for a text space, exporting it first if needed; or
        (None, reason)."""
        from .encoders.onnx import load_document_encoder

        enc, reason = load_document_encoder(self.path, space.name, space.config.identity)
        if enc is None:
            result = self.export_onnx(int8=True, spaces=[space.name])[0]
            if result.status not in ("exported", "current"):
                return None, result.reason
            enc, reason = load_document_encoder(self.path, space.name, space.config.identity)
        if enc is not None:
            try:  # a session that cannot be built fails here, not in the middle of a sync
                enc.warm("text")
            except Exception as exc:
                return None, f"{type(exc).__name__}: {exc}"
        return enc, reason

    # -- vectors -------------------------------------------------------------------------
    def _vector_store(self, name: str, mmap: bool = False) -> VectorStore:
        cfg = self.config.spaces[name]
        return open_vector_store(self.path, name, cfg.dim or 0, kind=self.config.vector_store,
                                 factory=cfg.faiss, mmap=mmap)

    def vectors(self, name: str) -> VectorStore:
        vi = self._vectors.get(name)
        if vi is None:
            vi = self._vector_store(name, mmap=self.map_vectors)
            vi = self._vectors.setdefault(name, vi)  # another thread may have been first
        vi.catch_up(self.reader)
        return vi

    def refresh_vectors(self, save: bool = False, checkpoint: bool = False) -> None:
        """Catch the vector stores up with the metadata store; save=True (writers): also
        persist them, and catch the lexical cache up (store/lexical_cache.py; a checkpoint
        in the middle of a sync may defer its rebuild to the sync's end)."""
        for name in self.spaces:
            vi = self._vectors.get(name)
            if vi is None:
                vi = self._vectors[name] = self._vector_store(name)
            changed = vi.catch_up(self.store)
            if save and (changed or not vi.persisted()):
                vi.persist()
        if save:
            self.refresh_lexical(checkpoint)

    # -- searching -----------------------------------------------------------------------
    def search(self, query: str | None = None, *, k: int = 10, image: Any = None,
               audio: Any = None, offset: int = 0, mode: str = "hybrid", chunks: bool = False,
               min_score: float | None = None, fusion: str = "rrf",
               weights: dict[str, float] | None = None, filters: str | Filters | None = None,
               rerank: str | None = None, syntax: bool = True,
               sources: Sequence[str] | None = None) -> list[Result]:
        """Ranked results across every modality and source.

        `query` may hold filters (`ext:pdf after:2024-01-01`, see anyfind.search.filters);
        `filters` adds more. mode: hybrid (dense + lexical, fused), dense or lexical.
        fusion: rrf or score; weights by signal name ("text", "lexical", "dense" for every
        embedding space). rerank: a cross-encoder re-orders the top results.
        syntax=False takes the query text literally (no filters in it).
        sources: only items of these sources (by name)."""
        q = Query(text=query, image=image, audio=audio, k=k, offset=offset, mode=mode,
                  chunks=chunks, min_score=min_score, fusion=fusion, weights=dict(weights or {}),
                  filters=filters, rerank=rerank, syntax=syntax,
                  sources=list(sources) if sources else None)
        return Searcher(self).search(q)

    def similar(self, item_id: int, *, k: int = 10, offset: int = 0,
                filters: str | Filters | None = None) -> list[Result]:
        """Items closest to one indexed item, in every space that holds its vectors."""
        from .errors import check_id
        from .search.engine import check_page
        from .search.similar import similar

        check_page(k, offset)
        return similar(self, check_id(item_id), k=k, offset=offset, filters=filters)

    def extra_signals(self, q: Query, depth: int) -> dict[str, list[tuple[int, float]]]:
        """More signals to fuse, beyond the embedding spaces and the lexical index (a hook
        for subclasses; each is a ranked list of (chunk id, score))."""
        return {}

    def transcribe_query(self, audio: Any) -> str:
        from .fetch import check_regular

        check_regular(audio)  # a FIFO would block the decoder's open forever
        transcriber = self.extract_context().transcriber
        if transcriber is None:
            from .audio.transcribe import Transcriber

            transcriber = self._query_transcriber = getattr(
                self, "_query_transcriber", None) or Transcriber(device=self.device or "auto")
        return transcriber.transcribe(str(audio)).text

    def load_query_image(self, image: Any):
        """A PIL image from a PIL image, a path or an http(s) URL, through the same guards
        as indexing (pixel cap, decoded no larger than the models need); a QueryError
        in one sentence for anything else."""
        from .query_image import load_query_image

        return load_query_image(image, self.config.max_image_pixels)

    def image_tag_vector(self, encoder, image) -> np.ndarray | None:
        """A text space's view of an image: the weighted mean of its tag names."""
        if self.tagger is None:
            return None
        tags = self.tagger.tag([image])[0]
        return self._tag_vector(encoder, [{"label": lab, "prob": p} for lab, p in tags])

    def thumbnail(self, item_id: int) -> Path | None:
        from .errors import check_id

        row = self.store.item(check_id(item_id))
        return self.thumbnails.get(row["content_hash"]) if row else None

    # -- reading -------------------------------------------------------------------------
    def item(self, item_id: int) -> dict[str, Any] | None:
        """An item's row with its passages (`chunks`), the item it was found inside
        (`parent`: id and path, or None) and the items found inside it (`children`)."""
        from .errors import check_id

        item_id = check_id(item_id)
        row = self.store.item(item_id)
        if row is not None:
            row["chunks"] = self.store.chunks_of_item(item_id)
            row["parent"] = self.store.parent_of(item_id)
            row["children"] = family_children(self.store, item_id)
        return row

    def attachment(self, item_id: int):
        """The bytes of an item found inside another (an e-mail's attachment), re-cut from
        its parent's current content: an `extract.Child` (name, media type, data)."""
        from .indexer.children import attachment_of

        return attachment_of(self, item_id)

    def status(self) -> dict[str, Any]:
        counts = self.store.counts()
        size = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        return {
            "index": str(self.path),
            "store": self.store.engine.url.render_as_string(hide_password=True),
            "spaces": {n: {"encoder": s.config.encoder, "model": s.config.model,
                           "dim": s.config.dim, "vectors": counts["vectors"].get(n, 0),
                           "onnx_export": self._export_status(s.config)}
                       for n, s in self.spaces.items()},
            "sources": self.sources(),
            "lexical": self.lexical.describe(),
            "disk_bytes": size,
            **{k: v for k, v in counts.items() if k not in ("vectors", "sources")},
        }

    def _export_status(self, cfg) -> str:
        """'current', or why the space's queries would not use an ONNX export (cheap:
        the manifest and a stat per file)."""
        from .encoders.export import SUPPORTED, export_state

        if cfg.encoder not in SUPPORTED:
            return f"none (no export for {cfg.encoder} encoders)"
        why = export_state(self.path, cfg, int8=bool(self.config.onnx_int8)
                           and cfg.encoder == "sentence-transformers")
        return "current" if why is None else why

    def errors(self) -> list[dict[str, Any]]:
        return self.store.errors()

    # -- checking ------------------------------------------------------------------------
    def check(self, repair: bool = False) -> CheckReport:
        """Verify the index's consistency (anyfind.checks); with repair, fix what can be
        fixed without re-embedding. Returns a CheckReport."""
        from .checks import check_index

        return check_index(self, repair=repair)
