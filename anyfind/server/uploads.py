"""Query-by-example uploads: bounded size, type decided by the bytes (never the name or
the client's Content-Type), decoded with the same guards as indexing."""

from __future__ import annotations

import contextlib
import mimetypes
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException, UploadFile

ACCEPTED = ("image", "audio", "video")  # a video query: its sound track is transcribed


@dataclass
class Upload:
    name: str
    media_type: str
    modality: str
    data: bytes


def read_upload(file: UploadFile, limit: int) -> Upload:
    """The uploaded bytes, or 413 (too big), 400 (empty), 415 (not an image or audio)."""
    from ..extract.sniff import modality_of, sniff_media_type

    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"upload over the {limit // (1024 * 1024)} MiB limit")
    if not data:
        raise HTTPException(400, "the uploaded file is empty")
    media_type = sniff_media_type(data[:8192], "upload")  # no extension: magic bytes only
    modality = modality_of(media_type)
    if modality not in ACCEPTED:
        raise HTTPException(415, f"search by example takes an image or an audio clip, "
                                 f"not {media_type}")
    return Upload(Path(file.filename or "upload").name, media_type, modality, data)


def decode_image(upload: Upload, index: Any) -> Any:
    """A PIL image, downscaled, with the index's decompression-bomb cap."""
    from ..connectors.base import Blob
    from ..errors import ExtractionError
    from ..extract.image import extract_image

    blob = Blob.from_bytes(upload.data, upload.name, upload.media_type)
    try:
        return extract_image(blob, upload.media_type, index.opened.extract_context()).image
    except ExtractionError as exc:
        raise HTTPException(422, f"cannot read the image: {exc}") from exc


@contextlib.contextmanager
def spooled(upload: Upload) -> Iterator[Path]:
    """The upload as a temporary file (decoders want a path), removed afterwards."""
    suffix = mimetypes.guess_extension(upload.media_type) or ".bin"
    fd, name = tempfile.mkstemp(prefix="anyfind-query-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(upload.data)
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
