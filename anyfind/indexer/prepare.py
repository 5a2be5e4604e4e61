"""One item, read: sniff, check, extract, chunk; the items found inside it too.

The one extraction path of every item (a file, an attachment, a record), used by the
pipeline's threads in this process and by a distributed executor's read tasks on other
machines (indexer/distributed.py). It needs, from the index, only what an extraction
needs (`view`: config, the modalities it handles, the extract context, the chunker,
image inputs and thumbnails); reusing an indexed twin's chunks also needs the store.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from typing import Any

from ..connectors.base import Blob, ItemRef, content_hash
from ..errors import ExtractionError, one_line
from ..extract.base import ReadElsewhere
from ..store.metadata import ChunkRecord
from .chunks import make_chunks

LFS_POINTER = b"version https://git-lfs.github.com/spec/"
MAX_DEPTH = 3  # an attachment of an e-mail attached to an e-mail attached to ... an e-mail
ATTACHMENT = "#attachment/"  # a child's URI: <parent uri>#attachment/<n>/<name>
CHILD_PATH = " › "  # a child's path: <parent path> › <name>


@dataclass
class Prepared:
    """One item after extraction and chunking, before embedding."""

    ref: ItemRef
    replace_id: int | None
    content_hash: str | None
    media_type: str | None = None
    modality: str | None = None
    title: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    chunks: list[ChunkRecord] = field(default_factory=list)
    images: dict[int, Any] = field(default_factory=dict)  # chunk ordinal -> PreparedImage
    error: str | None = None
    status: str = "ok"  # ok | error | skipped | deferred (read again where its model runs)
    waits_for: str = ""  # a deferred item's model: TRANSCRIBER or OCR
    reused: bool = False  # chunks and vectors taken from an indexed item with this content
    frames: Any = None  # a deferred video's frames, decoded here (extract.video.DecodedFrames)
    children: list[Prepared] = field(default_factory=list)  # items found inside this one

    def tree(self) -> list[Prepared]:
        """This item and every item below it."""
        out = [self]
        for child in self.children:
            out += child.tree()
        return out

    @property
    def deferred(self) -> bool:
        """Whether some item of this tree waits for a model (read it again where it runs)."""
        return any(i.status == "deferred" for i in self.tree())

    def defer(self, waits_for: str) -> None:
        self.status, self.waits_for = "deferred", waits_for
        self.chunks, self.children, self.images = [], [], {}


TRANSCRIBER, OCR = "transcriber", "ocr"  # the models an item may be deferred to


class Deferred(Exception):
    """Audio (or pixels to read) met where its model does not run: the item is read
    again where it does."""

    def __init__(self, what: str, waits_for: str = TRANSCRIBER, frames: Any = None):
        super().__init__(what)
        self.waits_for = waits_for
        self.frames = frames  # a video's picture, decoded where it was met


def child_ref(parent: ItemRef, n: int, name: str, size: int, digest: str,
              media_type: str | None = None) -> ItemRef:
    """The identity of the n-th item (1-based) inside `parent`."""
    return ItemRef(uri=f"{parent.uri}{ATTACHMENT}{n}/{name}",
                   path=f"{parent.path}{CHILD_PATH}{name}", size=size, mtime=parent.mtime,
                   fingerprint=digest, media_type=media_type,
                   metadata={"attachment": {"index": n, "name": name}})


def _is_binary_type(media_type: str) -> bool:
    return media_type.startswith(("image/", "audio/", "video/")) or media_type in (
        "application/pdf", "application/zip") or media_type.startswith("application/vnd.")


def _decoded_or_none(blob: Blob) -> Any:
    """A video's frames decoded here, or None: whatever went wrong, the worker that reads
    the video next decodes it whole and records it."""
    from ..extract.video import decode_frames

    try:
        return decode_frames(blob)
    except Exception:  # noqa: BLE001
        return None


class Preparer:
    """Reads items for one index view. `store`: reuse an indexed attachment's chunks (None:
    always extract, as a remote worker does). `defer_audio`, `defer_pixels`: audio is not
    transcribed, pixels not read here, but the item marked `deferred` (a read task whose
    transcriber or OCR engine lives in another worker)."""

    def __init__(self, view: Any, store: Any = None, defer_audio: bool = False,
                 defer_pixels: bool = False):
        self.view = view
        self.store = store
        self.defer_audio = defer_audio
        self.defer_pixels = defer_pixels
        self._context: Any = None
        self._frames: Any = None  # the item being prepared: its video frames decoded elsewhere

    def context(self) -> Any:
        if self._context is None:
            context = self.view.extract_context()
            if self.defer_pixels:
                from ..extract.pixels_text import ELSEWHERE

                context = context.with_ocr(lambda: ELSEWHERE)
            self._context = context
        return self._context

    def prepare(self, blob: Blob | None, ref: ItemRef, replace_id, digest,
                opener=None, frames: Any = None) -> Prepared:
        """The item `ref` from its bytes (`blob`, or `opener()` called here so that a
        failing open is this item's error); `frames`: a video's picture decoded by the
        task that deferred it (its Prepared.frames), not decoded again."""
        item = Prepared(ref, replace_id, digest)
        self._frames = frames
        try:
            self._check_size(ref.size)
            self._extract_into(item, blob if blob is not None else opener(), depth=0)
        except Deferred as exc:
            item.defer(exc.waits_for)
            item.frames = exc.frames
        except ReadElsewhere:
            item.defer(OCR)
        except Exception as exc:  # every failure is this item's, never the run's
            item.status = "error"
            item.error = one_line(exc)
            item.chunks, item.children = [], []
        finally:
            self._frames = None
        waiting = {i.waits_for for i in item.tree() if i.status == "deferred"}
        if waiting:  # read again whole: the transcriber's worker reads pixels too
            frames = item.frames
            item.defer(TRANSCRIBER if TRANSCRIBER in waiting else OCR)
            item.frames = frames
        return item

    def _check_size(self, size: int | None, what: str = "file") -> None:
        limit = self.view.config.max_file_bytes
        if size is not None and size > limit:
            raise ExtractionError(f"{what} too large ({size} bytes > cap of {limit})")

    def _extract_into(self, item: Prepared, blob, depth: int) -> None:
        """The one extraction path of every item, a file or an attachment: sniff, check
        the type against the name, extract, chunk; then the items found inside it."""
        from ..extract import extract
        from ..extract.sniff import EMPTY, modality_of, sniff_blob

        view = self.view
        item.media_type = sniff_blob(blob)
        if item.media_type == EMPTY:  # nothing to index: skipped, never a failure (a vault's
            item.status, item.error = "skipped", "empty"  # empty tag notes, a placeholder)
            return
        item.modality = modality_of(item.media_type)
        claimed = mimetypes.guess_type(item.ref.path)[0]
        if claimed and _is_binary_type(claimed) and item.media_type.startswith("text/"):
            if blob.read(len(LFS_POINTER)) == LFS_POINTER:
                item.meta["lfs_pointer"] = True  # the object is not fetched: index the pointer
            else:  # a text file named .jpg/.mp3/.pdf is a mistake worth reporting
                raise ExtractionError(f"content is text, not {claimed}")
        if item.modality is None:
            if claimed and modality_of(claimed):
                # named like a document, but its bytes are not one
                raise ExtractionError(f"content is not {claimed} (binary or corrupt data)")
            item.status, item.error = "skipped", f"unsupported format ({item.media_type})"
            return
        if not view.indexes_modality(item.modality):
            item.status = "skipped"
            item.error = f"{item.media_type} is not indexed ({view.why_not_indexed(item.modality)})"
            return
        context = self.context()
        if depth == 0 and self._frames is not None:
            context = context.with_video_frames(self._frames)
        elif item.modality == "video" and depth == 0 and (self.defer_audio or self.defer_pixels):
            # The picture is decoded and its frames chosen here (CPU work); what reads
            # them (OCR) and what hears the sound run where their models are.
            raise Deferred(item.ref.path, TRANSCRIBER if self.defer_audio else OCR,
                           frames=_decoded_or_none(blob))
        if item.modality in ("audio", "video") and self.defer_audio:
            raise Deferred(item.ref.path)  # an attached video's frames are read there too
        if item.modality == "image" and self.defer_pixels:
            raise Deferred(item.ref.path, OCR)
        extracted = extract(blob, item.media_type, context)
        item.modality = extracted.modality
        item.title = extracted.title
        item.meta.update(extracted.metadata)
        make_chunks(view, extracted, item)
        if extracted.children and depth >= MAX_DEPTH:
            item.meta["children_not_indexed"] = f"nested more than {MAX_DEPTH} levels deep"
        elif extracted.children:
            item.children = [self._prepare_child(item, n, child, depth + 1)
                             for n, child in enumerate(extracted.children, start=1)]

    def _reuse(self, item: Prepared) -> bool:
        """An attachment whose content is indexed already (the same file elsewhere, or the
        unchanged attachment of an edited e-mail): its chunks and vectors, no model."""
        if self.store is None or not item.content_hash:
            return False
        twin = self.store.reusable(item.content_hash)
        if twin is None or not twin["chunks"]:
            return False
        spaces = set(self.view.spaces)
        if any(c.modality == "image" and not (c.text and spaces <= set(c.vectors or {}))
               for c in twin["chunks"]):
            return False  # an image's pixels would be needed: extract it as usual
        item.modality, item.media_type, item.title = (twin["modality"], twin["media_type"],
                                                      twin["title"])
        item.meta.update({k: v for k, v in twin["meta"].items() if k != "attachment"})
        item.chunks, item.reused = twin["chunks"], True
        return True

    def _prepare_child(self, parent: Prepared, n: int, child, depth: int) -> Prepared:
        """An attachment as an item of its own: same extraction path as a file; whatever
        goes wrong is recorded on it, never on its parent."""
        from ..extract.sniff import canonical

        digest = content_hash(Blob.from_bytes(child.data))
        ref = child_ref(parent.ref, n, child.name, len(child.data), digest, child.media_type)
        item = Prepared(ref, None, digest)
        item.media_type = canonical(child.media_type) if child.media_type else None
        try:
            self._check_size(ref.size, "attachment")
            if self._reuse(item):
                return item
            self._extract_into(item, Blob.from_bytes(child.data, path=child.name), depth)
        except Deferred as exc:
            item.defer(exc.waits_for)
        except ReadElsewhere:
            item.defer(OCR)
        except Exception as exc:
            item.status = "error"
            item.error = one_line(exc)
            item.chunks, item.children = [], []
        return item
