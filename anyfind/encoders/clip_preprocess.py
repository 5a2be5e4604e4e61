"""open_clip's inference image transform with PIL and NumPy only.

Reproduces image_transform(is_train=False) for the settings the export saved from the
model's own `visual.preprocess_cfg`: resize (shortest side, or squash) with the same
output-size arithmetic as torchvision, centre crop with its rounding, RGB conversion
*after* the resize (open_clip's order), scale to [0, 1], normalise with mean/std.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SUPPORTED_RESIZE = ("shortest", "squash")


def check_supported(cfg: dict[str, Any]) -> str | None:
    """Why this preprocess config cannot be reproduced here, or None when it can."""
    size = cfg.get("size")
    square = isinstance(size, int) or (isinstance(size, list | tuple) and len(size) == 2
                                        and size[0] == size[1])
    if cfg.get("resize_mode", "shortest") not in SUPPORTED_RESIZE:
        return f"resize mode {cfg.get('resize_mode')!r} is not supported"
    if cfg.get("resize_mode", "shortest") == "shortest" and not square:
        return f"non-square image size {size!r} is not supported"
    if cfg.get("interpolation", "bicubic") not in ("bicubic", "bilinear", "random"):
        return f"interpolation {cfg.get('interpolation')!r} is not supported"
    if cfg.get("mode", "RGB") != "RGB":
        return f"image mode {cfg.get('mode')!r} is not supported"
    return None


class ClipPreprocess:
    def __init__(self, cfg: dict[str, Any]):
        from PIL import Image

        reason = check_supported(cfg)
        if reason:
            raise ValueError(reason)
        size = cfg["size"]
        self.height, self.width = (size, size) if isinstance(size, int) else tuple(size)
        self.resize_mode = cfg.get("resize_mode", "shortest")
        # 'random' means bicubic at inference (open_clip's own note)
        self.resample = (Image.Resampling.BILINEAR if cfg.get("interpolation") == "bilinear"
                         else Image.Resampling.BICUBIC)
        self.mean = np.asarray(cfg["mean"], dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(cfg["std"], dtype=np.float32).reshape(3, 1, 1)

    def _resize(self, img):
        w, h = img.size
        if self.resize_mode == "squash":
            size = (self.width, self.height)
        else:  # torchvision Resize(int): short side to size, long side truncated
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = self.height, int(self.height * long / short)
            size = (new_short, new_long) if w <= h else (new_long, new_short)
        return img if size == (w, h) else img.resize(size, self.resample)

    def _center_crop(self, img):
        from PIL import ImageOps

        w, h = img.size
        if w < self.width or h < self.height:  # torchvision pads with 0, then crops
            pad_w, pad_h = max(self.width - w, 0), max(self.height - h, 0)
            img = ImageOps.expand(img, (pad_w // 2, pad_h // 2, (pad_w + 1) // 2,
                                        (pad_h + 1) // 2), fill=0)
            w, h = img.size
        top = int(round((h - self.height) / 2.0))
        left = int(round((w - self.width) / 2.0))
        return img.crop((left, top, left + self.width, top + self.height))

    def __call__(self, image: Any) -> np.ndarray:
        """One (3, H, W) float32 array from a PIL image or a path."""
        img = open_image(image)
        img = self._resize(img)
        if self.resize_mode == "shortest":
            img = self._center_crop(img)
        arr = np.asarray(img.convert("RGB"), dtype=np.float32) / np.float32(255.0)
        return np.ascontiguousarray((arr.transpose(2, 0, 1) - self.mean) / self.std,
                                    dtype=np.float32)

    def batch(self, images) -> np.ndarray:
        return np.stack([self(i) for i in images])


def open_image(item: Any):
    """A loaded PIL image from a PIL image or a path (as OpenClipEncoder._open does)."""
    if isinstance(item, str | Path):
        from PIL import Image

        with Image.open(item) as img:
            img.load()
            return img
    return item
