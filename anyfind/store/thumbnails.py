"""Thumbnails made once at index time, cached in the index directory by content hash
(so renames and copies share one, and a changed image gets a new one)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_bytes

SIZE = 256


class Thumbnails:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def path(self, content_hash: str) -> Path:
        return self.directory / content_hash[:2] / f"{content_hash}.jpg"

    def write(self, content_hash: str, image: Any) -> None:
        target = self.path(content_hash)
        if target.exists():
            return
        from ..extract.image import make_thumbnail

        self.write_bytes(content_hash, make_thumbnail(image, SIZE))

    def write_bytes(self, content_hash: str, jpeg: bytes) -> None:
        """A thumbnail made elsewhere (a distributed executor's worker)."""
        target = self.path(content_hash)
        if target.exists():
            return
        with contextlib.suppress(OSError):  # a thumbnail is a convenience, never an error
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, jpeg)

    def get(self, content_hash: str | None) -> Path | None:
        if not content_hash:
            return None
        p = self.path(content_hash)
        return p if p.is_file() else None
