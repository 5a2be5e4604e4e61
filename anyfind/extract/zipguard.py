"""Zip-based documents (DOCX...) are opened only when unpacking them stays reasonable:
a few KB that claim to unpack to gigabytes is a zip bomb, refused before any parser
reads it. The declared sizes bound what Python's zipfile will ever produce."""

from __future__ import annotations

import io
import zipfile

from ..errors import ExtractionError

MAX_UNPACKED = 512 * 1024 * 1024  # no office document needs more
MAX_RATIO = 100  # above this many times its packed size (and 50 MB), a member is a bomb
_RATIO_FLOOR = 50 * 1024 * 1024


def check_zip(data: bytes, what: str) -> None:
    """Raise ExtractionError if the zip in `data` would unpack to too much."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a readable zip: the parser says why
    unpacked = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if unpacked > MAX_UNPACKED or (unpacked > _RATIO_FLOOR and unpacked > MAX_RATIO * packed):
        raise ExtractionError(f"{what} refused as a zip bomb: {len(data)} bytes would unpack "
                              f"to {unpacked} bytes")
