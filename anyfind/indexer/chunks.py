"""Extracted content -> chunk records on a prepared item: text windows that fit the text
encoder, an image (prepared for the image models, its thumbnail written), transcript
windows with their start and end seconds, or a video's windows and kept frames (each an
image chunk spanning the time it is shown, and its read words as text chunks of that
span)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..extract.pixels_text import text_of
from ..store.metadata import ChunkRecord

if TYPE_CHECKING:
    from ..core import OpenIndex
    from ..extract.base import Extracted


def make_chunks(opened: OpenIndex, extracted: Extracted, item: Any) -> None:
    if extracted.modality == "image":
        item.chunks = [ChunkRecord(ordinal=0, modality="image", text="")]
        item.images[0] = opened.image_inputs.prepare(extracted.image)
        if item.content_hash:
            opened.thumbnails.write(item.content_hash, extracted.image)
        # What the image says in words (OCR): passages of the same item, like a
        # document's, after its pixels' chunk.
        read = text_of(extracted.metadata.get("ocr"))
        if read:
            from ..extract.base import Section

            for i, c in enumerate(opened.chunker.chunk_sections([Section(read)]), start=1):
                item.chunks.append(ChunkRecord(ordinal=i, modality="text", text=c.text,
                                               char_start=c.char_start, char_end=c.char_end))
        return
    chunker = opened.chunker
    if extracted.modality in ("audio", "video"):
        from ..audio.chunking import group_segments

        windows = group_segments(extracted.segments, chunker.budget, chunker.count_tokens)
        item.chunks = [ChunkRecord(ordinal=i, modality="audio", text=w.text,
                                   start_s=w.start, end_s=w.end)
                       for i, w in enumerate(windows)]
        if extracted.segments:
            item.meta["transcript"] = [[round(s.start, 2), round(s.end, 2), s.text]
                                       for s in extracted.segments]
        if extracted.frames:
            _frame_chunks(opened, extracted.frames, item)
        return
    item.chunks = [
        ChunkRecord(ordinal=i, modality="text", text=c.text, char_start=c.char_start,
                    char_end=c.char_end, page=c.page)
        for i, c in enumerate(chunker.chunk_sections(extracted.sections))
    ]


def _frame_chunks(opened: OpenIndex, frames: list[Any], item: Any) -> None:
    """Each kept frame: an image chunk over the time it is shown (tags, CLIP), then what
    it shows in words (OCR) as text chunks of the same span; `meta.frames` lists them."""
    from ..extract.base import Section

    listed = []
    for frame in frames:
        ordinal = len(item.chunks)
        item.chunks.append(ChunkRecord(ordinal=ordinal, modality="image", text="",
                                       start_s=frame.start, end_s=frame.end))
        item.images[ordinal] = opened.image_inputs.prepare(frame.image)
        if item.content_hash:
            opened.thumbnails.write(opened.thumbnails.frame_key(item.content_hash, ordinal),
                                    frame.image)
            if not listed:  # the video's own thumbnail: its first kept frame
                opened.thumbnails.write(item.content_hash, frame.image)
        entry = {"ordinal": ordinal, "start": round(frame.start, 2),
                 "end": round(frame.end, 2), "why": frame.why}
        read = frame.meta.get("ocr")
        if read:
            entry["ocr"] = read
            for c in opened.chunker.chunk_sections([Section(text_of(read))]):
                if c.text.strip():
                    item.chunks.append(ChunkRecord(
                        ordinal=len(item.chunks), modality="text", text=c.text,
                        char_start=c.char_start, char_end=c.char_end,
                        start_s=frame.start, end_s=frame.end))
        listed.append(entry)
    item.meta["frames"] = listed
