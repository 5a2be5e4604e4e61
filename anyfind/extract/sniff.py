"""Media-type sniffing: content first (magic bytes, zip listing), then the file extension."""

from __future__ import annotations

import codecs
import io
import zipfile
from pathlib import PurePath
from typing import TYPE_CHECKING

import filetype

from ..errors import ExtractionError
from .text import decode_text

if TYPE_CHECKING:
    from ..connectors.base import Blob

HEAD_SIZE = 8192
OCTET_STREAM = "application/octet-stream"
EMPTY = "application/x-empty"
PDF = "application/pdf"
ZIP = "application/zip"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
EPUB = "application/epub+zip"
EML = "message/rfc822"
IPYNB = "application/x-ipynb+json"

IMAGE_TYPES = frozenset(
    f"image/{t}" for t in ("jpeg", "png", "webp", "gif", "bmp", "tiff", "heic", "avif")
)
AUDIO_TYPES = frozenset(f"audio/{t}" for t in ("wav", "flac", "mpeg", "ogg", "opus", "mp4", "aac"))
# application/* types whose content we index as text (everything text/* is text too).
TEXT_APPLICATION_TYPES = frozenset(
    {
        PDF,
        DOCX,
        PPTX,
        EPUB,
        EML,
        IPYNB,
        "application/json",
        "application/x-ndjson",
        "application/xml",
        "application/xhtml+xml",
        "application/yaml",
        "application/toml",
    }
)

# Spellings seen in the wild (filetype, HTTP headers, mimetypes) -> the one we use.
_ALIASES = {
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-flac": "audio/flac",
    "audio/mp3": "audio/mpeg",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/x-aac": "audio/aac",
    "image/jpg": "image/jpeg",
    "image/apng": "image/png",  # an animated PNG is still a PNG
    "image/x-ms-bmp": "image/bmp",
    "video/x-m4v": "video/mp4",
    "application/javascript": "text/javascript",
    "application/x-javascript": "text/javascript",
    "text/xml": "application/xml",
    "text/yaml": "application/yaml",
    "application/x-yaml": "application/yaml",
    "text/x-yaml": "application/yaml",
    "text/json": "application/json",
}

_ZIP_FAMILY = frozenset(
    {
        ZIP,
        DOCX,
        XLSX,
        PPTX,
        EPUB,
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
    }
)
_ZIP_MARKERS = (
    ("word/document.xml", DOCX),
    ("ppt/presentation.xml", PPTX),
    ("xl/workbook.xml", XLSX),
)

# Magic that is plain ASCII; a match on clean text is believed only for these.
_TEXTUAL_MAGIC = frozenset({PDF, "application/rtf", "application/postscript"})

_SOURCE = {
    "py": "x-python", "pyi": "x-python", "pyw": "x-python",
    "js": "javascript", "mjs": "javascript", "cjs": "javascript", "jsx": "javascript",
    "ts": "x-typescript", "tsx": "x-typescript",
    "java": "x-java", "kt": "x-kotlin", "kts": "x-kotlin", "scala": "x-scala",
    "c": "x-c", "h": "x-c", "cc": "x-c++", "cpp": "x-c++", "cxx": "x-c++", "hpp": "x-c++",
    "hh": "x-c++", "cs": "x-csharp", "go": "x-go", "rs": "x-rust", "rb": "x-ruby",
    "php": "x-php", "swift": "x-swift", "m": "x-objc", "r": "x-r", "jl": "x-julia",
    "lua": "x-lua", "pl": "x-perl", "pm": "x-perl", "hs": "x-haskell", "ex": "x-elixir",
    "exs": "x-elixir", "erl": "x-erlang", "clj": "x-clojure", "dart": "x-dart",
    "sh": "x-shellscript", "bash": "x-shellscript", "zsh": "x-shellscript",
    "ps1": "x-powershell", "bat": "x-msdos-batch", "sql": "x-sql",
    "css": "css", "scss": "x-scss", "less": "x-less", "vue": "x-vue", "svelte": "x-svelte",
    "tex": "x-tex", "rst": "x-rst", "org": "x-org", "adoc": "x-asciidoc",
    "ini": "x-ini", "cfg": "x-ini", "conf": "x-ini", "properties": "x-java-properties",
    "diff": "x-diff", "patch": "x-diff",
    "txt": "plain", "text": "plain", "log": "plain",
    "md": "markdown", "markdown": "markdown", "mdown": "markdown", "mkd": "markdown",
    "html": "html", "htm": "html", "csv": "csv", "tsv": "tab-separated-values",
}  # fmt: skip
_BY_EXTENSION: dict[str, str] = {ext: f"text/{sub}" for ext, sub in _SOURCE.items()} | {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "ndjson": "application/x-ndjson",
    "xml": "application/xml",
    "xhtml": "application/xhtml+xml",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "toml": "application/toml",
    "svg": "image/svg+xml",
    "docx": DOCX,
    "xlsx": XLSX,
    "pptx": PPTX,
    "epub": EPUB,
    "eml": EML,
    "ipynb": IPYNB,
}
_SHEBANGS = {"python": "text/x-python", "sh": "text/x-shellscript", "bash": "text/x-shellscript",
             "zsh": "text/x-shellscript", "node": "text/javascript", "perl": "text/x-perl",
             "ruby": "text/x-ruby"}  # fmt: skip


