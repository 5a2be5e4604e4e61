"""An embedding space at run time: its config, its encoder (torch), its query encoder
(the ONNX export when it is fresh) and its document encoder (int8 ONNX when asked for).

A space knows nothing of the index that holds it: what it needs from there (the index's
folder for its export, how to make an int8 export, a model thread for a server) is given
when it is made. `embeds()` is the one rule of which chunks a space holds vectors for,
used by indexing and by `anyfind check`.
"""

from __future__ import annotations

import logging
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

Int8Loader = Callable[["Space"], "tuple[Encoder | None, str | None]"]


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
                 index_dir: Path | None = None, int8_loader: Int8Loader | None = None,
                 models: ModelThread | None = None):
        self.config = config
        self.device = device
        self.index_dir = index_dir
        self.int8_loader = int8_loader  # set: documents go through the int8 export
        self.models = models  # set (servers): every model call runs on this thread
        self.one_shot_queries = False  # a process that encodes one query and exits
        self._init_lock = threading.Lock()
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
                                                   one_shot=self.one_shot_queries)
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

    @property
    def queries_use_torch(self) -> bool:
        return self._export_tried and self._export is None

    @property
    def document_encoder(self) -> Encoder:
        """What encodes documents: the encoder, or with an int8 loader on a text space its
        int8 ONNX model (exported on first need); torch again, with a warning, if that fails."""
        if self._document_encoder is None:
            self._document_encoder = self.encoder
            if self.int8_loader is not None and self.config.encoder == "sentence-transformers":
                enc, reason = self.int8_loader(self)
                if enc is None:
                    log.warning("int8 document encoding is off for space '%s': %s",
                                self.name, reason)
                else:
                    self._document_encoder = enc
        return self._document_encoder
