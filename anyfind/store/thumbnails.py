"""Thumbnails made once at index time, cached in the index directory by content hash
(so renames and copies share one, and a changed image gets a new one). An index whose
metadata store is a server keeps them there too (store/index_files.py): a search server
on another machine fetches one into its own folder the first time it is asked for."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import one_line
from ..fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from .index_files import IndexFiles

log = logging.getLogger("anyfind.thumbnails")

SIZE = 256


class Thumbnails:
    def __init__(self, directory: Path, shared: IndexFiles | None = None):
        self.directory = Path(directory)
        self.shared = shared

    @staticmethod
    def frame_key(content_hash: str, ordinal: int) -> str:
        """A video frame's thumbnail: the video's content and the frame's chunk ordinal."""
        return f"{content_hash}-{int(ordinal)}"

    @staticmethod
    def name(content_hash: str) -> str:
        return f"thumbnails/{content_hash}.jpg"

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
        if self.shared is not None:
            try:
                self.shared.put(self.name(content_hash), jpeg)
            except Exception as exc:  # noqa: BLE001 (a convenience: the sync goes on)
                log.warning("a thumbnail was not kept in the store: %s", one_line(exc))

    def get(self, content_hash: str | None) -> Path | None:
        if not content_hash:
            return None
        p = self.path(content_hash)
        if p.is_file():
            return p
        if self.shared is not None and self.shared.fetch(self.name(content_hash), p):
            return p
        return None
