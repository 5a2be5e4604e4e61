"""Vision space: an open_clip model embeds images and texts into one space."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, require
from .base import Encoder, resolve_device
from .imageprep import ImagePrep, pixels_for, source_image

_registered_configs: set[str] = set()


def register_model_config(path: str | Path) -> str:
    """Make a custom open_clip architecture JSON known by its file stem; returns that name."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"open_clip model config {path} does not exist")
    if str(path) not in _registered_configs:
        require("open_clip", "images").add_model_config(path)
        _registered_configs.add(str(path))
    return path.stem


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class OpenClipEncoder(Encoder):
    """open_clip CLIP-style model; images and texts share one embedding space.

    `weights` is a local checkpoint (a file, or a `local-dir:` style folder holding
    open_clip_config.json); otherwise `pretrained` names a hub tag that open_clip downloads
    on a connected machine. `model_config` registers a custom architecture JSON first.
    """

    kind = "open-clip"
    uses_torch = True
    modalities = frozenset({"text", "image"})

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = "laion2b_s34b_b79k",
        weights: str | None = None,
        device: str | None = None,
        precision: str | None = None,
        model_config: str | None = None,
        batch_size: int = 32,
        **_: Any,
    ):
        self.model_config = Path(model_config).expanduser() if model_config else None
        self.model_name = self.model_config.stem if self.model_config else model
        self.pretrained = pretrained
        self.weights = Path(weights).expanduser() if weights else None
        if self.weights is not None and not self.weights.exists():
            raise ConfigError(f"open_clip weights {self.weights} do not exist")
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self._model = None
        self._preprocess = None
        self._prep: ImagePrep | None = None
        self._tokenize = None
        self._load_lock = threading.Lock()
        self._sha256: str | None = None
        self._cfg: dict[str, Any] | None = None
        self._dim: int | None = None

    # -- loading ---------------------------------------------------------------------------

    def _model_id(self) -> str:
        if self.model_config is not None:
            register_model_config(self.model_config)
        if self.weights is not None and self.weights.is_dir():
            return f"local-dir:{self.weights}"
        return self.model_name

    def _load(self) -> None:
        open_clip = require("open_clip", "images")
        device = resolve_device(self.device)
        precision = self.precision or ("fp16" if device == "cuda" else "fp32")
        model_id = self._model_id()
        source: str | None = None  # a local-dir: folder brings its own weights
        if self.weights is not None and self.weights.is_file():
            source = str(self.weights)
        elif not model_id.startswith("local-dir:"):
            if not self.pretrained:
                raise ConfigError(
                    f"open_clip model '{self.model_name}' has no weights: pass weights= (a local "
                    "checkpoint) or pretrained= (a hub tag)"
                )
            source = self.pretrained
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_id, pretrained=source, device=device, precision=precision
            )
        except (RuntimeError, OSError) as exc:
            raise ConfigError(
                f"open_clip model '{self.model_name}' ({source or model_id}) could not be "
                f"loaded ({exc}); pass weights=<local checkpoint> or connect once to download it"
            ) from exc
        self._preprocess = preprocess
        self._prep = ImagePrep.from_transform(preprocess)
        self._tokenize = open_clip.get_tokenizer(model_id)
        self.device = device
        self.precision = precision
        self._model = model.eval()  # last: other threads test it to see "loaded"

    @property
    def model(self):
        """The loaded model (loaded once, whichever thread asks first: prepare workers ask
        for image_prep while the main thread encodes)."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._load()
        return self._model

    def image_prep(self) -> ImagePrep | None:
        """The per-image half of open_clip's preprocess, for the prepare workers (loads the
        model). None when the transform cannot be split."""
        _ = self.model
        return self._prep

    def _config(self) -> dict[str, Any]:
        """The architecture config, read without building the model ({} when unknown)."""
        if self._cfg is None:
            open_clip = require("open_clip", "images")
            try:
                self._cfg = open_clip.get_model_config(self._model_id()) or {}
            except (OSError, ValueError):
                self._cfg = {}
        return self._cfg

    # -- contract --------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        if self._dim is None:
            embed_dim = self._config().get("embed_dim")
            if embed_dim is None:  # unusual config: ask the model itself
                embed_dim = self._encode([""], "text", query=True).shape[1]
            self._dim = int(embed_dim)
        return self._dim

    def max_tokens(self) -> int:
        if self._model is not None:
            return int(self._model.context_length)
        return int(self._config().get("text_cfg", {}).get("context_length", 77))

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {"kind": self.kind, "model": self.model_name}
        if self.weights is not None:
            ident["weights"] = self.weights.name
            if self.weights.is_file():
                if self._sha256 is None:
                    self._sha256 = file_sha256(self.weights)[:16]
                ident["sha256"] = self._sha256
        else:
            ident["pretrained"] = self.pretrained
        ident["dim"] = self.dim
        return ident

    def _encode(self, inputs: Sequence[Any], modality: str, *, query: bool) -> np.ndarray:
        import torch

        model = self.model
        if modality == "image":
            dtype = next(model.parameters()).dtype
            if self._prep is not None:
                arrays = [pixels_for(self._prep, item) for item in inputs]
                batch = self._prep.batch(arrays, self.device, dtype)
            else:
                batch = torch.stack([self._preprocess(source_image(item)) for item in inputs])
                batch = batch.to(self.device, dtype=dtype)
            with torch.no_grad():
                out = model.encode_image(batch)
        else:
            tokens = self._tokenize([str(t) for t in inputs])  # truncates to the context length
            with torch.no_grad():
                out = model.encode_text(tokens.to(self.device))
        return out.float().cpu().numpy()
