"""An embedding space at run time: its config, its encoder (torch), its query encoder
(the ONNX export when it is fresh) and its document encoder (by the index's document
precision: encoders/precision.py).

A space knows nothing of the index that holds it: what it needs from there (the index's
folder for its export, how to load or make an ONNX export for documents, a model thread
for a server) is given when it is made. `embeds()` is the one rule of which chunks a space
holds vectors for, used by indexing and by `anyfind check`.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelMismatch

if TYPE_CHECKING:
    from ..config import SpaceConfig
    from .base import Encoder
    from .serialised import ModelThread

log = logging.getLogger("anyfind.sources")

# plan_documents: a sync of at most this many items in a process without torch encodes on
# the ONNX export. Break-even measured on the 2-core Xeon: torch import + model load ~4 s;
# ONNX fp32 54 docs/s vs bf16 160 docs/s -> ~12 ms a chunk, so ~330 chunks; items have
# one chunk or more, so 100 items stay well under it.
SMALL_SYNC_ITEMS = 100

# (space, "onnx" | "int8") -> (the export's document encoder, None) or (None, why not)
DocumentLoader = Callable[["Space", str], "tuple[Encoder | None, str | None]"]


def embeds(accepts: frozenset[str] | set[str], chunk_modality: str, chunk_text: str | None,
           tags: Any) -> bool:
    """Whether a space whose encoder reads `accepts` holds a vector for this chunk: text
    when it reads text, an image when it reads images, or through its tags when it
    reads only text."""
    if chunk_modality == "image":
        return "image" in accepts or ("text" in accepts and bool(tags))
    return "text" in accepts and bool((chunk_text or "").strip())


class Space:
    def __init__(self, config: SpaceConfig, *, device: str | None = None,
                 index_dir: Path | None = None, precision: str = "auto",
                 document_loader: DocumentLoader | None = None,
                 models: ModelThread | None = None):
        self.config = config
        self.device = device
        self.index_dir = index_dir
        self.precision = precision  # the setting (encoders/precision.py)
        self.document_loader = document_loader  # loads the ONNX export for "onnx" / "int8"
        self.document_precision: str | None = None  # what text documents run in, once resolved
        self._small_sync = False  # plan_documents: a small sync in a process without torch
        self._pinned = False  # use_document_encoder: the caller's encoder stays
        self.models = models  # set (servers): every model call runs on this thread
        self.one_query = False  # a process that encodes one query and exits (OpenIndex.one_query)
        self._init_lock = threading.RLock()  # document_encoder takes encoder inside it
        self._encoder: Encoder | None = None
        self._document_encoder: Encoder | None = None
        self._export: Encoder | None = None
        self._export_tried = False
        self.export_problem: str | None = None  # why the export cannot be used

    @property
    def name(self) -> str:
        return self.config.name

    def _serialised(self, load: Callable[[], Any]) -> Any:
        if self.models is None:
            return load()
        from .serialised import Serialised

        value = self.models.run(load)
        return Serialised(value, self.models) if value is not None else None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            with self._init_lock:
                if self._encoder is None:
                    self._encoder = self._serialised(self._load_encoder)
        return self._encoder

    def _load_encoder(self) -> Encoder:
        from . import get_encoder

        enc = get_encoder(self.config.encoder, self.config.model, self.device,
                          **self.config.options)
        if self.config.dim is not None and enc.dim != self.config.dim:
            raise ModelMismatch(
                f"space '{self.name}' holds {self.config.dim}-d vectors but model "
                f"'{self.config.model}' gives {enc.dim}-d; run `anyfind reindex`")
        return enc

    @property
    def modalities(self) -> frozenset[str]:
        """What the encoder reads, as it declares (never guessed from its name)."""
        from . import encoders

        try:  # the class says it: no model is loaded to answer
            return frozenset(encoders.get(self.config.encoder).modalities)
        except Exception:  # noqa: BLE001 (a class that declares per instance)
            return frozenset(self.encoder.modalities)

    def accepts(self, modality: str) -> bool:
        return modality in self.modalities

    def embeds(self, chunk_modality: str, chunk_text: str | None, tags: Any) -> bool:
        return embeds(self.modalities, chunk_modality, chunk_text, tags)

    def load_export(self) -> Encoder | None:
        """The ONNX query encoder of this space, or None (export_problem says why)."""
        from .query import load_export

        if self.index_dir is None:
            self.export_problem = "no index folder"
            return None
        encoder, self.export_problem = load_export(self.index_dir, self.name,
                                                   self.config.identity, self.config.dim,
                                                   one_shot=self.one_query)
        return encoder

    @property
    def query_encoder(self) -> Encoder:
        """What encodes queries: the fresh ONNX export (no torch), else `encoder`."""
        if not self._export_tried:
            with self._init_lock:
                if not self._export_tried:
                    self._export = self._serialised(self.load_export)
                    self._export_tried = True
        # The torch fallback is taken outside the lock: `encoder` takes it itself.
        return self._export if self._export is not None else self.encoder

    def forget_export(self) -> None:
        """The export was just (re)written: the next query loads it again."""
        with self._init_lock:
            self._export, self._export_tried, self.export_problem = None, False, None

    @property
    def queries_use_torch(self) -> bool:
        return self._export_tried and self._export is None

    @property
    def document_encoder(self) -> Encoder:
        """What encodes documents, by the precision setting (encoders/precision.py): on a
        text space torch fp32 / bf16 or the ONNX export; any failure of the export path
        falls back to torch fp32 with a warning. Other spaces: the encoder as it is."""
        if self._document_encoder is None:
            with self._init_lock:
                if self._document_encoder is None:
                    self._document_encoder = self._load_document_encoder()
        return self._document_encoder

    def use_document_encoder(self, encoder: Encoder, label: str) -> None:
        """Encode this space's documents with `encoder` from now on (a library user's own
        quantised model, a benchmark's variant): it must give vectors of the space's model,
        the identity check is the caller's. `label` is what reports call it."""
        if encoder.dim != (self.config.dim or encoder.dim):
            raise ModelMismatch(f"space '{self.name}' holds {self.config.dim}-d vectors, the "
                                f"document encoder gives {encoder.dim}-d")
        with self._init_lock:
            self._document_encoder = encoder
            self.document_precision = label
            self._pinned = True

    def plan_documents(self, items: int) -> None:
        """A sync is about to read `items` items. Under auto, a small one in a process that
        has not loaded torch encodes on the current fp32 ONNX export (same vectors, cosine
        >= 0.99999): importing torch and loading the model take ~4 s, more than bf16 saves
        below a few hundred chunks (docs/BENCHMARKS.md); a large one takes auto's choice."""
        if self.precision != "auto" or self._pinned or self.index_dir is None:
            return
        small = items <= SMALL_SYNC_ITEMS and "torch" not in sys.modules
        if small != self._small_sync:
            with self._init_lock:
                self._small_sync = small
                self._document_encoder = None
                self.document_precision = None

    def _load_document_encoder(self) -> Encoder:
        from .precision import ONNX_PRECISIONS, Bf16Documents, resolve_cpu_precision

        if self.config.encoder != "sentence-transformers":
            return self.encoder  # its own precision: none of the settings apply
        if self._small_sync:
            enc = self._current_onnx_export()
            if enc is not None:
                self.document_precision = "onnx"
                return enc
        want = resolve_cpu_precision(self.precision)  # no torch import for onnx / int8
        if self.precision == "auto" and want == "bf16" and self._on_gpu():
            want = "fp32"  # a GPU: the torch encoder's own fp16
        if want in ONNX_PRECISIONS and self.document_loader is not None:
            enc, reason = self.document_loader(self, want)
            if enc is not None:
                self.document_precision = want
                return enc
            log.warning("%s document encoding is off for space '%s': %s (torch fp32 instead)",
                        want, self.name, reason)
            want = "fp32"
        if self._on_gpu():  # the torch encoder runs fp16 on CUDA whatever the setting
            self.document_precision = "fp16" if self._device() == "cuda" else "fp32"
            return self.encoder
        self.document_precision = want if want == "bf16" else "fp32"
        return Bf16Documents(self.encoder) if want == "bf16" else self.encoder

    def _current_onnx_export(self) -> Encoder | None:
        """The fp32 export for documents when it is current (never exported here: that
        needs torch, which is what a small sync avoids)."""
        from .onnx import load_document_encoder

        enc, reason = load_document_encoder(self.index_dir, self.name, self.config.identity,
                                            int8=False)
        if enc is None:
            log.debug("small sync of space '%s' stays on torch: %s", self.name, reason)
        return enc

    def _device(self) -> str:
        from .base import resolve_device
        from .precision import torch_installed

        if self.device not in (None, "auto") or not torch_installed():
            return self.device or "cpu"
        return resolve_device(self.device)

    def _on_gpu(self) -> bool:
        return self._device() != "cpu"
