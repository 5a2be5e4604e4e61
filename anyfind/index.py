"""The Index: the front door. It opens an index directory and offers one-line verbs;
the work happens below it (indexer/, search/, checks/) over an open-index object
(core.OpenIndex). CLI, server and Python users all come through here.

    from anyfind import Index
    index = Index.open("notes")          # a name under ANYFIND_HOME, or a path
    index.add(["~/notes"])               # adds a filesystem source and syncs it
    for r in index.search("tax deadline"):
        print(r.score, r.path, r.text)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from .core import OpenIndex
from .errors import ConfigError, IndexNotFound
from .fsutil import INDEX_MARKER
from .secrets import SecretFile, split_uri_secrets

if TYPE_CHECKING:
    from .checks import CheckReport
    from .indexer.report import SyncReport
    from .search.filters import Filters
    from .search.results import Result, Results


def _precision_wanted(precision: str | None, onnx_int8: bool | None, current: str) -> str:
    """The document precision asked for (precision wins over the older onnx_int8 flag)."""
    from .encoders.precision import check_precision

    if precision is not None:
        return check_precision(precision)
    if onnx_int8 is True:
        return "int8"
    if onnx_int8 is False and current == "int8":
        return "auto"
    return current


class Index:
    def __init__(self, path: Path, config: IndexConfig, device: str | None = None, *,
                 concurrent: bool = False):
        self.opened = OpenIndex(path, config, device, concurrent=concurrent)

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, name_or_path: str | os.PathLike | None = None, *, create: bool = True,
             text_model: str | None = None, clip: bool = False, clip_model: str | None = None,
             clip_weights: str | None = None, clip_config: str | None = None,
             store_url: str | None = None, device: str | None = None,
             concurrent: bool = False, onnx_int8: bool | None = None,
             precision: str | None = None, one_query: bool = False, spaces: dict[str, dict[str, Any]] | None = None,
             **settings: Any) -> Index:
        """Open an index by name or path; create it (with these settings) if missing.

        clip / clip_model / clip_weights add the shared image-text space (open_clip).
        concurrent: shared by many threads (a server). precision: how text spaces encode
        documents, auto | fp32 | bf16 | onnx | int8 (encoders/precision.py), kept in the
        config (None: as the index says); onnx_int8=True is precision "int8". one_query: a
        process that runs a query or two and exits (vector files mapped, not read; ONNX
        sessions that build fastest). spaces: more embedding spaces for a new index, by
        name: {"encoder": a registered encoder (a plugin's too), "model", "options"}."""
        path = resolve_index_path(name_or_path)
        wanted = {"text": default_text_space(text_model)} if text_model else {}
        clip_pretrained = settings.pop("clip_pretrained", None)
        if clip or clip_model or clip_weights or clip_config or clip_pretrained:
            wanted["vision"] = clip_space(clip_model, clip_weights, clip_pretrained, clip_config)
        if (path / CONFIG_FILE).exists():
            config = IndexConfig.load(path)
            config.check_models(wanted)
            _mark_index_dir(path)
            index = cls(path, config, device, concurrent=concurrent)
            if store_url or settings.get("vector_store"):  # kept, adopted or refused
                from .core.services import given_again

                given_again(index.opened, store_url, settings.get("vector_store"))
            want = _precision_wanted(precision, onnx_int8, config.document_precision)
            if want != config.document_precision:
                index.opened.set_document_precision(want)
            index.opened.one_query = one_query
            return index
        if not create:
            raise IndexNotFound(f"no index at {path} (create one with `anyfind index PATH`)")
        masked_url, found = split_uri_secrets(store_url) if store_url else (None, {})
        want = _precision_wanted(precision, onnx_int8, "auto")
        config = IndexConfig(spaces={"text": default_text_space(text_model)},
                             store_url=masked_url, transcriber=default_transcriber(),
                             tagger=default_tagger(), document_precision=want,
                             onnx_int8=want == "int8")
        if "vision" in wanted:
            config.spaces["vision"] = wanted["vision"]
        for name, spec in (spaces or {}).items():
            if name in config.spaces:
                raise ConfigError(f"space '{name}' exists already (text, vision are built in)")
            config.spaces[name] = SpaceConfig(name=name, **spec)
        vector_secrets: dict[str, str] = {}
        if settings.get("vector_store"):  # a token in it goes to secrets.json, like passwords
            settings["vector_store"], vector_secrets = split_uri_secrets(settings["vector_store"])
        for key, value in settings.items():
            if not hasattr(config, key):
                raise ConfigError(f"unknown index setting '{key}'")
            setattr(config, key, value)
        from ._version import __version__

        config.anyfind_version = __version__
        new = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        if new:  # it holds the indexed text (meta.db, lexical/): its owner's only; chmod to share
            os.chmod(path, 0o700)
        _mark_index_dir(path)
        SecretFile(path).put("store_url", found)  # the password never in config.json
        SecretFile(path).put("vector_store", vector_secrets)
        index = cls(path, config, device, concurrent=concurrent)
        for space in index.opened.spaces.values():
            space.config.dim = space.encoder.dim
            space.config.identity = space.encoder.identity()
        config.save(path)
        return index

    # What the layers below read (tests and power users too): the open index's parts.
    @property
    def path(self) -> Path:
        return self.opened.path

    @property
    def config(self) -> IndexConfig:
        return self.opened.config

    @property
    def store(self):
        return self.opened.store

    @property
    def reader(self):
        return self.opened.reader

    @property
    def lexical(self):
        return self.opened.lexical

    @property
    def spaces(self):
        return self.opened.spaces

    @property
    def lock(self):
        return self.opened.lock

    def close(self) -> None:
        self.opened.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def add(self, paths: Iterable[str | os.PathLike], *, include: Sequence[str] = (),
            exclude: Sequence[str] = (), hidden: bool = False, progress: bool = False
            ) -> SyncReport:
        """Index folders or files (each becomes a filesystem source) and sync them."""
        return _sync().add_folders(self.opened, paths, include=include, exclude=exclude,
                                 hidden=hidden, progress=progress)

    def add_documents(self, source: str, records: Iterable[Any], *, progress: bool = False
                      ) -> SyncReport:
        """Index in-memory documents as the source `source`: (id, title, text) tuples,
        dicts with id/title/text, or connectors.records.Record. The source then holds
        exactly these records (unchanged ones cost nothing; missing ones are removed)."""
        return _sync().add_documents(self.opened, source, records, progress=progress)

    def add_source(self, name: str, uri: str, kind: str | None = None, *, replace: bool = False,
                   **options: Any) -> dict[str, Any]:
        """Declare a source (not synced yet: call sync([name])). `${ENV}` references in the
        URI and options are kept as references; literal credentials go to secrets.json."""
        return _sync().add_source(self.opened, name, uri, kind, replace=replace, **options)

    def remove_source(self, name: str) -> int:
        """Forget a source with its items and vectors; returns how many items went."""
        return _sync().remove_source(self.opened, name)

    def sources(self) -> list[dict[str, Any]]:
        """Every source, stored or declared in a config file, credentials masked."""
        return _sync().list_sources(self.opened)

    def use_config(self, path: str | os.PathLike) -> None:
        """Also read sources from this TOML file (beside <index>/anyfind.toml)."""
        _sync().use_config(self.opened, path)

    def use_executor(self, kind: str, **options: Any) -> None:
        """Run this process's syncs on another encoding executor: "local" (this process)
        or "ray" (options: address="auto" | "HOST:PORT" | "ray://HOST:10001", actors=N,
        actor_cpus, actor_gpus); config.json keeps its own choice."""
        self.opened.use_executor(kind, **options)

    def sync(self, sources: Sequence[str] | None = None, *, progress: bool = False,
             retry_errors: bool = False) -> SyncReport:
        """Re-sync sources (all by default) incrementally. Sources declared in config files
        are registered (or updated) first. A source that fails is named in
        report.failed_sources and its error is in report.errors; the others go on."""
        return _sync().sync_sources(self.opened, sources, progress=progress,
                                  retry_errors=retry_errors)

    def remove(self, paths: Iterable[str | os.PathLike]) -> int:
        """Forget items at these paths (files, or everything under a folder)."""
        return _sync().remove_paths(self.opened, paths)

    def item_ids_at(self, paths: Iterable[str | os.PathLike]) -> list[int]:
        """Ids of the items at these paths (files, or everything under a folder)."""
        return _sync().item_ids_at(self.opened, paths)

    def reindex(self, *, text_model: str | None = None, progress: bool = False) -> SyncReport:
        """Re-extract and re-embed everything (optionally with another text model)."""
        return _sync().reindex(self.opened, text_model=text_model, progress=progress)

    def reread_pixels(self, engine: str | None = None, *, progress: bool = False
                      ) -> SyncReport:
        """Read the text in every image and PDF again (optionally with another OCR
        engine, or "off"); nothing else is re-read."""
        return _sync().reread_pixels(self.opened, engine, progress=progress)

    def export_onnx(self, *, force: bool = False, int8: bool | None = None,
                    spaces: Sequence[str] | None = None):
        """Export the spaces' encoders to ONNX under <index>/onnx/ (torch-free queries), those
        missing or stale (all with force). One ExportResult per space; never raises."""
        return self.opened.export_onnx(force=force, int8=int8,
                                       spaces=list(spaces) if spaces else None)

    def onnx_exports_stale(self) -> list[str]:
        return self.opened.onnx_exports_stale()

    def auto_export(self) -> list:
        """After indexing: export the encoders where missing or stale, so the next search
        needs no torch. Off with ANYFIND_ONNX_EXPORT=0; never raises (a failure is a
        result with status "failed")."""
        from .encoders.export import ExportResult
        from .encoders.query import exports_off

        if exports_off():
            return []
        try:
            return self.opened.export_onnx() if self.opened.onnx_exports_stale() else []
        except Exception as exc:  # noqa: BLE001 (a warning, never a failed index run)
            from .errors import one_line

            return [ExportResult("*", "failed", one_line(exc))]

    # -- searching -----------------------------------------------------------------------
    def search(self, query: str | None = None, *, k: int = 10, image: Any = None,
               audio: Any = None, offset: int = 0, mode: str = "hybrid", chunks: bool = False,
               min_score: float | None = None, fusion: str = "auto",
               weights: dict[str, float] | None = None, filters: str | Filters | None = None,
               rerank: str | None = None, syntax: bool = True,
               sources: Sequence[str] | None = None, floor: bool = True,
               prf: bool = False, embed_context: bool = True) -> Results:
        """Ranked results across every modality and source.

        `query` may hold filters (`ext:pdf after:2024-01-01`, see anyfind.search.filters);
        `filters` adds more. mode: hybrid (dense + lexical, fused), dense or lexical.
        fusion: auto (the default: rrf when the query reaches written text only, else
        relevance), relevance (the calibrated scores' union), rrf or score;
        weights by signal name ("text", "lexical", "dense" for every
        embedding space). rerank: a cross-encoder re-orders the top results.
        syntax=False takes the query text literally (no filters in it).
        sources: only items of these sources (by name). Scores are calibrated relevance in
        [0, 1] (anyfind.search.relevance); results under the relevance floor are left out
        and counted in the returned list's `hidden` (floor=False keeps them). prf: a
        second pass with pseudo-relevance feedback (Rocchio dense, RM3 lexical).
        embed_context: a note's passage that matches lends its relevance to the images
        it embeds (anyfind.search.embed_context); False: images by their own evidence."""
        from .search.engine import Query, Searcher

        q = Query(text=query, image=image, audio=audio, k=k, offset=offset, mode=mode,
                  chunks=chunks, min_score=min_score, fusion=fusion, weights=dict(weights or {}),
                  filters=filters, rerank=rerank, syntax=syntax,
                  sources=list(sources) if sources else None, floor=floor, prf=prf,
                  embed_context=embed_context)
        return Searcher(self.opened).search(q)

    def search_grouped(self, query: str | None = None, *, k: int = 10, **options: Any
                       ) -> list[Any]:
        """The grouped view (notes vaults): at most `k` cards, each a note with its
        matching passages and the matching items it embeds or links, or an item no note
        holds, alone (anyfind.search.context.Group). Options as for `search`."""
        from .search.context import GROUP_DEPTH, grouped

        return grouped(self.search(query, k=k * GROUP_DEPTH, **options), k)

    def related(self, item_id: int, *, k: int = 10, unlinked: bool = False
                ) -> list[dict[str, Any]]:
        """What relates to an item, each with its reason: what it links or embeds and what
        links or embeds it (notes vaults), then the `k` most similar items in any modality
        ("similar 0.83"); `unlinked`: only the similar ones not linked already."""
        from .errors import check_id
        from .search.related import related

        return related(self.opened, check_id(item_id), k=k, unlinked=unlinked)

    def similar(self, item_id: int, *, k: int = 10, offset: int = 0,
                filters: str | Filters | None = None) -> list[Result]:
        """Items closest to one indexed item, in every space that holds its vectors."""
        from .search.similar import similar

        return similar(self.opened, item_id, k=k, offset=offset, filters=filters)

    def transcribe_query(self, audio: Any) -> str:
        """The words of a spoken clip, by the index's transcriber."""
        from .core.query_inputs import transcribe_query

        return transcribe_query(self.opened, audio)

    def warm(self) -> list[str]:
        """Load every model a query can need and run each once (a server before its first
        request); names what was warmed."""
        from .search.warm import warm

        return warm(self.opened)

    # -- reading -------------------------------------------------------------------------
    def item(self, item_id: int) -> dict[str, Any] | None:
        """An item's row with its passages (`chunks`), the item it was found inside
        (`parent`: id and path, or None) and the items found inside it (`children`)."""
        from .core.reading import item_view

        return item_view(self.opened, item_id)

    def attachment(self, item_id: int):
        """The bytes of an item found inside another (an e-mail's attachment), re-cut from
        its parent's current content: an `extract.Child` (name, media type, data)."""
        from .core.attachments import attachment_of

        return attachment_of(self.opened, item_id)

    def thumbnail(self, item_id: int, frame: int | None = None) -> Path | None:
        """The item's thumbnail JPEG; `frame`: one kept frame's of a video (its chunk
        ordinal, as a result's moments name it)."""
        from .core.reading import thumbnail_of

        return thumbnail_of(self.opened, item_id, frame)

    def status(self) -> dict[str, Any]:
        from .core.reading import status_of

        return status_of(self.opened, self.sources())

    def errors(self) -> list[dict[str, Any]]:
        return self.opened.store.errors()

    # -- checking ------------------------------------------------------------------------
    def check(self, repair: bool = False) -> CheckReport:
        """Verify the index's consistency (anyfind.checks); with repair, fix what can be
        fixed without re-embedding. Returns a CheckReport."""
        from .checks import check_index

        return check_index(self.opened, repair=repair)


def _sync():
    """indexer/sync.py, where the writing verbs run (imported on first use: a search
    loads no SQLAlchemy)."""
    from .indexer import sync

    return sync


def _mark_index_dir(path: Path) -> None:
    """The marker that keeps a folder scan out of this index (secrets, models, state),
    wherever the index lives; best effort on an index opened read-only."""
    marker = path / INDEX_MARKER
    if not marker.exists():
        try:
            marker.write_text("anyfind index: never indexed by a folder scan\n")
        except OSError:
            pass
