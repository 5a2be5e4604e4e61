"""The encoder contract. Batching, validation and normalisation live here, once."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

T = TypeVar("T")
log = logging.getLogger("anyfind.encoders")


class Batched(Protocol):
    batch_size: int


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch's OutOfMemoryError, or an allocator's RuntimeError."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text
                                              or "can't allocate memory" in text)


def _free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def with_smaller_batches(owner: Batched, call: Callable[[], T]) -> T:
    """Run `call`; when it runs out of memory, halve owner.batch_size and run it again,
    down to batches of one. The smaller size stays: the next calls start from it."""
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_out_of_memory(exc) or owner.batch_size <= 1:
                raise
            owner.batch_size = max(1, owner.batch_size // 2)
            _free_memory()
            log.warning("out of memory: batch size lowered to %d", owner.batch_size)


QUERY_THREADS_ENV = "ANYFIND_QUERY_THREADS"

# torch's intra-op thread count is process state: a global default (taken by every thread
# that starts running torch ops afterwards), the MKL and pthreadpool settings, and the
# calling thread's OpenMP team size. Two threads that each save, set and restore it
# without a lock could interleave (A saves 2 and sets 1, B saves A's 1, A restores 2,
# B "restores" 1) and leave torch on one thread for good. So set, encode and restore run
# under one lock; it serialises query encodings, which costs nothing the model does not
# already cost (the tokenizers are not re-entrant, the server runs model calls one at a
# time anyway). Re-entrant: an encoder may encode a query inside another's.
_THREADS_LOCK = threading.RLock()


def query_threads_default() -> int:
    """ANYFIND_QUERY_THREADS when set (0: torch's own count), else 1."""
    value = os.environ.get(QUERY_THREADS_ENV, "").strip()
    try:
        return max(0, int(value)) if value else 1
    except ValueError:
        log.warning("%s=%r is not a number: using 1", QUERY_THREADS_ENV, value)
        return 1


@contextlib.contextmanager
def torch_threads(n: int, torch: Any = None) -> Iterator[None]:
    """Run the block with torch limited to `n` intra-op threads, then restore the count
    (also when the block raises). n <= 0, or torch absent: leave torch alone."""
    torch = torch or sys.modules.get("torch")
    if n <= 0 or torch is None:
        yield
        return
    with _THREADS_LOCK:
        before = torch.get_num_threads()
        if before != n:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def resolve_device(device: str | None) -> str:
    """'auto'/None -> cuda > mps > cpu (imports torch: call only when loading a model)."""
    if device and device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class Encoder(ABC):
    """Maps inputs of the modalities it accepts into one embedding space.

    Subclasses set `kind` (the registry name) and `modalities`, and implement `_encode`,
    `dim` and `identity`. Documents and queries are separate entry points because some
    models treat them differently (prefixes, instructions).
    """

    kind: ClassVar[str] = ""
    modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    uses_torch: ClassVar[bool] = False  # True: a query runs under query_threads (below)
    batch_size: int = 64
    # torch threads for encoding ONE text query (None: ANYFIND_QUERY_THREADS, else 1; 0:
    # torch's own count). A one-query forward pass is too small to split: extra threads
    # mostly wait on each other, and on a busy machine or in a server they also compete
    # with every other thread. Batches (documents, several queries) keep all threads.
    query_threads: int | None = None

    @property
    @abstractmethod
    def dim(self) -> int:
        """Dimension of the vectors this encoder returns."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What identifies the model, saved in the index config (kind, model, dim ...)."""

    @abstractmethod
    def _encode(self, inputs: Sequence[Any], modality: str, *, query: bool) -> np.ndarray:
        """Embed one batch; vectors need not be normalised."""

    def max_tokens(self) -> int | None:
        """Token budget of a text input (None when the encoder takes no text)."""
        return None

    def tokenizer(self):
        """A `tokenizers.Tokenizer` for chunking text to this encoder's budget, or None."""
        return None

    def image_prep(self):
        """An image encoder's per-image preprocessing, run by the prepare workers
        (encoders/imageprep.py), or None: `_encode` then gets images as they come (a
        PreparedImage, a PIL image or a path; `imageprep.source_image` gives the PIL image)."""
        return None

    def _run(self, inputs: Sequence[Any], modality: str, query: bool) -> np.ndarray:
        if modality not in self.modalities:
            raise ValueError(f"{self.kind} encoder does not accept {modality} input")
        if len(inputs) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._encode(inputs[i : i + self.batch_size], modality, query=query)
            for i in range(0, len(inputs), self.batch_size)
        ]
        return l2_normalize(np.concatenate(parts, axis=0))

    def encode_documents(self, inputs: Sequence[Any], modality: str = "text") -> np.ndarray:
        """L2-normalised float32 vectors, one row per input (batches shrink when memory
        runs out)."""
        items = list(inputs)
        return with_smaller_batches(self, lambda: self._run(items, modality, query=False))

    def encode_query(self, inputs: Sequence[Any], modality: str = "text", *,
                     as_one_query: bool = False) -> np.ndarray:
        """Like encode_documents, for queries. One text query runs on `query_threads`
        torch threads, and so does a batch that answers one query (`as_one_query`: the
        floor's null queries, search/specific.py); the previous count is restored."""
        items = list(inputs)

        def call() -> np.ndarray:
            return with_smaller_batches(self, lambda: self._run(items, modality, query=True))

        if modality != "text" or (len(items) != 1 and not as_one_query) or not self.uses_torch:
            return call()
        n = self.query_threads if self.query_threads is not None else query_threads_default()
        if n <= 0:
            return call()
        import torch  # the model needs it anyway: the first query is limited too

        with torch_threads(n, torch):
            return call()
