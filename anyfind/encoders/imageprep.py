"""A model's image preprocessing split in two, read from the model's own transform.

Per image (PIL only, no torch op): the transform's steps before ToTensor -- resize the
shortest side with the model's interpolation, centre crop, convert to RGB -- giving a uint8
HxWx3 array. This runs where images are decoded: the indexing pipeline's prepare workers.

Per batch (torch, on the model's device): ToTensor's /255 and Normalize's mean/std, once
for the whole batch.

Together they compute exactly what the transform computes (the same PIL calls on the same
image, then the same float32 arithmetic), so embeddings do not change; what changes is
where the work runs: torch's small per-image ops, which stall on a busy CPU, are gone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _is_to_tensor(step: Any) -> bool:
    from torchvision.transforms import ToTensor

    return isinstance(step, ToTensor)  # timm's MaybeToTensor is a subclass


def _is_normalize(step: Any) -> bool:
    from torchvision.transforms import Normalize

    return isinstance(step, Normalize)


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in (values.tolist() if hasattr(values, "tolist") else values))


def _resize_side(step: Any) -> int | None:
    """The short side a resize step produces (at most): what a decoded image needs at least
    so the step never enlarges it. None when the step is not a resize."""
    from torchvision.transforms import Resize

    size = getattr(step, "size", None)
    if isinstance(step, Resize) or "Resize" in type(step).__name__:
        if isinstance(size, int):
            return size
        if isinstance(size, Sequence) and size and all(isinstance(v, int) for v in size):
            return max(size)  # one value: the short side; (h, w): both sides, so the larger
    return None


@dataclass(eq=False)  # compared and hashed by identity: arrays are keyed by the prep made them
class ImagePrep:
    """The per-image and the batched halves of one model's image transform."""

    steps: tuple[Callable[[Any], Any], ...]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    min_side: int | None = None  # short side a decoded image needs; None: unknown
    describe: str = field(default="", repr=False)

    @classmethod
    def from_transform(cls, transform: Any, before: Callable[[Any], Any] | None = None
                       ) -> ImagePrep | None:
        """Split a torchvision Compose of PIL steps, ToTensor and Normalize (what timm's
        create_transform and open_clip's preprocess build). `before` runs first on every
        image (e.g. to_rgb). None when the transform has another shape: callers then keep
        running the transform image by image."""
        steps = list(getattr(transform, "transforms", None) or [])
        cut = next((i for i, s in enumerate(steps) if _is_to_tensor(s)), None)
        if cut is None:
            return None
        after = steps[cut + 1:]
        if len(after) > 1 or (after and not _is_normalize(after[0])):
            return None
        pil_steps = ([before] if before is not None else []) + steps[:cut]
        sides = [s for s in map(_resize_side, steps[:cut]) if s is not None]
        mean = std = None
        if after:
            mean, std = _floats(after[0].mean), _floats(after[0].std)
        return cls(tuple(pil_steps), mean, std, max(sides) if sides else None,
                   " -> ".join(repr(s) for s in pil_steps))

    def prepare(self, img: Any) -> np.ndarray:
        """The per-image half: a uint8 HxWx3 array (PIL work only; releases the GIL)."""
        for step in self.steps:
            img = step(img)
        if getattr(img, "mode", None) != "RGB":
            raise ValueError(f"image preprocessing gave mode {getattr(img, 'mode', None)}, "
                             "expected RGB")
        return np.asarray(img, dtype=np.uint8)

    def batch(self, arrays: Sequence[np.ndarray], device: Any = None, dtype: Any = None,
              channels_last: bool = False):
        """The batched half: N prepared arrays -> a float NxCxHxW tensor on `device`, as
        ToTensor + Normalize would give image by image (the arithmetic runs in float32
        where the model is; `dtype` is applied last, e.g. fp16 on CUDA). channels_last:
        the tensor in that memory layout (the arrays' own, HxWxC: no copy to make)."""
        import torch

        x = torch.from_numpy(np.stack(arrays))
        if device is not None:
            x = x.to(device)
        x = x.permute(0, 3, 1, 2).to(torch.float32).div_(255)
        if self.mean is not None and self.std is not None:
            mean = torch.as_tensor(self.mean, dtype=torch.float32, device=x.device)
            std = torch.as_tensor(self.std, dtype=torch.float32, device=x.device)
            x = x.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))
        x = x.contiguous(memory_format=torch.channels_last if channels_last
                         else torch.contiguous_format)
        return x if dtype is None or dtype == torch.float32 else x.to(dtype)


@dataclass
class PreparedImage:
    """A decoded image with the arrays its models' per-image preprocessing made from it
    (in a prepare worker); a model whose prep is missing prepares it when it needs it."""

    image: Any
    pixels: dict[ImagePrep, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, image: Any, preps: Sequence[ImagePrep]) -> PreparedImage:
        return cls(image, {prep: prep.prepare(image) for prep in preps})


def source_image(item: Any) -> Any:
    """The PIL image behind a PreparedImage, a path or a PIL image."""
    if isinstance(item, PreparedImage):
        return item.image
    if isinstance(item, str) or hasattr(item, "__fspath__"):
        from PIL import Image

        with Image.open(item) as img:
            img.load()
            return img
    return item


def pixels_for(prep: ImagePrep, item: Any) -> np.ndarray:
    """`prep`'s array for an input: made in advance when the item carries it, else now."""
    if isinstance(item, PreparedImage):
        ready = item.pixels.get(prep)
        if ready is not None:
            return ready
    return prep.prepare(source_image(item))
