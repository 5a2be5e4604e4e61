"""An Index shared by the request threads of one server process.

FastAPI runs sync routes on a thread pool, so many searches run at once while a sync
may be writing to the same index from another process. Two things need care:

- Vector catch-up. `Index.vectors()` brings a FAISS index up to the store generation
  in place, which must never happen under a running search. Here catch-up is
  copy-on-write: a search keeps the snapshot it was handed while a newer one is built
  beside it (under a lock, once), then swapped in.
- Models. Hugging Face tokenizers are not re-entrant and lazily built models race, so
  every model call (encode, tag, transcribe) is serialised by one lock. FAISS searches
  and SQLite reads (WAL: readers never block the writer) stay parallel.
"""

from __future__ import annotations

import tempfile
import threading
import wave
from pathlib import Path
from typing import Any

from ..index import Index, Space
from ..store.vectors import VectorIndex

MODEL_METHODS = frozenset({"encode_query", "encode_documents", "tag", "transcribe"})
# Encoders are cached per process (encoders.get_encoder), so two indexes may share one
# model object: the lock is per process too.
MODEL_LOCK = threading.RLock()


class Serialised:
    """A model proxy whose inference methods run one call at a time."""

    def __init__(self, target: Any, lock: threading.RLock):
        self._target = target
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in MODEL_METHODS or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


class SharedSpace(Space):
    @property
    def encoder(self):
        with self.index.model_lock:
            if not isinstance(self._encoder, Serialised):
                self._encoder = Serialised(Space.encoder.fget(self), self.index.model_lock)
        return self._encoder


class SharedIndex(Index):
    """Index whose search path is safe to call from many threads at once."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.model_lock = MODEL_LOCK
        self._catch_up_lock = threading.Lock()
        self._shared_tagger: Serialised | None = None
        self.spaces = {name: SharedSpace(self, s.config) for name, s in self.spaces.items()}

    # -- vectors: copy-on-write catch-up --------------------------------------------------
    def vectors(self, name: str) -> VectorIndex:
        current = self._vectors.get(name)
        if current is not None and current.generation == self.store.generation(name):
            return current
        with self._catch_up_lock:
            current = self._vectors.get(name)
            if current is None:
                cfg = self.config.spaces[name]
                fresh = VectorIndex(self.path / "vectors", name, cfg.dim or 0, cfg.faiss)
                fresh.load()
            else:
                fresh = snapshot(current)
            fresh.catch_up(self.store)
            self._vectors[name] = fresh
            return fresh

    # -- models: one call at a time -------------------------------------------------------
    @property
    def tagger(self):
        with self.model_lock:
            if self._shared_tagger is None:
                tagger = Index.tagger.fget(self)
                self._shared_tagger = Serialised(tagger, self.model_lock) if tagger else None
        return self._shared_tagger

    def transcribe_query(self, audio: Any) -> str:
        with self.model_lock:
            return super().transcribe_query(audio)

    def warm(self) -> list[str]:
        """Load every model a query can need and run each once; names what was warmed."""
        warmed = []
        for name in self.spaces:
            self.vectors(name)
            warmed.append(f"space:{name}")
        try:
            self.search("warm up", k=1)
        except Exception:  # noqa: BLE001 - an empty index still serves
            pass
        if self.config.tagger and self.tagger is not None:
            from PIL import Image

            self.tagger.tag([Image.new("RGB", (64, 64), "gray")])
            warmed.append("tagger")
        if self.config.transcriber is not None:
            with tempfile.TemporaryDirectory(prefix="anyfind-warm-") as tmp:
                clip = Path(tmp) / "silence.wav"
                write_silence(clip)
                self.transcribe_query(clip)
            warmed.append("transcriber")
        return warmed


def snapshot(vi: VectorIndex) -> VectorIndex:
    """An independent copy of a vector index, safe to change while `vi` is searched."""
    copy = VectorIndex(vi.directory, vi.space, vi.dim, vi.factory)
    if vi.index is not None:
        import faiss

        copy.index = faiss.clone_index(vi.index)
    copy.generation = vi.generation
    copy.built_factory = vi.built_factory
    copy.nprobe = vi.nprobe
    return copy


def write_silence(path: Path, seconds: float = 0.5, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
