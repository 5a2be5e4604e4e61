"""A tiny, randomly initialised open_clip model saved as a real checkpoint, for offline tests."""

from __future__ import annotations

import json
from pathlib import Path

TINY_ARCH = "anyfind-tiny-vit"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def write_tiny_config(directory: Path) -> Path:
    """The architecture as an open_clip model-config JSON named after the arch (file stem)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{TINY_ARCH}.json"
    path.write_text(json.dumps(TINY_CONFIG, indent=2))
    return path


def make_tiny_clip_checkpoint(directory: Path | str, seed: int = 0) -> tuple[str, Path]:
    """Register the tiny config with open_clip, build it seeded, save its state_dict.

    Returns (arch name, checkpoint path); the config file sits next to it in configs/.
    """
    import open_clip
    import torch

    directory = Path(directory)
    config_path = write_tiny_config(directory / "configs")
    open_clip.add_model_config(config_path)
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_ARCH, pretrained=None)
    checkpoint = directory / "tiny-clip.pt"
    torch.save(model.state_dict(), checkpoint)
    return TINY_ARCH, checkpoint
