"""The encoder contract. Batching, validation and normalisation live here, once."""

from __future__ import annotations

import gc
import logging
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
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
    batch_size: int = 64

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

    def encode_query(self, inputs: Sequence[Any], modality: str = "text") -> np.ndarray:
        items = list(inputs)
        return with_smaller_batches(self, lambda: self._run(items, modality, query=True))
