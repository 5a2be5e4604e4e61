"""OpenIndex: one index directory, opened. Everything the work layers (indexer/, search/,
checks/, the server) need from an index, and nothing of its verbs:

config and secrets, the write lock, the metadata store and its fast reader, the lexical
index, one vector store per space (store/vector_store.py), the spaces
(encoders/space.py), the image tagger, ONE transcriber (indexing and spoken queries),
the encoding executor (executors/), thumbnails, and the connectors of its sources.
Everything heavy is built on first use, so a search that needs no model loads none.

`concurrent=True` (the server) makes it safe to share between request threads: vector
stores catch up copy-on-write (a running search keeps its snapshot) and every model
call runs on one model thread (encoders/serialised.py).
"""

from __future__ import annotations

import errno
import functools
import logging
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import IndexConfig, SpaceConfig
from ..connectors import connector_for
from ..encoders.space import Space
from ..encoders.tag_vectors import TagVectors
from ..errors import AnyfindError, one_line
from ..iofaults import storage_errno, unwritable
from ..lock import WriteLock
from ..secrets import SecretFile, expand_env, restore_uri_secrets
from ..sources import CONFIG_NAME, SourceSpec, load_config, runtime_form
from ..store.deployment import Deployment
from ..store.held import with_held
from ..store.lexical_store import LexicalPlace, LexicalSearch, ServiceLookup
from ..store.ownership import OWNER, Owner, decide, read_owner, write_owner
from ..store.vector_store import VECTOR_DIR, VectorStore, open_vector_store
from .lazy import built, built_once, forget

if TYPE_CHECKING:
    from ..executors import EncodingExecutor
    from ..store.metadata import MetadataStore
    from ..store.reader import SearchReads

log = logging.getLogger("anyfind.index")


def model_tag(cfg: SpaceConfig) -> str:
    """What a space's vectors were made by, short: kept beside vectors that live outside
    the index (a Milvus collection), so another model's vectors are never mixed in."""
    import hashlib
    import json

    identity = json.dumps(cfg.identity or {}, sort_keys=True, default=str)
    return f"{cfg.encoder}:{cfg.model}#{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


# What SQLite (and PostgreSQL) say of a file or page that is not a database any more.
CORRUPT = ("malformed", "not a database", "file is encrypted", "invalid page",
           "database corruption")


