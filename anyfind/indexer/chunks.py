"""Extracted content -> chunk records on a prepared item: text windows that fit the text
encoder, an image (prepared for the image models, its thumbnail written), or transcript
windows with their start and end seconds."""

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
    if extracted.modality == "audio":
        from ..audio.chunking import group_segments

        windows = group_segments(extracted.segments, chunker.budget, chunker.count_tokens)
        item.chunks = [ChunkRecord(ordinal=i, modality="audio", text=w.text,
                                   start_s=w.start, end_s=w.end)
                       for i, w in enumerate(windows)]
        item.meta["transcript"] = [[round(s.start, 2), round(s.end, 2), s.text]
                                   for s in extracted.segments]
        return
    item.chunks = [
        ChunkRecord(ordinal=i, modality="text", text=c.text, char_start=c.char_start,
                    char_end=c.char_end, page=c.page)
        for i, c in enumerate(chunker.chunk_sections(extracted.sections))
    ]
