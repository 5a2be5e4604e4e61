"""The encoder contract. Batching, validation and normalisation live here, once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np


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
        """L2-normalised float32 vectors, one row per input."""
        return self._run(list(inputs), modality, query=False)

    def encode_query(self, inputs: Sequence[Any], modality: str = "text") -> np.ndarray:
        return self._run(list(inputs), modality, query=True)