class OpenIndex:
    def __init__(self, path: Path, config: IndexConfig, device: str | None = None, *,
                 concurrent: bool = False):
        self.path = Path(path)
        self.config = config
        self.device = device
        self.concurrent = concurrent
        self.secrets = SecretFile(self.path)
        self.lock = WriteLock(self.path, shared=self._database_lock)
        if concurrent:
            from ..encoders.serialised import MODELS

            self.models = MODELS
        else:
            self.models = None
        # Opened on first use: a search reads through `reader` and may never need `store`.
        self._store: MetadataStore | None = None
        self._reader: SearchReads | None = None
        self._bm25 = ServiceLookup(self._open_bm25, "the BM25 collection")
        self._open_lock = threading.RLock()
        self._catch_up_lock = threading.Lock()
        # Set when the process is stopping (a server's SIGTERM): long query work (a spoken
        # query's transcription) gives up at its next step instead of holding the exit.
        self.stopping = threading.Event()
        self._one_shot = False
        self.spaces: dict[str, Space] = {n: self._space(cfg) for n, cfg in config.spaces.items()}
        self._vectors: dict[str, VectorStore] = {}
        # Built on first use, once (core/lazy.py): lexical, tagger, transcriber, ocr,
        # chunker, image_inputs, the extract context.
        self._executor: EncodingExecutor | None = None
        self._executor_choice: tuple[str, dict[str, Any]] | None = None
        self.tag_vectors = TagVectors()
        self.config_files: list[Path] = []  # more TOML files declaring sources
        # Searches may map vector files instead of reading them (store/faiss_store.py).
        self.map_vectors = False

    # -- settings made after opening ---------------------------------------------------------
    @property
    def one_query(self) -> bool:
        """A process that runs a query or two and exits (`anyfind search`): vector files
        are mapped instead of read, and ONNX sessions skip weight pre-packing (built ~5x
        faster, each encode ~2x slower: a win for one query). The one query-mode flag."""
        return self._one_shot

    @one_query.setter
    def one_query(self, value: bool) -> None:
        self._one_shot = self.map_vectors = bool(value)
        for space in self.spaces.values():
            space.one_query = self._one_shot

    def save_config(self) -> None:
        self.config.save(self.path)

    def set_document_precision(self, value: str) -> None:
        """How text spaces encode documents (encoders/precision.py), kept in config.json."""
        from ..encoders.precision import check_precision

        value = check_precision(value)
        with self.lock.folder_only():  # config.json has one writer at a time
            self.config.document_precision = value
            self.config.onnx_int8 = value == "int8"
            self.save_config()
        self.spaces = {n: self._space(cfg) for n, cfg in self.config.spaces.items()}

    def set_onnx_int8(self, value: bool) -> None:
        """Documents through the int8 ONNX text model, or back to auto."""
        self.set_document_precision("int8" if value else "auto")

    # -- spaces ------------------------------------------------------------------------------
    def _space(self, cfg: SpaceConfig) -> Space:
        space = Space(cfg, device=self.device, index_dir=self.path, models=self.models,
                      precision=self.config.document_precision,
                      document_loader=self.export_document_encoder)
        space.one_query = self._one_shot
        return space

    def replace_space(self, name: str, cfg: SpaceConfig) -> Space:
        """A space with a new config (reindex with another model); its vectors go."""
        self.config.spaces[name] = cfg
        self.spaces[name] = self._space(cfg)
        forget(self, "chunker")
        return self.spaces[name]

    def indexes_modality(self, modality: str | None) -> bool:
        """Whether items of this modality are indexed: by the encoders' declared
        modalities (a plugin's image encoder counts), the tagger and the transcriber."""
        if modality == "text":
            return True
        if modality == "image":  # seen by tags, by an image space, or read for its words
            return bool(self.config.tagger) or any(
                s.accepts("image") for s in self.spaces.values()) or self.ocr is not None
        if modality == "audio":
            return self.config.transcriber is not None
        if modality == "video":  # its frames, its sound, or both
            return self.indexes_modality("image") or self.config.transcriber is not None
        return False

    @staticmethod
    def why_not_indexed(modality: str | None) -> str:
        if modality == "image":
            return "enable image tags, OCR or a space whose encoder reads images (CLIP)"
        if modality == "audio":
            return "enable transcription"
        if modality == "video":
            return "enable transcription, image tags, OCR or CLIP"
        return "not a text, image, audio or video format"

    # -- the metadata store ------------------------------------------------------------------
    def store_url(self) -> str:
        if not self.config.store_url:
            return f"sqlite:///{self.path / 'meta.db'}"
        url = restore_uri_secrets(self.config.store_url, self.secrets.get("store_url"))
        return expand_env(url)

    def _database_lock(self):
        """The writer lock held in the store itself (several folders reach one cluster
        index), or None where the folder's lock is enough."""
        if not self.deployment.database_lock:
            return None
        from ..store.writer_lock import database_lock

        return database_lock(self.store_url(), self.path)

    @property
    def store(self) -> MetadataStore:
        """The metadata store (SQLAlchemy): every write, filters, any database URL."""
        if self._store is None:
            with self._open_lock:
                if self._store is None:
                    from ..store.metadata import MetadataStore

                    lexical = self.bm25_in_service  # the config's word first
                    store = self._open_store(MetadataStore)
                    self._own(store)
                    if self.deployment.outbox and not store.read_only and (
                            not store.outbox or (lexical and not store.lexical_outbox)):
                        store.enable_outbox(lexical)  # before any write of this index's
                    self._store = store
        return self._store

    @property
    def reader(self) -> SearchReads:
        """What a search reads from: a sqlite3 reader when the store is a SQLite file at
        the current schema (no SQLAlchemy on the cold path), else the MetadataStore itself."""
        if self._reader is None:
            from .. import profile
            from ..store.reader import SQLiteReader

            with self._open_lock, profile.stage("metadata"):
                if self._reader is None:
                    reader = SQLiteReader.open(self.store_url())
                    if reader is not None:
                        self._check_owner(reader.meta_value(OWNER))
                    self._reader = reader if reader is not None else self.store
        return self._reader

    def _open_store(self, make):
        """The store, or IndexDamaged in one sentence when its file is not a database any
        more (truncated, overwritten): never a traceback, never an empty answer."""
        from sqlalchemy.exc import DatabaseError

        from ..store.db_errors import unreachable

        try:
            return make(self.store_url())
        except DatabaseError as exc:
            text = str(exc.orig if getattr(exc, "orig", None) is not None else exc)
            if not any(s in text for s in CORRUPT):
                said = unreachable(exc, self.store_url())
                if said is not None:
                    raise said from None
                raise
            from ..errors import IndexDamaged

            raise IndexDamaged(f"{self._store_said()} is damaged ({text}): restore it from a "
                               "backup, or start the index again (remove the index folder "
                               "and run `anyfind index` on its sources)") from None

    def _store_said(self) -> str:
        from ..secrets import mask_uri

        return "the index's meta.db" if not self.config.store_url else \
            f"the database {mask_uri(self.config.store_url)}"

    def _check_owner(self, owner_id: str | None) -> None:
        """A reader's check (it writes nothing): the store is this index's, or one it has
        not claimed yet (the next writer does)."""
        decide(Owner(owner_id, None, False), self.config.index_id, self.config.store_claimed,
               self._store_said())

    def _own(self, store: MetadataStore) -> None:
        """Refuse another index's store (store/ownership.py); claim a new one, recording
        the claim in config.json, so an emptied or replaced store is noticed later."""
        from sqlalchemy.exc import IntegrityError

        for attempt in (1, 2):  # two first writers: the second reads the first's claim
            try:
                with store.engine.begin() as conn:
                    owner = read_owner(conn)
                    claim = decide(owner, self.config.index_id, self.config.store_claimed,
                                   self._store_said())
                    if claim is not None and not store.read_only:
                        write_owner(conn, claim, str(self.path))
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        if claim is None and self.config.index_id:
            return
        self.config.index_id = claim or owner.index_id or ""
        self.config.store_claimed = claim is None or not store.read_only
        try:
            self.save_config()
        except OSError as exc:  # a read-only replica folder: the store holds the claim
            log.warning("config.json not updated with the index id: %s", exc)

    @functools.cached_property
    def deployment(self) -> Deployment:
        """Where this index's parts live (store/deployment.py): the rules by service."""
        return Deployment(self.config.store_url or "sqlite:///meta.db",
                          self.config.vector_store or "faiss", bool(self.config.store_url))

    @built_once
    def lexical(self) -> LexicalSearch:
        """The full-text search of a query: the first of the deployment's lexical backends
        that is ready (store/lexical_store.py)."""
        place = LexicalPlace(self.path, self.reader, lambda: self.store)
        return self.deployment.lexical_search(place, self.reader.dialect,
                                              self.lexical_service_why)

    @property
    def bm25_in_service(self) -> bool:
        return self.deployment.bm25_in_service

    def lexical_service(self):
        """The BM25 collection (store/milvus_lexical.py), or None: not this index's, its
        engine has no BM25, or Milvus cannot be reached (tried again after a minute)."""
        return self.lexical_service_why()[0]

    def lexical_service_why(self) -> tuple[Any, str | None]:
        """(the BM25 collection or None, why not)."""
        return self._bm25()

    def _open_bm25(self) -> tuple[Any, str | None]:
        if not self.bm25_in_service:
            return None, None
        from ..store.milvus_lexical import open_lexical

        return open_lexical(self.vector_store_uri(), owner=self.config.index_id)

    def refresh_lexical_service(self) -> None:
        """Apply the outbox's chunk texts to the BM25 collection (writers). An engine
        without BM25 never reads them: they are pruned, so they do not pile up (an
        upgraded engine's new collection is filled by comparing ids once)."""
        store = self.store
        if not store.lexical_outbox or store.read_only:
            return
        from ..store.outbox import LEXICAL

        service, _ = self.lexical_service_why()
        if service is not None:
            service.catch_up(store)
        elif self._bm25.settled:  # the engine has no BM25 (not: unreachable)
            store.prune_outbox(LEXICAL, store.outbox_head(LEXICAL))

    @property
    def calibration(self):
        """What a cosine means in each space (core/calibration.py); None: not fitted. A
        server store's copy replaces the folder's when newer (checked every 30 s)."""
        from .calibration import FILE, load

        if self.index_files is not None:
            self.index_files.follow(FILE, self.path / FILE)
        return load(self.path)

    def fit_inputs(self):
        """What the score calibration is fitted from (core/calibration.py: refresh, fit)."""
        from .calibration import FitInputs

        return FitInputs(self.path, self.reader, self.spaces, self.chunk_vectors,
                         self.index_files)

    def refresh_lexical(self, checkpoint: bool = False) -> str | None:
        """Catch the tantivy cache up with the store (the writer, under its lock). A cache
        that cannot be written is left stale (searches use FTS5) with a warning."""
        from ..store.lexical_cache import catch_up

        return catch_up(self.path, self.store_url(), checkpoint)

    def storage_failed(self, exc: BaseException) -> bool:
        """Whether `exc` is the index's storage failing (full, read-only) rather than a
        source's: a full disk or a write refused by SQLite always is; anything else (a
        permission error) only when the index directory itself cannot be written."""
        code = storage_errno(exc)
        if code is None:
            return False
        if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        if code == errno.EROFS and not isinstance(exc, OSError):
            return True  # "attempt to write a readonly database": only a store write says it
        return unwritable(self.path) is not None

    # -- vectors -----------------------------------------------------------------------------
    def vector_store(self, name: str, *, mmap: bool = False, load: bool = True) -> VectorStore:
        """A fresh vector store of one space, not the one searches share (load=False:
        `anyfind check` judges the files itself)."""
        cfg = self.config.spaces[name]
        return open_vector_store(self.path, name, cfg.dim or 0, kind=self.vector_store_uri(),
                                 factory=cfg.faiss, mmap=mmap, load=load, model=model_tag(cfg),
                                 owner=self.config.index_id)

    def check_vector_services(self, strict: bool = False) -> None:
        """Before a run writes anything: each space's vector service is this index's and
        holds its model's vectors, and accepts the credentials (IndexDamaged, ConfigError
        raised); one that does not answer now is left to the outbox (the run goes on), or
        raised when `strict` (a change of service is checked before it is kept)."""
        if not self.shares_vectors:
            return
        from ..errors import ConfigError, IndexDamaged, ServiceUnreachable

        for name, cfg in self.config.spaces.items():
            if cfg.dim:
                try:
                    self.vector_store(name, load=True)
                except ServiceUnreachable as exc:
                    if strict:
                        raise
                    # INFO: the sync's report says it (once, at the end)
                    log.info("%s: its vectors wait in the outbox", one_line(exc))
                except (IndexDamaged, ConfigError):
                    raise  # another index's, another model's, or credentials refused
                except Exception as exc:  # noqa: BLE001 (a service going away: the outbox)
                    log.warning("the vector store of space '%s' did not answer (%s): its "
                                "vectors wait in the outbox", name, one_line(exc))

    @property
    def shares_vectors(self) -> bool:
        """Whether the vectors live in a service that processes share (Milvus): then only
        writers change them, from the store's outbox, and searches use them as they are."""
        return self.deployment.shares_vectors

    def vector_store_uri(self) -> str:
        """The vector store as configured, its credentials restored: a literal token from
        secrets.json, `${ENV}` references expanded (config.json holds it masked)."""
        uri = restore_uri_secrets(self.config.vector_store, self.secrets.get("vector_store"))
        return expand_env(uri)

    def service_secrets(self) -> list[str]:
        """The credentials of the index's own services (database, vector store), for
        redacting any message that might quote them."""
        from ..secrets import secret_values

        found: list[str] = []
        for uri in (self.store_url if self.config.store_url else None,
                    self.vector_store_uri if self.config.vector_store else None):
            try:
                found += secret_values(uri(), {}) if uri is not None else []
            except AnyfindError:  # an unset ${ENV}: nothing literal to hide
                continue
        return found

    def vectors(self, name: str) -> VectorStore:
        """One space's vectors, caught up with the store. Concurrent: copy-on-write, so a
        running search keeps the snapshot it was handed."""
        if self.concurrent and not self.shares_vectors:
            return self._shared_vectors(name)
        vs = self._vectors.get(name)
        if vs is None:
            vs = self.vector_store(name, mmap=self.map_vectors)
            vs = self._vectors.setdefault(name, vs)  # another thread may have been first
        if not vs.shared:  # a service is written by writers only (refresh_vectors)
            vs.catch_up(self.reader)
        return vs

    def chunk_vectors(self, name: str, ids) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of these chunks' vectors in a space, in id order: from the store,
        and from the vector service for those only it holds (store/outbox.py)."""
        dim = self.config.spaces[name].dim or 0
        ids = sorted({int(i) for i in ids})
        got, matrix = self.reader.vectors(name, ids, dim=dim)
        if not self.shares_vectors or len(got) == len(ids):
            return got, matrix
        return with_held(got, matrix, self.vectors(name).fetch(np.setdiff1d(ids, got)), dim)

    def _shared_vectors(self, name: str) -> VectorStore:
        current = self._vectors.get(name)
        if current is not None and current.generation == self.store.generation(name):
            return current
        with self._catch_up_lock:
            current = self._vectors.get(name)
            if current is None:
                fresh = self.vector_store(name)
            elif current.generation == self.store.generation(name):
                return current  # another thread caught up while this one waited
            else:
                fresh = current.snapshot()
            fresh.catch_up(self.store)
            self._vectors[name] = fresh
            return fresh

    def refresh_vectors(self, save: bool = False, checkpoint: bool = False) -> None:
        """Catch the vector stores up with the metadata store; save=True (writers): also
        persist them, and catch the lexical cache up (a checkpoint in the middle of a
        sync may defer its rebuild to the sync's end)."""
        for name in self.spaces:
            vs = self._vectors.get(name)
            if vs is None:
                vs = self._vectors[name] = self.vector_store(name)
            changed = vs.catch_up(self.store)
            if save and (changed or not vs.persisted()):
                vs.persist()
        if save:
            self.refresh_lexical(checkpoint)
            self.refresh_lexical_service()

    def forget_vectors(self, remove_files: bool = False) -> None:
        """Drop the vector stores held in memory (stale after a repair or a reindex);
        remove_files: their persisted copies too."""
        self._vectors.clear()
        if remove_files:
            for name in self.config.spaces:  # a service's collections go as well
                self.vector_store(name, load=False).drop()
            shutil.rmtree(self.path / VECTOR_DIR, ignore_errors=True)

    # -- models ------------------------------------------------------------------------------
    @built_once
    def tagger(self):
        """The offline image tagger, when the index tags images."""
        if not self.config.tagger:
            return None
        from ..encoders.tagger import get_tagger

        tagger = (self.models.run(get_tagger, self.device) if self.models
                  else get_tagger(self.device))
        if tagger is not None and self.models is not None:
            from ..encoders.serialised import Serialised

            tagger = Serialised(tagger, self.models)
        return tagger

    @built_once
    def transcriber(self):
        """The one Whisper transcriber: the index's settings, or (an index that does not
        index audio, asked a spoken query) the default model."""
        from ..audio.transcribe import get_transcriber

        cfg = dict(self.config.transcriber or {})
        if self.device and "device" not in cfg:
            cfg["device"] = self.device
        cfg.setdefault("device", "auto")
        make = lambda: get_transcriber(**cfg)  # noqa: E731
        transcriber = self.models.run(make) if self.models else make()
        if self.models is not None:
            from ..encoders.serialised import Serialised

            transcriber = Serialised(transcriber, self.models)
        return transcriber

    @property
    def executor(self) -> EncodingExecutor:
        """What runs the models of indexing: `use_executor`'s choice for this process, or
        the config's (key `executor`, default local, with `executor_options`)."""
        if self._executor is None:
            from ..executors import make_executor

            kind, options = self.executor_choice
            self._executor = make_executor(kind, spaces=self.spaces, tagger=lambda: self.tagger,
                                           tag_vectors=self.tag_vectors, **options)
        return self._executor

    @property
    def executor_choice(self) -> tuple[str, dict[str, Any]]:
        if self._executor_choice is not None:
            return self._executor_choice
        return self.config.executor, dict(self.config.executor_options or {})

    def use_executor(self, kind: str, **options: Any) -> None:
        """Another executor for this process's syncs (`--executor`); config.json keeps
        its own. Options left out keep the config's when the kind is the same."""
        from ..executors import executors

        executors.get(kind)  # an unknown name fails here, before any work
        if kind == self.config.executor:
            options = {**(self.config.executor_options or {}), **options}
        if self._executor is not None:
            self._executor.close()
        self._executor_choice = (kind, options)
        self._executor = None

    @built_once
    def image_inputs(self):
        """The image models' per-image preprocessing and decode size."""
        from ..encoders.image_inputs import ImageInputs
        from ..store.thumbnails import SIZE

        return ImageInputs(self._image_models, SIZE)

    def _image_models(self) -> list:
        models = [self.tagger] if self.tagger is not None else []
        return models + [s.encoder for s in self.spaces.values() if s.accepts("image")]

    def extract_context(self):
        """What extractors need beyond the bytes (core/extract_context.py)."""
        return self._extract_context

    @built_once
    def _extract_context(self):
        from .extract_context import ExtractContext

        audio = self.config.transcriber is not None
        return ExtractContext(lambda: self.transcriber if audio else None,
                              self.config.max_image_pixels, self.image_inputs.decode_size,
                              self.config.extract_seconds, self.config.max_item_chars,
                              lambda: self.ocr)

    def set_ocr(self, choice: str) -> None:
        """Another OCR engine (or off) for this index, kept in config.json."""
        from ..ocr import resolve

        resolve(choice)  # an unknown name is a ConfigError before anything changes
        self.config.ocr = choice
        self.save_config()
        forget(self, "ocr")
        forget(self, "_extract_context")

    def note_pixels_read(self) -> None:
        """The engine that read pixels in this index is recorded (config.ocr_read_with),
        once: `reindex --ocr` clears it, so its first read records the new one."""
        if not self.config.ocr_read_with and self.ocr is not None:
            self.config.ocr_read_with = self.ocr.identity()
            self.save_config()

    @built_once
    def ocr(self):
        """The OCR engine the config names (ocr/), or None: off, or none installed; built
        once (its models load on its first read)."""
        from ..ocr import ocr_engine, resolve

        name = resolve(self.config.ocr)
        return ocr_engine(name) if name else None

    @built_once
    def chunker(self):
        from ..extract.chunking import Chunker

        enc = self.spaces["text"].encoder
        budget = self.config.chunk_tokens or enc.max_tokens()
        return Chunker(enc.tokenizer(), budget, self.config.chunk_overlap)

    @property
    def thumbnails(self):
        from ..store.thumbnails import Thumbnails

        return Thumbnails(self.path / "thumbnails", self.index_files)

    @functools.cached_property
    def index_files(self):
        """The index's files kept in its metadata store (calibration, thumbnails), when
        that store is a server: what lets a machine with only the config serve the index
        (store/index_files.py). None for a SQLite store."""
        if not self.deployment.files_in_store:
            return None
        from ..store.index_files import IndexFiles

        return IndexFiles(self.store.engine)

    # -- ONNX exports ------------------------------------------------------------------------
    def export_onnx(self, *, force: bool = False, int8: bool | None = None,
                    spaces: list[str] | None = None):
        """Export the spaces' encoders under <index>/onnx/ (those missing or stale; all with
        force), under the write lock. One ExportResult per space; never raises for one."""
        from ..encoders.export import export_index

        with self.lock.folder_only():  # the folder's own files: the store is not written
            results = export_index(self, force=force, int8=int8, spaces=spaces)
        for result in results:  # queries of this process take the new export from now on
            if result.status == "exported" and result.space in self.spaces:
                self.spaces[result.space].forget_export()
        return results

    def _int8_documents(self, cfg: SpaceConfig) -> bool:
        return self.config.document_precision == "int8" and cfg.encoder == "sentence-transformers"

    def onnx_exports_stale(self) -> list[str]:
        """Spaces whose export is missing or stale (cheap: a stat per file when verified)."""
        from ..encoders.export import SUPPORTED, export_state

        return [name for name, cfg in self.config.spaces.items()
                if cfg.encoder in SUPPORTED and export_state(
                    self.path, cfg, int8=self._int8_documents(cfg)) is not None]

    def export_status(self, cfg: SpaceConfig) -> str:
        """'current', or why the space's queries would not use an ONNX export."""
        from ..encoders.export import SUPPORTED, export_state

        if cfg.encoder not in SUPPORTED:
            return f"none (no export for {cfg.encoder} encoders)"
        why = export_state(self.path, cfg, int8=self._int8_documents(cfg))
        return "current" if why is None else why

    def export_document_encoder(self, space: Space, precision: str):
        """(the export's document encoder, None) for a text space, "onnx" (fp32) or "int8",
        exporting it first if needed; or (None, reason)."""
        from ..encoders.onnx import load_document_encoder

        int8 = precision == "int8"
        if not space.config.identity:  # a new space: the identity comes with its first vectors
            return None, "the space has no encoder identity yet (exported after its first sync)"
        enc, reason = load_document_encoder(self.path, space.name, space.config.identity,
                                            int8=int8)
        if enc is None:
            result = self.export_onnx(int8=int8, spaces=[space.name])[0]
            if result.status not in ("exported", "current"):
                return None, result.reason
            enc, reason = load_document_encoder(self.path, space.name, space.config.identity,
                                                int8=int8)
        if enc is not None:
            try:  # a session that cannot be built fails here, not in the middle of a sync
                enc.warm("text")
            except Exception as exc:  # noqa: BLE001
                return None, f"{type(exc).__name__}: {exc}"
        return enc, reason

    # -- sources -----------------------------------------------------------------------------
    def declared(self) -> dict[str, SourceSpec]:
        """Sources declared in TOML files: <index>/anyfind.toml and `config_files`."""
        specs: dict[str, SourceSpec] = {}
        own = self.path / CONFIG_NAME
        for file in ([own] if own.is_file() else []) + self.config_files:
            specs.update(load_config(file))
        return specs

    def workdir(self, source_id: int) -> Path:
        return self.path / "cache" / f"source-{source_id}"

    def connector(self, row: dict[str, Any], spec: SourceSpec | None = None):
        """A ready connector for a stored source row (or its declared spec), with its real
        credentials restored; (connector, the secrets to redact from its messages)."""
        if spec is not None:
            uri, options, secrets = runtime_form(spec.uri, spec.options, {})
        else:
            uri, options, secrets = runtime_form(row["uri"], row["options"] or {},
                                                 self.secrets.get(f"source:{row['name']}"))
        connector = connector_for(row["kind"], uri, options)
        connector.workdir = self.workdir(row["id"])
        connector.prior_state = dict(row.get("state") or {})
        connector.secrets = secrets
        return connector

    # -- lifetime ----------------------------------------------------------------------------
    def forget_services(self) -> None:
        """Drop what was opened on the services, after their URLs changed: the next use
        opens the new ones."""
        with self._open_lock:
            for vs in self._vectors.values():
                close = getattr(vs, "close", None)
                if close is not None:
                    close()
            self._vectors.clear()
            self._bm25.forget()
            self.__dict__.pop("deployment", None)
            lexical = built(self, "lexical")
            if lexical is not None:
                lexical.close()
                forget(self, "lexical")
            if self._reader is not None and self._reader is not self._store:
                self._reader.close()
            self._reader = None
            if self._store is not None:
                self._store.close()
                self._store = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
        if built(self, "lexical") is not None:
            built(self, "lexical").close()
        if self._reader is not None and self._reader is not self._store:
            self._reader.close()
        if self._store is not None:
            self._store.close()

