"""The Index: one directory holding a config, a metadata store and a vector file per space.

    from anyfind import Index
    index = Index.open("notes")          # a name under ANYFIND_HOME, or a path
    index.add(["~/notes"])               # adds a filesystem source and syncs it
    for r in index.search("tax deadline"):
        print(r.score, r.path, r.text)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import (
    CONFIG_FILE,
    IndexConfig,
    clip_space,
    SpaceConfig,
    default_tagger,
    default_text_space,
    default_transcriber,
    resolve_index_path,
)
from .connectors import connector_for
from .errors import ConfigError, IndexNotFound, ModelMismatch
from .indexer.report import SyncReport
from .lock import WriteLock
from .search.engine import Query, Searcher
from .search.results import Result
from .store.metadata import ChunkRecord, Store
from .store.vectors import VectorIndex

if TYPE_CHECKING:
    from .checks import CheckReport

VECTOR_DIR = "vectors"


class Space:
    """An embedding space at run time: its config, its encoder and its FAISS index."""

    def __init__(self, index: Index, config: SpaceConfig):
        self.index = index
        self.config = config
        self._encoder = None

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

    def accepts(self, modality: str) -> bool:
        return modality in self.encoder.modalities


class Index:
    def __init__(self, path: Path, config: IndexConfig, device: str | None = None):
        self.path = Path(path)
        self.config = config
        self.device = device
        self.store = Store(config.store_url or f"sqlite:///{self.path / 'meta.db'}")
        self.spaces = {name: Space(self, cfg) for name, cfg in config.spaces.items()}
        self.lock = WriteLock(self.path)
        self._vectors: dict[str, VectorIndex] = {}
        self._chunker = None
        self._context = None
        self._tagger = None
        self._label_vectors: dict[int, dict[str, np.ndarray]] = {}

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
        elif not create:
            raise IndexNotFound(f"no index at {path} (create one with `anyfind index PATH`)")
        else:
            config = IndexConfig(spaces={"text": default_text_space(text_model)},
                                 store_url=store_url, transcriber=default_transcriber(),
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
            index = cls(path, config, device)
            for space in index.spaces.values():
                space.config.dim = space.encoder.dim
                space.config.identity = space.encoder.identity()
            config.save(path)
            return index
        return cls(path, config, device)

    def close(self) -> None:
        self.store.close()

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
                source_id = self.store.ensure_source(name, "filesystem", str(root), options)
                report.merge(self._sync_one(source_id, "filesystem", str(root), options, progress))
        return report

    def _source_name_for(self, root: Path) -> str:
        existing = {s["name"]: s for s in self.store.sources()}
        for s in existing.values():
            if s["kind"] == "filesystem" and s["uri"] == str(root):
                return s["name"]
        base = root.name or "root"
        name, n = base, 2
        while name in existing:
            name, n = f"{base}-{n}", n + 1
        return name

    def _sync_one(self, source_id: int, kind: str, uri: str, options: dict, progress: bool,
                  retry_errors: bool = False) -> SyncReport:
        from .indexer.pipeline import Pipeline

        connector = connector_for(kind, uri, options)
        return Pipeline(self, progress=progress).sync(source_id, connector, retry_errors)

    def sync(self, sources: Sequence[str] | None = None, *, progress: bool = False,
             retry_errors: bool = False) -> SyncReport:
        """Re-sync sources (all by default) incrementally."""
        report = SyncReport()
        with self.lock:
            known = {s["name"]: s for s in self.store.sources()}
            for name in sources or list(known):
                if name not in known:
                    raise ConfigError(f"no source named '{name}' (see `anyfind sources list`)")
                s = known[name]
                report.merge(self._sync_one(s["id"], s["kind"], s["uri"], s["options"] or {},
                                            progress, retry_errors))
        return report

    def remove(self, paths: Iterable[str | os.PathLike]) -> int:
        """Forget items at these paths (files, or everything under a folder)."""
        with self.lock:
            wanted = [str(Path(p).expanduser().absolute()) for p in paths]
            ids = self.store.item_ids_by_path(wanted)
            self.store.delete_items(ids)
            self.refresh_vectors(save=True)
        return len(ids)

    def reindex(self, *, text_model: str | None = None, progress: bool = False) -> SyncReport:
        """Re-extract and re-embed everything (optionally with another text model)."""
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
                                           self.config.max_image_pixels)
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
        if extracted.modality == "image":
            item.chunks = [ChunkRecord(ordinal=0, modality="image", text="")]
            item.images[0] = extracted.image
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
        for (item, chunk), tags in zip(pairs, all_tags):
            item.meta["tags"] = [{"label": label, "prob": prob} for label, prob in tags]
            chunk.text = ", ".join(label for label, _ in tags)

    def _tag_vector(self, encoder, tags: list[dict]) -> np.ndarray | None:
        """Probability-weighted mean of the tag names' text embeddings."""
        if not tags:
            return None
        cache = self._label_vectors.setdefault(id(encoder), {})
        missing = [t["label"] for t in tags if t["label"] not in cache]
        if missing:
            for label, vec in zip(missing, encoder.encode_documents(missing)):
                cache[label] = vec
        vec = sum(t["prob"] * cache[t["label"]] for t in tags)
        norm = float(np.linalg.norm(vec))
        return (vec / norm).astype(np.float32) if norm > 0 else None

    def embed_chunks(self, items) -> None:
        """Fill chunk.vectors for every space that accepts each chunk, batched per space."""
        self._tag_images(items)
        for name, space in self.spaces.items():
            enc = space.encoder
            by_modality: dict[str, list[tuple[ChunkRecord, Any]]] = {}
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
            for modality, pairs in by_modality.items():
                vecs = enc.encode_documents([x for _, x in pairs], modality)
                for (chunk, _), vec in zip(pairs, vecs):
                    chunk.vectors = {**(chunk.vectors or {}), name: vec}
        for name, space in self.spaces.items():
            if space.config.dim:
                self.store.ensure_space(name, space.config.dim)

    # -- vectors -------------------------------------------------------------------------
    def vectors(self, name: str) -> VectorIndex:
        vi = self._vectors.get(name)
        if vi is None:
            cfg = self.config.spaces[name]
            vi = VectorIndex(self.path / VECTOR_DIR, name, cfg.dim or 0, cfg.faiss)
            vi.load()
            vi = self._vectors.setdefault(name, vi)  # another thread may have been first
        vi.catch_up(self.store)
        return vi

    def refresh_vectors(self, save: bool = False) -> None:
        for name in self.spaces:
            vi = self._vectors.get(name)
            if vi is None:
                cfg = self.config.spaces[name]
                vi = VectorIndex(self.path / VECTOR_DIR, name, cfg.dim or 0, cfg.faiss)
                vi.load()
                self._vectors[name] = vi
            changed = vi.catch_up(self.store)
            if save and (changed or not vi.path.exists()):
                vi.save()

    # -- searching -----------------------------------------------------------------------
    def search(self, query: str | None = None, *, k: int = 10, image: Any = None,
               audio: Any = None, offset: int = 0, mode: str = "hybrid", chunks: bool = False,
               min_score: float | None = None) -> list[Result]:
        """Ranked results across every modality and source."""
        q = Query(text=query, image=image, audio=audio, k=k, offset=offset, mode=mode,
                  chunks=chunks, min_score=min_score)
        if query is None and image is None and audio is None:
            from .errors import QueryError

            raise QueryError("nothing to search for: give a query, an image or an audio clip")
        return Searcher(self).search(q)

    def extra_signals(self, q: Query, depth: int) -> dict[str, list[tuple[int, float]]]:
        """Signals beyond the embedding spaces (lexical search plugs in here)."""
        return {}

    def transcribe_query(self, audio: Any) -> str:
        transcriber = self.extract_context().transcriber
        if transcriber is None:
            from .audio.transcribe import Transcriber

            transcriber = self._query_transcriber = getattr(
                self, "_query_transcriber", None) or Transcriber(device=self.device or "auto")
        return transcriber.transcribe(str(audio)).text

    def load_query_image(self, image: Any):
        """A PIL image from a PIL image, a path or an http(s) URL."""
        from PIL import Image

        from .extract.image import to_rgb

        if isinstance(image, Image.Image):
            return to_rgb(image)
        if isinstance(image, str) and image.startswith(("http://", "https://")):
            import io
            import urllib.request

            with urllib.request.urlopen(image, timeout=20) as resp:  # noqa: S310 - user's URL
                data = resp.read(50 * 1024 * 1024)
            img = Image.open(io.BytesIO(data))
            img.load()
            return to_rgb(img)
        try:
            with Image.open(image) as img:
                img.load()
                return to_rgb(img)
        except OSError as exc:
            from .errors import QueryError

            raise QueryError(f"cannot read query image {image}: {exc}") from exc

    def image_tag_vector(self, encoder, image) -> np.ndarray | None:
        """A text space's view of an image: the weighted mean of its tag names."""
        if self.tagger is None:
            return None
        tags = self.tagger.tag([image])[0]
        return self._tag_vector(encoder, [{"label": lab, "prob": p} for lab, p in tags])

    def thumbnail(self, item_id: int) -> Path | None:
        row = self.store.item(item_id)
        return self.thumbnails.get(row["content_hash"]) if row else None

    # -- reading -------------------------------------------------------------------------
    def item(self, item_id: int) -> dict[str, Any] | None:
        row = self.store.item(item_id)
        if row is not None:
            row["chunks"] = self.store.chunks_of_item(item_id)
        return row

    def status(self) -> dict[str, Any]:
        counts = self.store.counts()
        size = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        return {
            "index": str(self.path),
            "store": self.store.engine.url.render_as_string(hide_password=True),
            "spaces": {n: {"encoder": s.config.encoder, "model": s.config.model,
                           "dim": s.config.dim, "vectors": counts["vectors"].get(n, 0)}
                       for n, s in self.spaces.items()},
            "sources": self.store.sources(),
            "disk_bytes": size,
            **{k: v for k, v in counts.items() if k not in ("vectors", "sources")},
        }

    def errors(self) -> list[dict[str, Any]]:
        return self.store.errors()

    # -- checking ------------------------------------------------------------------------
    def check(self, repair: bool = False) -> CheckReport:
        """Verify the index's consistency (anyfind.checks); with repair, fix what can be
        fixed without re-embedding. Returns a CheckReport."""
        from .checks import check_index

        return check_index(self, repair=repair)