def canonical(media_type: str) -> str:
    """Lower-case, drop parameters (`; charset=...`) and map aliases to our spelling."""
    base = media_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def modality_of(media_type: str) -> str | None:
    """What an item is: text, image, audio or video (its frames and its sound track).

    None for types anyfind does not index (archives, unknown binary...)."""
    mt = canonical(media_type)
    if mt in IMAGE_TYPES:
        return "image"
    if mt.startswith("video/"):
        return "video"
    if mt in AUDIO_TYPES:
        return "audio"
    if mt.startswith("text/") or mt in TEXT_APPLICATION_TYPES:
        return "text"
    return None


def sniff_media_type(head: bytes, path: str) -> str:
    """The media type of content starting with `head` (up to 8 KiB) stored under `path`."""
    by_ext = _BY_EXTENSION.get(PurePath(path).suffix.lower().lstrip("."))
    if not head:
        return EMPTY
    clean = _is_clean_text(head)
    # PDF allows junk before its header, but text merely mentioning "%PDF-" is not a PDF.
    if head.startswith(b"%PDF-") or (not clean and b"%PDF-" in head[:1024]):
        return PDF
    kind = filetype.guess(head)
    # Short ASCII magic ("BM", "MZ", "ID3"...) also starts ordinary text files.
    if kind is not None and (not clean or kind.mime in _TEXTUAL_MAGIC):
        return _refine_binary(canonical(kind.mime), head, by_ext)
    if not clean:
        try:
            decode_text(head)
        except ExtractionError:
            return OCTET_STREAM
    if by_ext is not None and by_ext not in _ZIP_FAMILY:
        return by_ext
    return _sniff_text(head)


def sniff_blob(blob: Blob) -> str:
    """Sniff a blob: its first 8 KiB, plus the zip listing for zip-based formats."""
    media_type = sniff_media_type(blob.read(HEAD_SIZE), blob.ref.path)
    if media_type in _ZIP_FAMILY:
        media_type = _sniff_zip(blob) or media_type
    return media_type


def _is_clean_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:  # incremental: the head may end in the middle of a character
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _refine_binary(media_type: str, head: bytes, by_ext: str | None) -> str:
    if media_type == "audio/ogg":
        codec = head[28:36]
        if codec == b"OpusHead":
            return "audio/opus"
        if codec.startswith(b"\x80theora"):
            return "video/ogg"
    # Without the whole file, trust the extension about which zip-based format this is.
    if media_type == ZIP and by_ext in _ZIP_FAMILY:
        return by_ext
    return media_type


def _sniff_text(head: bytes) -> str:
    """Text with no telling extension: recognise HTML, XML and scripts by their opening."""
    try:
        start = decode_text(head[:512])[0].lstrip("\ufeff \t\r\n")
    except ExtractionError:
        return "text/plain"
    lowered = start[:64].lower()
    if lowered.startswith(("<!doctype html", "<html")):
        return "text/html"
    if lowered.startswith("<?xml"):
        return "application/xml"
    if start.startswith("#!"):
        words = start[2:].split("\n", 1)[0].replace("/", " ").split()
        for word in reversed(words):
            interpreter = word.rstrip("0123456789.")
            if interpreter in _SHEBANGS:
                return _SHEBANGS[interpreter]
    return "text/plain"


def _sniff_zip(blob: Blob) -> str | None:
    try:
        with blob.open() as fh:
            stream = fh if fh.seekable() else io.BytesIO(fh.read())
            with zipfile.ZipFile(stream) as zf:
                names = set(zf.namelist())
                declared = zf.read("mimetype")[:100] if "mimetype" in names else b""
    except Exception:  # a broken zip keeps the head-based guess; extraction will say why
        return None
    # EPUB and OpenDocument name themselves in an uncompressed "mimetype" entry.
    if declared.startswith(b"application/"):
        return declared.decode("ascii", "replace").strip()
    for marker, media_type in _ZIP_MARKERS:
        if marker in names:
            return media_type
    return ZIP
