"""How a text space encodes documents: the precision setting and what `auto` resolves to.

Settings (config `document_precision`, `anyfind index/sync --precision`):

  auto   the fastest path that keeps the vectors within the fidelity bound (cosine
         >= 0.9999 to fp32 torch, tests/encoders/test_precision.py): fp16 on CUDA (as before),
         bf16 on a CPU with native bf16 matrix instructions (AMX-BF16 or AVX512-BF16),
         fp32 torch on any other CPU, the fp32 ONNX export when torch is not installed
  fp32   torch, full precision
  bf16   torch under CPU autocast to bfloat16 (slow on a CPU without native bf16)
  onnx   the fp32 ONNX export on onnxruntime (its optimised graph), no torch
  int8   the int8-quantised ONNX export (faster, but costs relevance: docs/BENCHMARKS.md)

Why bf16 and not the fp32 ONNX graph for `auto` on CPUs: measured on this project's
2-core Xeon (benchmarks/bench_doc_encoding.py), onnxruntime's fp32 graph encodes
MiniLM documents ~25 % slower than torch's fp32 (oneDNN), while bf16 autocast is 2.3x
faster than torch fp32 with vectors at cosine 0.99997 to fp32. Queries stay fp32 (the
ONNX export or torch): one short text gains nothing from bf16.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import PRECISIONS
from ..errors import ConfigError
from .base import Encoder

ONNX_PRECISIONS = ("onnx", "int8")  # the ones that run the space's ONNX export
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of native bf16 matmul


def check_precision(value: str) -> str:
    value = (value or "auto").strip().lower()
    if value not in PRECISIONS:
        raise ConfigError(f"unknown document precision {value!r}: use one of "
                          f"{', '.join(PRECISIONS)}")
    return value


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux x86: /proc/cpuinfo); empty where unknown."""
    if platform.system() != "Linux":
        return frozenset()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (else bf16 is emulated: slow)."""
    return any(flag in cpu_flags() for flag in CPU_BF16_FLAGS)


def torch_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("torch") is not None


def resolve_cpu_precision(setting: str, *, torch_available: bool | None = None) -> str:
    """What `setting` means for documents on a CPU: fp32, bf16, onnx or int8."""
    setting = check_precision(setting)
    if setting != "auto":
        return setting
    if not (torch_installed() if torch_available is None else torch_available):
        return "onnx"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def explain_auto() -> str:
    """One line: what `auto` chooses on this machine, without importing torch."""
    if not torch_installed():
        return "onnx (torch is not installed)"
    if cpu_has_native_bf16():
        return "bf16 on this CPU (native bf16), fp16 on a CUDA GPU"
    return "fp32 on this CPU (no native bf16), fp16 on a CUDA GPU"


class Bf16Documents(Encoder):
    """A torch encoder's document encoding under CPU autocast to bfloat16.

    The matrix products run in bf16 with fp32 accumulation; the vectors come back as
    float32 and are normalised as always. Queries go to the wrapped encoder untouched.
    The wrapped encoder is shared per process (encoders.get_encoder): this wrapper, not a
    flag on it, is what makes one index's documents bf16 and another's not."""

    precision = "bf16"

    def __init__(self, inner: Encoder):
        self.fp32 = inner  # queries
        # documents: the encoder's own bf16 twin when it has one (weights cast once)
        twin = getattr(inner, "bf16_documents", None)
        self.inner = twin() if callable(twin) else inner
        self.kind = inner.kind  # type: ignore[misc]
        self.modalities = inner.modalities  # type: ignore[misc]
        self.uses_torch = True  # type: ignore[misc]

    @property
    def batch_size(self) -> int:  # type: ignore[override]
        return self.inner.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.inner.batch_size = value

    @property
    def dim(self) -> int:
        return self.inner.dim

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def max_tokens(self) -> int | None:
        return self.inner.max_tokens()

    def tokenizer(self):
        return self.inner.tokenizer()

    def _encode(self, inputs: Sequence[Any], modality: str, *, query: bool) -> np.ndarray:
        with _cpu_bf16():
            return self.inner._encode(inputs, modality, query=query)

    def encode_documents(self, inputs: Sequence[Any], modality: str = "text") -> np.ndarray:
        with _cpu_bf16():
            return self.inner.encode_documents(inputs, modality)

    def encode_query(self, inputs: Sequence[Any], modality: str = "text", *,
                     as_one_query: bool = False) -> np.ndarray:
        return self.fp32.encode_query(inputs, modality, as_one_query=as_one_query)


@contextlib.contextmanager
def _cpu_bf16():
    import torch

    # autocast state is per thread: this covers exactly the calling thread's encode
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield
