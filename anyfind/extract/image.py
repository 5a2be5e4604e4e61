"""Image decoding: bytes -> bounded RGB PIL image, EXIF metadata and optional ImageNet tags."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import ExtractionError, require
from .base import Extracted, Section
from .pixels_text import READ_SIDE, read_pixels

DEFAULT_MAX_PIXELS = 100_000_000
MAX_SIDE = 1024  # long side of the image handed to encoders

_TAG_MAKE, _TAG_MODEL, _TAG_DATETIME, _TAG_ORIENTATION = 0x010F, 0x0110, 0x0132, 0x0112
_TAG_DATETIME_ORIGINAL, _TAG_OFFSET_ORIGINAL = 0x9003, 0x9011
_IFD_EXIF, _IFD_GPS = 0x8769, 0x8825

# Modes Pillow resamples properly in place (alpha premultiplied); others go to RGB first.
_RESAMPLABLE = frozenset({"RGB", "RGBA", "RGBX", "L", "LA", "CMYK", "YCbCr", "I", "F"})

_heif_registered: bool | None = None


@dataclass(frozen=True)
class DecodeSize:
    """The smallest image every consumer can use: a short side of at least `short` pixels
    (what the models resize to) and a long side of at least `long` (the thumbnail)."""

    short: int
    long: int = 0


def draft_request(width: int, height: int, need: DecodeSize | None) -> tuple[int, int]:
    """The size to hand `Image.draft`, which picks the largest DCT scale (1/2, 1/4, 1/8)
    whose result is at least this big in both dimensions.

    With a need, the request keeps the image's proportions and just covers it, so the
    decoded short side stays >= need.short and the long side >= need.long: that holds
    whichever way EXIF later turns the image, since turning swaps width and height but
    not short and long. Without one, both sides stay >= MAX_SIDE (the long side is then
    shrunk to MAX_SIDE)."""
    if need is None:
        return MAX_SIDE, MAX_SIDE
    short, long = min(width, height), max(width, height)
    ratio = max(need.short / short, need.long / long) if short > 0 else 1.0
    if ratio >= 1.0:
        return width, height
    return math.ceil(width * ratio), math.ceil(height * ratio)


def register_heif() -> bool:
    """Let Pillow open HEIC/HEIF (and AVIF) when pillow_heif is installed; once per process."""
    global _heif_registered
    if _heif_registered is None:
        try:
            import pillow_heif
        except ImportError:
            _heif_registered = False
        else:
            pillow_heif.register_heif_opener()
            if hasattr(pillow_heif, "register_avif_opener"):  # older releases only
                pillow_heif.register_avif_opener()
            _heif_registered = True
    return _heif_registered


def _high_bit_to_l(img: Any) -> Any:
    """16/32-bit greyscale as 8-bit L: 16-bit scaled by 1/257, I and F stretched min..max."""
    import numpy as np
    from PIL import Image

    if img.mode.startswith("I;16"):
        data = np.array(img)
        data //= 257
        return Image.fromarray(data.astype(np.uint8))
    data = np.asarray(img, dtype=np.float32)
    lo, hi = float(data.min()), float(data.max())
    data = (data - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(data)
    return Image.fromarray(data.round().astype(np.uint8))


def _resamplable(img: Any) -> Any:
    """The image in a mode Pillow resizes well, at the fewest bytes per pixel."""
    if img.mode in _RESAMPLABLE:
        return img
    if img.mode.startswith("I;16"):
        return _high_bit_to_l(img)
    if img.mode == "1":
        return img.convert("L")
    if img.mode in ("P", "PA", "La", "RGBa") or "transparency" in img.info:
        return img.convert("RGBA")
    return img.convert("RGB")


def to_rgb(img: Any) -> Any:
    """An RGB version of any PIL image: transparency over white, high-bit-depth grey scaled."""
    from PIL import Image

    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        img = _high_bit_to_l(img)
    else:
        img = _resamplable(img)
    if img.mode in ("RGBA", "LA"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _iso_datetime(value: Any, offset: Any = None) -> str | None:
    text = _text(value)
    if not text:
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    iso = moment.isoformat()
    offset = _text(offset)
    if offset and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        iso += offset
    return iso


def _gps_degrees(dms: Any, ref: Any) -> float | None:
    try:
        degrees, minutes, seconds = (float(v) for v in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = degrees + minutes / 60.0 + seconds / 3600.0
    if _text(ref) in ("S", "W"):
        value = -value
    return round(value, 7)


def exif_metadata(img: Any) -> dict[str, Any]:
    """Capture time (ISO 8601), camera make/model and GPS position from the EXIF block."""
    try:
        exif = img.getexif()
        sub = exif.get_ifd(_IFD_EXIF)
        gps = exif.get_ifd(_IFD_GPS)
    except Exception:  # malformed EXIF must not cost us the image
        return {}
    meta: dict[str, Any] = {}
    taken = _iso_datetime(sub.get(_TAG_DATETIME_ORIGINAL), sub.get(_TAG_OFFSET_ORIGINAL))
    taken = taken or _iso_datetime(exif.get(_TAG_DATETIME))
    if taken:
        meta["taken_at"] = taken
        # seconds since the epoch, for the after:/before: filters (local time if no offset)
        meta["taken"] = datetime.fromisoformat(taken).timestamp()
    for key, tag in (("camera_make", _TAG_MAKE), ("camera_model", _TAG_MODEL)):
        if value := _text(exif.get(tag)):
            meta[key] = value
    if gps:
        lat = _gps_degrees(gps.get(2), gps.get(1))
        lon = _gps_degrees(gps.get(4), gps.get(3))
        if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
            meta["gps_lat"], meta["gps_lon"] = lat, lon
    return meta


def _orientation(img: Any) -> int:
    try:
        value = int(img.getexif().get(_TAG_ORIENTATION, 1))
    except Exception:  # malformed EXIF
        return 1
    return value if 1 <= value <= 8 else 1


def _upright(img: Any, orientation: int) -> Any:
    """Apply an EXIF orientation as ImageOps.exif_transpose does (by hand, because the image
    may have been converted or shrunk since the value was read)."""
    from PIL.Image import Transpose

    method = {
        2: Transpose.FLIP_LEFT_RIGHT,
        3: Transpose.ROTATE_180,
        4: Transpose.FLIP_TOP_BOTTOM,
        5: Transpose.TRANSPOSE,
        6: Transpose.ROTATE_270,
        7: Transpose.TRANSVERSE,
        8: Transpose.ROTATE_90,
    }.get(orientation)
    return img.transpose(method) if method is not None else img


def _silence_bomb_warning(Image) -> None:
    """Pillow's DecompressionBombWarning off, process-wide (catch_warnings is not
    thread-safe); set again if something reset the filters."""
    import warnings

    category = Image.DecompressionBombWarning
    if not any(f[0] == "ignore" and f[2] is category for f in warnings.filters):
        warnings.filterwarnings("ignore", category=category)


def _open_bounded(blob: bytes, max_pixels: int) -> Any:
    """Open (header only) and refuse images over the pixel cap before anything is decoded."""
    Image = require("PIL.Image", "images")

    # Our cap is the authority; keep Pillow's own guard from firing below it, and its
    # warning (printed raw, between the cap and twice the cap) silent: we refuse those.
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels
    _silence_bomb_warning(Image)
    try:
        img = Image.open(io.BytesIO(blob))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ExtractionError(f"image refused as a decompression bomb: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise ExtractionError("not a decodable image (unknown or unsupported format)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ExtractionError(f"image header is corrupt: {exc}") from exc
    width, height = img.size
    if width * height > max_pixels:
        raise ExtractionError(
            f"image refused as a decompression bomb: {width}x{height} = {width * height} pixels "
            f"exceeds the {max_pixels} pixel limit"
        )
    return img


def extract_image(blob: Any, media_type: str | None = None, ctx: Any = None) -> Extracted:
    """Decode an image (a connector Blob, or bytes) into an RGB PIL image whose long side is
    at most MAX_SIDE, plus EXIF metadata (width/height are the original, upright size, read
    from the header).

    ctx may carry `max_image_pixels` (the decompression-bomb cap), `image_decode_size` (a
    DecodeSize: JPEGs are then decoded at the smallest DCT scale that still covers it) and
    `tagger` (an ImageTagger whose labels become metadata["tags"] and a lexically
    searchable section).
    """
    Image = require("PIL.Image", "images")
    register_heif()
    max_pixels = int(getattr(ctx, "max_image_pixels", None) or DEFAULT_MAX_PIXELS)
    data = bytes(blob) if isinstance(blob, bytes | bytearray | memoryview) else blob.read()
    img = _open_bounded(data, max_pixels)
    width, height = img.size  # the stored size, before any draft scaling
    fmt = img.format
    meta: dict[str, Any] = {"format": fmt}
    if getattr(img, "is_animated", False):
        meta["animated"] = True  # only the first frame is decoded

    ocr = getattr(ctx, "ocr", None)
    try:
        if fmt == "JPEG":
            # DCT scaling: decode at 1/2, 1/4 or 1/8 size when that still covers what the
            # models and the thumbnail need (before EXIF turns it: draft sees stored pixels).
            need = getattr(ctx, "image_decode_size", None)
            # (the OCR gate looks at this same image: decoding it larger for the gate would
            # change the pixels, and so the vectors, the models see)
            img.draft("RGB", draft_request(width, height, need))
        img.load()  # force the full decode so truncation and corruption surface here
        # Read after load: Pillow rotates TIFFs itself while loading and drops their tag,
        # and a PNG's eXIf chunk may follow the pixel data.
        orientation = _orientation(img)
        meta.update(exif_metadata(img))
        img = _resamplable(img)  # palette, 1-bit, 16-bit: no good resampling in place
        # Shrink before transposing and converting, so no full-size copies are made.
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        img = to_rgb(_upright(img, orientation))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ExtractionError(f"image refused as a decompression bomb: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        what = media_type or fmt or "image"
        raise ExtractionError(f"{what} is truncated or corrupt: {exc}") from exc
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    meta["width"], meta["height"] = width, height

    if ocr is not None:  # the gate sees the models' image; reading decodes again, larger
        meta["ocr"] = read_pixels(ocr, img, lambda: _readable(data, max_pixels, orientation))
    sections: list[Section] = []
    tagger = getattr(ctx, "tagger", None)
    if tagger is not None:
        tags = tagger.tag([img])[0]
        meta["tags"] = [{"label": label, "prob": float(prob)} for label, prob in tags]
        if tags:
            sections.append(Section(", ".join(label for label, _ in tags)))
    return Extracted(modality="image", image=img, sections=sections, metadata=meta)


def _readable(data: bytes, max_pixels: int, orientation: int) -> Any:
    """The image again, as large as reading small print needs (READ_SIDE on its long
    side): decoded only for images the OCR gate let through."""
    from PIL import Image

    img = _open_bounded(data, max_pixels)
    if img.format == "JPEG":
        img.draft("RGB", draft_request(*img.size, DecodeSize(0, READ_SIDE)))
    img.load()
    img = _resamplable(img)
    img.thumbnail((READ_SIDE, READ_SIDE), Image.Resampling.LANCZOS)
    return to_rgb(_upright(img, orientation))


def make_thumbnail(img: Any, size: int = 256) -> bytes:
    """A JPEG thumbnail whose long side is at most `size` pixels."""
    from PIL import Image

    thumb = to_rgb(img)
    thumb = thumb.copy() if thumb is img else thumb
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()
