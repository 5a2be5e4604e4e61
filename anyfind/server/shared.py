"""An Index shared by the request threads of one server process.

FastAPI runs sync routes on a thread pool, so many searches run at once while a sync
may be writing to the same index from another process. Two things need care:

- Vector catch-up. `Index.vectors()` brings a FAISS index up to the store generation
  in place, which must never happen under a running search. Here catch-up is
  copy-on-write: a search keeps the snapshot it was handed while a newer one is built
  beside it (under a lock, once), then swapped in.
- Models. Hugging Face tokenizers are not re-entrant and lazily built models race, so
  every model call (encode, tag, transcribe) runs on one model thread, one at a time.
  FAISS searches and SQLite reads (WAL: readers never block the writer) stay parallel.
"""

from __future__ import annotations

import functools
import tempfile
import threading
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..index import Index, Space
from ..store.vector_store import VectorStore

T = TypeVar("T")

MODEL_METHODS = frozenset({"encode_query", "encode_documents", "tag", "transcribe"})


class ModelThread:
    """Runs model calls one at a time on one dedicated thread.

    One at a time: tokenizers are not re-entrant. One thread: torch keeps an OpenMP team
    per calling thread, so inference hopping across a pool of request threads would
    build (and spin) a team in each of them. Encoders are cached per process
    (encoders.get_encoder), so there is one ModelThread per process too."""

    NAME = "anyfind-models"

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=self.NAME)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if threading.current_thread().name.startswith(self.NAME):
            return fn(*args, **kwargs)  # a model call made by a model call
        return self._executor.submit(fn, *args, **kwargs).result()


MODELS = ModelThread()


class Serialised:
    """A model proxy whose inference methods run on the model thread."""

    def __init__(self, target: Any, models: ModelThread = MODELS):
        self._target = target
        self._models = models

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in MODEL_METHODS or not callable(attr):
            return attr
        return functools.partial(self._models.run, attr)


class SharedSpace(Space):
    @property
    def encoder(self):
        if not isinstance(self._encoder, Serialised):
            with self.index.init_lock:
                if not isinstance(self._encoder, Serialised):
                    self._encoder = Serialised(MODELS.run(Space.encoder.fget, self))
        return self._encoder

    @property
    def query_encoder(self):
        if not self._export_tried:
            with self.index.init_lock:
                if not self._export_tried:
                    export = MODELS.run(self.load_export)
                    self._export = Serialised(export) if export is not None else None
                    self._export_tried = True
        # The torch fallback is taken outside init_lock: `encoder` takes it itself.
        return self._export if self._export is not None else self.encoder


class SharedIndex(Index):
    """Index whose search path is safe to call from many threads at once."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.init_lock = threading.Lock()
        self._catch_up_lock = threading.Lock()
        self._shared_tagger: Serialised | None = None
        self.spaces = {name: SharedSpace(self, s.config) for name, s in self.spaces.items()}

    # -- vectors: copy-on-write catch-up --------------------------------------------------
    def vectors(self, name: str) -> VectorStore:
        current = self._vectors.get(name)
        if current is not None and current.generation == self.store.generation(name):
            return current
        with self._catch_up_lock:
            current = self._vectors.get(name)
            if current is None:
                fresh = self._vector_store(name)
            elif current.generation == self.store.generation(name):
                return current  # another thread caught up while this one waited
            else:
                fresh = current.snapshot()
            fresh.catch_up(self.store)
            self._vectors[name] = fresh
            return fresh

    # -- models: one call at a time, on the model thread ----------------------------------
    @property
    def tagger(self):
        if self._shared_tagger is None and self.config.tagger:
            with self.init_lock:
                if self._shared_tagger is None:
                    tagger = MODELS.run(Index.tagger.fget, self)
                    self._shared_tagger = Serialised(tagger) if tagger else None
        return self._shared_tagger

    def transcribe_query(self, audio: Any) -> str:
        return MODELS.run(super().transcribe_query, audio)

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


def write_silence(path: Path, seconds: float = 0.5, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
